# Issue 11: on a NixOS host (/etc/NIXOS) a rebuild rewrites /etc/subuid and /etc/subgid from
# declared users only, so apply must not create accounts or ranges itself: it refuses with
# exit 2 and the commands to run, changes nothing, and `export nixos` writes the module to
# import. (NixOS's own activation of that module is checked in tests/nixos_export.rs.)
touch "$CT_ROOT/etc/NIXOS"
mkdir -p "$CT_ROOT/srv/web"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
TOML
before=$(host_fingerprint)

step "plan names what the configuration must declare"
isolate_ok plan
grep -qF '! NixOS host: accounts and subordinate ids are declared in its configuration' "$ISO_OUT" \
  || fail "plan does not say that NixOS declares the accounts"
grep -qF 'user stk-web (uid 70000, gid 70000, home /var/lib/isolate/home/stk-web)' "$ISO_OUT" \
  || fail "plan does not list the user to declare"

step "apply refuses with exit 2 and says what to run"
run_isolate apply
assert_eq 2 "$ISO_RC" "exit status"
grep -qF 'isolate: this is a NixOS host (/etc/NIXOS):' "$ISO_ERR" || fail "no NixOS refusal"
grep -qxF 'isolate: run `isolate export nixos --output /etc/nixos/isolate-stacks.nix`, add that file to `imports` in /etc/nixos/configuration.nix, run `nixos-rebuild switch`, then `isolate apply` again' "$ISO_ERR" \
  || fail "the refusal does not name the commands"

step "nothing changed: no account, no range, no linger, no state"
assert_eq "$before" "$(host_fingerprint)" "passwd/group/shadow/gshadow/subuid/subgid checksums, linger, state file"
! in_ct getent passwd stk-web >/dev/null || fail "stk-web exists"
! grep -q '^stk-' "$CT_ROOT/etc/subuid" || fail "a stk- line in /etc/subuid"
[ "$(in_ct loginctl show-user stk-web -p Linger --value 2>/dev/null || echo none)" != yes ] || fail "linger on"

step "export nixos writes the module with the recorded allocation"
isolate_ok export nixos --output /etc/nixos/isolate-stacks.nix
grep -qF 'users.users."stk-web" = {' "$CT_ROOT/etc/nixos/isolate-stacks.nix" || fail "no stk-web in the module"
grep -qF 'subUidRanges = [ { startUid = 1879048192; count = 65536; } ];' "$CT_ROOT/etc/nixos/isolate-stacks.nix" \
  || fail "the module does not hold the range"
grep -q '"start": 1879048192' "$CT_ROOT/var/lib/isolate/state.json" || fail "the allocation is not recorded"
! in_ct getent passwd stk-web >/dev/null || fail "export created stk-web"
