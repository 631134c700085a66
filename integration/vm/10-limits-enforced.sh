# Issue 22: a stack's [stacks.NAME.limits] act on the kernel, in that stack's slice only. Stack a
# (memory_max 64M, no swap, tasks_max 32, cpu_weight 50) has a container that allocates 200M
# OOM-killed and a fork loop stopped, while stack b's container keeps running and b can still
# allocate and fork; cpu.weight is 50 in a's slice; removing the keys, and rollback of the stack,
# leave no drop-in and the running slice back at systemd's defaults; applying again limits the
# running slice at once. Everything asserted is what the kernel shows in /sys/fs/cgroup, not
# what isolate says.

# write_limits_policy [LIMITS_TOML]: stacks a and b, a with LIMITS_TOML as its limits table.
write_limits_policy() {
  mkdir -p /srv/a /srv/b
  {
    printf '[stacks.a]\ndata = ["/srv/a"]\nmigrate = "reown"\n\n'
    if [ -n "${1:-}" ]; then printf '[stacks.a.limits]\n%s\n\n' "$1"; fi
    printf '[stacks.b]\ndata = ["/srv/b"]\nmigrate = "reown"\n'
  } >/etc/isolate/policy.toml
  cat /etc/isolate/policy.toml
}
limits_a='memory_max = "64M"
memory_swap_max = "0"
tasks_max = 32
cpu_weight = 50'

# slice_file STACK FILE: FILE of the stack's slice as the kernel shows it.
slice_file() { cat "$(user_slice_dir "stk-$1")/$2"; }
dropin_of() { printf '/etc/systemd/system/user-%s.slice.d/50-isolate.conf\n' "$(uid_of "stk-$1")"; }

# A stack's podman API service (socket-activated by apply's ping) is a Go program with many
# threads and tens of MB: stopped, so the budgets below measure the containers.
quiet_stack() { as_user "stk-$1" systemctl --user stop podman.service 2>/dev/null || true; }

step "apply: stack a with limits, stack b without"
write_limits_policy "$limits_a"
run_isolate apply
if [ "$ISO_RC" != 0 ]; then
  # Under emulation (TCG, on a loaded machine) a user manager can take longer to start than the
  # 30 s apply waits for it, and a daemon-reload longer than its D-Bus call may; apply is
  # resumable: once both managers are up, it goes on (and the kernel checks below still judge).
  grep -q 'timed out' "$ISO_OUT" || fail "isolate apply exited $ISO_RC"
  step "apply timed out (emulated VM): waiting for the user managers, then apply again"
  for user in stk-a stk-b; do
    wait_for 300 systemctl is-active "user@$(uid_of "$user").service" || fail "user@ of $user never came up"
  done
  isolate_ok apply
fi
assert_stack_running stk-a
assert_stack_running stk-b
dropin=$(dropin_of a)
[ -f "$dropin" ] || fail "no drop-in $dropin after apply"
cat "$dropin"
[ ! -e "$(dropin_of b)" ] || fail "stack b has no limits but has a drop-in $(dropin_of b)"

step "the kernel holds a's limits on its slice, b's slice has the defaults"
assert_eq 67108864 "$(slice_file a memory.max)" "memory.max of a's slice"
assert_eq 0 "$(slice_file a memory.swap.max)" "memory.swap.max of a's slice"
assert_eq 32 "$(slice_file a pids.max)" "pids.max of a's slice"
assert_eq 50 "$(slice_file a cpu.weight)" "cpu.weight of a's slice"
assert_eq max "$(slice_file b memory.max)" "memory.max of b's slice"
assert_eq 100 "$(slice_file b cpu.weight)" "cpu.weight of b's slice"

step "a second apply changes nothing"
before=$(sha256sum "$dropin")
isolate_ok apply
assert_eq "$before" "$(sha256sum "$dropin")" "the drop-in after a second apply"

step "b runs a container that must survive a's OOM kill"
import_busybox stk-a
import_busybox stk-b
b_cid=$(as_user stk-b podman run -d --network none localhost/busybox sleep 3600)
b_pid=$(as_user stk-b podman inspect -f '{{.State.Pid}}' "$b_cid")
echo "b's container $b_cid, pid $b_pid"

step "a's container allocating 200M is OOM-killed"
quiet_stack a
oom_before=$(cgroup_key "$(user_slice_dir stk-a)/memory.events" oom_kill)
rc=0
# tail buffers its whole input when it holds no newline: 200M of anonymous memory. When it is
# killed, wc counts less than 200M (the pipeline's status is wc's, so the count is the check).
held=$(as_user stk-a podman run --rm --network none localhost/busybox \
  sh -c 'head -c 209715200 /dev/zero | tail | wc -c' | tr -d ' ') || rc=$?
