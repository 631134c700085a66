# Issue 3: what apply sets up survives a reboot: linger brings the user manager back, the
# enabled podman.socket listens again, containers run, and apply has nothing to do.
mkdir -p "$CT_ROOT/srv/web"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
migrate = "reown"
TOML
isolate_ok apply
assert_stack_running stk-web
uid=$(uid_of stk-web)
before=$(system_unit_prop "user@$uid.service" InvocationID)

step "reboot"
reboot_ct
after=$(system_unit_prop "user@$uid.service" InvocationID)
[ "$before" != "$after" ] || fail "user@$uid.service is the same invocation: the container did not reboot"

step "after the reboot, with nobody logged in"
wait_for 30 in_ct test -S "/run/user/$uid/podman/podman.sock" || fail "no podman socket after the reboot"
assert_stack_running stk-web
assert_container_mapping stk-web

step "apply again: nothing to do"
isolate_ok apply
grep -q "nothing to do" "$ISO_OUT" || fail "apply after a reboot does not say 'nothing to do'"
