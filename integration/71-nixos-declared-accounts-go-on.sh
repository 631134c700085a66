# Issue 11: on a NixOS host, once the configuration declares what `isolate export nixos` wrote,
# apply goes on with what NixOS does not own: linger, the user manager, podman.socket and the
# data. The "rebuild" is NixOS's own: the exported module is evaluated with the real
# users-groups.nix and NixOS's update-users-groups.pl writes the account lines (on the host
# side, from ../shared/nixos-eval), which are put on the booted root as a switch would.
harness_tar="$SUITE/../../shared/nixos-eval/nixpkgs-eval.tar.xz"
command -v nix-instantiate >/dev/null || fail "nix-instantiate is missing (scripts/install-deps installs nix-bin)"
[ -r "$harness_tar" ] || fail "the NixOS harness $harness_tar is missing"

touch "$CT_ROOT/etc/NIXOS"
mkdir -p "$CT_ROOT/srv/web"
echo page >"$CT_ROOT/srv/web/index.html"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
TOML

step "export nixos"
isolate_ok export nixos --output /etc/nixos/isolate-stacks.nix

step "NixOS evaluates the module and its activation writes the accounts"
work=$(mktemp -d)
trap 'rm -rf "$work" "$ISO_OUT" "$ISO_ERR"' EXIT  # keeps lib.sh's own clean-up
tar -xJf "$harness_tar" -C "$work"
cp "$CT_ROOT/etc/nixos/isolate-stacks.nix" "$work/isolate-stacks.nix"
cat >"$work/host.nix" <<'NIX'
{
  imports = [ ./isolate-stacks.nix ];
  system.stateVersion = "25.11";
  users.mutableUsers = true;
}
NIX
nix-instantiate --eval --strict --json --read-write-mode "$work/nixpkgs-eval/harness/eval.nix" \
  --arg configuration "$work/host.nix" -A summary >"$work/summary.json" 2>"$work/eval.err" \
  || { cat "$work/eval.err"; fail "NixOS evaluation failed"; }
python3 - "$work/summary.json" <<'PY' || fail "failed NixOS assertions or no linger"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failedAssertions"] == [], d["failedAssertions"]
assert any("lingeringUserNames=(stk-web)" in l for l in d["lingerVars"]), d["lingerVars"]
PY
spec=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spec"])' "$work/summary.json")
"$work/nixpkgs-eval/harness/run-activation.sh" "$spec" "$work/out" >/dev/null
for f in passwd group shadow subuid subgid; do
  grep '^stk-' "$work/out/etc/$f" >>"$CT_ROOT/etc/$f"
done
grep '^stk-' "$CT_ROOT/etc/passwd" "$CT_ROOT/etc/subuid"
# createHome: the activation made the home 0700 and the user's; the same on the booted root.
home=$(home_of stk-web)
mkdir -p "$CT_ROOT$home"
in_ct chown stk-web:stk-web "$home"
chmod 0700 "$CT_ROOT$home"

step "plan has nothing left for NixOS to declare"
isolate_ok plan
! grep -q 'NixOS host' "$ISO_OUT" || fail "plan still asks for declarations"

step "apply goes on: linger, user manager, socket, data"
isolate_ok apply
assert_stack_running stk-web
uid=$(uid_of stk-web)
assert_eq "$uid" "$(stat -c %u "$CT_ROOT/srv/web/index.html")" "owner of the migrated data"
assert_container_mapping stk-web