echo "a's allocating container exited $rc, its tail held $held bytes"
oom_after=$(cgroup_key "$(user_slice_dir stk-a)/memory.events" oom_kill)
echo "oom_kill in a's slice: $oom_before -> $oom_after"
[ "$oom_after" -gt "$oom_before" ] || fail "no OOM kill in a's slice (memory.events: $(tr '\n' ' ' <"$(user_slice_dir stk-a)/memory.events"))"
[ "$held" != 209715200 ] || fail "a's container held 200M under a 64M limit"

step "b's container still runs, and b can allocate 200M"
assert_eq true "$(as_user stk-b podman inspect -f '{{.State.Running}}' "$b_cid")" "b's container running"
kill -0 "$b_pid" || fail "b's container process $b_pid is gone"
assert_eq 0 "$(cgroup_key "$(user_slice_dir stk-b)/memory.events" oom_kill)" "oom_kill in b's slice"
assert_eq 209715200 "$(as_user stk-b podman run --rm --network none localhost/busybox \
  sh -c 'head -c 209715200 /dev/zero | tail | wc -c' | tr -d ' ')" "bytes b's container held"

step "a fork loop in a stops at tasks_max; b can still start 100 processes"
quiet_stack a
max_before=$(cgroup_key "$(user_slice_dir stk-a)/pids.events" max)
rc=0
fork_out=$(as_user stk-a podman run --rm --network none localhost/busybox \
  sh -c 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i + 1)); done; echo started $i' 2>&1) || rc=$?
printf '%s\n' "$fork_out"
max_after=$(cgroup_key "$(user_slice_dir stk-a)/pids.events" max)
echo "a's fork loop exited $rc; pids.events max in a's slice: $max_before -> $max_after"
[ "$max_after" -gt "$max_before" ] || fail "a's slice never hit pids.max"
[ "$rc" != 0 ] || fail "a's fork loop started 100 processes under tasks_max 32"
# The loop itself ran and was stopped (not podman failing to start the container).
grep -q "can't fork" <<<"$fork_out" || fail "a's fork loop did not fail on fork"
assert_eq "started 100" "$(as_user stk-b podman run --rm --network none localhost/busybox \
  sh -c 'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i + 1)); done; echo started $i; wait')" \
  "b's fork loop"
assert_eq true "$(as_user stk-b podman inspect -f '{{.State.Running}}' "$b_cid")" "b's container running after a's fork loop"

step "removing a's limits removes the drop-in and the limits on the running slice"
write_limits_policy ""
isolate_ok apply
[ ! -e "$dropin" ] || fail "the drop-in $dropin is still there: $(cat "$dropin")"
a_slice="user-$(uid_of stk-a).slice"
assert_eq max "$(slice_file a memory.max)" "memory.max of a's slice without limits"
assert_eq max "$(slice_file a memory.swap.max)" "memory.swap.max of a's slice without limits"
assert_eq 100 "$(slice_file a cpu.weight)" "cpu.weight of a's slice without limits"
# Debian's user-.slice.d/10-defaults.conf gives every user slice TasksMax=33%: b's value.
assert_eq "$(slice_file b pids.max)" "$(slice_file a pids.max)" "pids.max of a's slice without limits (the default, as b's)"
assert_eq infinity "$(system_unit_prop "$a_slice" MemoryMax)" "MemoryMax of $a_slice without limits"
# Putting the settings on the running cgroup leaves no runtime drop-in of isolate's behind.
[ ! -e "/run/systemd/system.control/$a_slice.d" ] || fail "runtime drop-ins left: $(ls "/run/systemd/system.control/$a_slice.d")"

step "rollback of a stack with limits leaves no drop-in"
a_uid=$(uid_of stk-a)
write_limits_policy "$limits_a"
isolate_ok apply
[ -f "$dropin" ] || fail "no drop-in $dropin after applying the limits again"
assert_eq 50 "$(slice_file a cpu.weight)" "cpu.weight of a's running slice after applying again"
assert_eq 67108864 "$(slice_file a memory.max)" "memory.max of a's running slice after applying again"
as_user stk-b podman rm -f -t 0 "$b_cid" >/dev/null
isolate_ok rollback --stack a
[ ! -e "$dropin" ] || fail "the drop-in $dropin is still there after rollback --stack a"
assert_eq infinity "$(system_unit_prop "user-$a_uid.slice" MemoryMax)" "MemoryMax of user-$a_uid.slice after rollback"
