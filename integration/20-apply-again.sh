# Issue 3: applying the same policy again changes nothing and restarts nothing.
step "first apply (as in 10-apply-two-stacks)"
apply_two_stack_policy
assert_stack_running stk-web
assert_stack_running stk-db
before_web=$(start_stamps stk-web) before_db=$(start_stamps stk-db)
before_host=$(host_fingerprint)
state_before=$(sha256sum "$CT_ROOT/var/lib/isolate/state.json")

step "apply again"
isolate_ok apply
grep -q "nothing to do" "$ISO_OUT" || fail "apply on an up-to-date host does not say 'nothing to do'"

step "plan --json has no steps"
isolate_ok plan --json
steps=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["steps"]))' "$ISO_OUT")
assert_eq 0 "$steps" "number of planned steps"

step "nothing was restarted or rewritten"
assert_eq "$before_web" "$(start_stamps stk-web)" "stk-web user@ / podman.socket start stamps"
assert_eq "$before_db" "$(start_stamps stk-db)" "stk-db user@ / podman.socket start stamps"
assert_eq "$before_host" "$(host_fingerprint)" "account files, linger, state file"
assert_eq "$state_before" "$(sha256sum "$CT_ROOT/var/lib/isolate/state.json")" "state file contents"
assert_eq OK "$(podman_ping stk-web)" "stk-web _ping"
