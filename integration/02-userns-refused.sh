# Issue 7: root inside a user namespace (`unshare -r`) has every capability but owns nothing on
# the host; apply and rollback refuse there with exit 2 and create nothing, not even the state
# directory or a lock file; the same apply outside the namespace then works.
mkdir -p "$CT_ROOT/srv/web"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = []
TOML
before=$(host_fingerprint)

step "apply under unshare -r refuses"
ISO_RC=0
in_ct unshare -r isolate apply >"$ISO_OUT" 2>"$ISO_ERR" || ISO_RC=$?
cat "$ISO_ERR"
assert_eq 2 "$ISO_RC" "exit status"
assert_eq "isolate: missing privilege: this process runs in a user namespace (/proc/self/uid_map is \`0 0 1\`, not \`0 0 4294967295\`): its root owns nothing on the host, so nothing real would change; run isolate as root outside any user namespace" \
  "$(cat "$ISO_ERR")" "stderr"

step "rollback under unshare -r refuses too"
ISO_RC=0
in_ct unshare -r isolate rollback --stack web >"$ISO_OUT" 2>"$ISO_ERR" || ISO_RC=$?
assert_eq 2 "$ISO_RC" "exit status"

step "nothing changed, nothing created"
assert_eq "$before" "$(host_fingerprint)" "account files, linger, state file"
[ ! -e "$CT_ROOT/var/lib/isolate" ] || fail "/var/lib/isolate was created: $(ls -A "$CT_ROOT/var/lib/isolate")"

step "the same apply as real root works"
isolate_ok apply
in_ct getent passwd stk-web >/dev/null || fail "stk-web was not created"
