# Issue 3: applying a two-stack policy gives each stack a user, a range, linger, a user manager,
# a podman socket that answers, and rootless containers mapped exactly to the allocation.
step "apply the two-stack policy"
apply_two_stack_policy

for stack in web db; do
  user=stk-$stack
  step "$user"
  in_ct getent passwd "$user" || fail "no user $user"
  in_ct getent group "$user" >/dev/null || fail "no group $user"
  assert_stack_running "$user"
  assert_container_mapping "$user"
done
assert_no_overlap

step "status --json: each stack's socket answers"
isolate_ok status --json
for stack in web db; do
  assert_eq true "$(json_stack_value "$ISO_OUT" "$stack" ping)" "status --json ping of $stack"
done
