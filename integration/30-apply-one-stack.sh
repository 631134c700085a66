# Issue 3: `apply --stack b` on a three-stack policy sets up b and touches nothing of a and c.
mkdir -p "$CT_ROOT/srv/a" "$CT_ROOT/srv/b" "$CT_ROOT/srv/c"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.a]
data = ["/srv/a"]
migrate = "reown"

[stacks.b]
data = ["/srv/b"]
migrate = "reown"

[stacks.c]
data = ["/srv/c"]
migrate = "reown"
TOML

step "apply --stack b"
isolate_ok apply --stack b

step "b is complete"
in_ct getent passwd stk-b || fail "no user stk-b"
assert_stack_running stk-b
assert_container_mapping stk-b

step "a and c are untouched"
for stack in a c; do
  user=stk-$stack
  ! in_ct getent passwd "$user" >/dev/null || fail "user $user exists"
  ! in_ct getent group "$user" >/dev/null || fail "group $user exists"
  ! grep -q "^$user:" "$CT_ROOT/etc/subuid" || fail "/etc/subuid has a line for $user"
  ! grep -q "^$user:" "$CT_ROOT/etc/subgid" || fail "/etc/subgid has a line for $user"
  [ ! -e "$CT_ROOT/var/lib/systemd/linger/$user" ] || fail "linger file for $user"
  [ ! -e "$CT_ROOT/var/lib/isolate/home/$user" ] || fail "home of $user exists"
done
