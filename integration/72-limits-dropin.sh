# Issue 22: a stack's [stacks.NAME.limits] become its slice's settings. Apply writes
# /etc/systemd/system/user-UID.slice.d/50-isolate.conf and daemon-reloads, so `systemctl show
# user-UID.slice` has the values at once while nothing of the stack restarts; a second apply has
# nothing to do; a key removed leaves the drop-in; rollback --stack leaves none. (This nspawn host
# is cgroup v1: the values are the slice's settings; real enforcement is tested in a cgroup v2 VM.)
step "two stacks, web with limits"
mkdir -p "$CT_ROOT/srv/web" "$CT_ROOT/srv/db"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
migrate = "reown"

[stacks.web.limits]
memory_max = "256M"
tasks_max = 64
cpu_weight = 50

[stacks.db]
data = ["/srv/db"]
migrate = "reown"
TOML
isolate_ok apply
uid=$(uid_of stk-web)
db_uid=$(uid_of stk-db)
dropin="/etc/systemd/system/user-$uid.slice.d/50-isolate.conf"
[ -f "$CT_ROOT$dropin" ] || fail "no $dropin after apply"
head -1 "$CT_ROOT$dropin" | grep -q '^# Written by isolate' || fail "$dropin has no isolate header"
assert_eq "$(printf '[Slice]\nCPUWeight=50\nMemoryMax=256M\nTasksMax=64')" \
  "$(sed -n '/^\[Slice\]/,$p' "$CT_ROOT$dropin")" "the drop-in's [Slice] section"
[ -e "$CT_ROOT/etc/systemd/system/user-$db_uid.slice.d" ] && fail "db has no limits but got a drop-in"
grep -q "limits of stack web: write $dropin" "$ISO_OUT" || fail "apply does not name the drop-in it wrote"

step "in force on the running slice (daemon-reload), without a restart"
show() { in_ct systemctl show "user-$uid.slice" -p MemoryMax -p TasksMax -p CPUWeight; }
show
assert_eq "$(printf 'CPUWeight=50\nMemoryMax=268435456\nTasksMax=64')" "$(show | sort)" "user-$uid.slice"
if in_ct test -e /sys/fs/cgroup/cgroup.controllers; then
  cgroup_v1=
  assert_eq 64 "$(in_ct cat "/sys/fs/cgroup/user.slice/user-$uid.slice/pids.max")" "pids.max (cgroup v2)"
elif cgroup_v1=1 && in_ct test -e "/sys/fs/cgroup/pids/user.slice/user-$uid.slice/pids.max"; then
  assert_eq 64 "$(in_ct cat "/sys/fs/cgroup/pids/user.slice/user-$uid.slice/pids.max")" "pids.max (cgroup v1 pids controller)"
else
  cgroup_v1=1
  step "no pids controller file for user-$uid.slice on this cgroup v1 host: systemctl show is the check"
fi
before=$(start_stamps stk-web)

step "plan says the limits of a cgroup v1 host may not act"
isolate_ok plan
if [ -n "$cgroup_v1" ]; then
  grep -q "this host runs cgroup v1" "$ISO_OUT" || fail "plan on a cgroup v1 host does not say the limits may not act"
fi

step "apply again: nothing to do, nothing restarted"
isolate_ok apply
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply does not say 'nothing to do'"
isolate_ok plan --json
steps=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["steps"]))' "$ISO_OUT")
assert_eq 0 "$steps" "number of planned steps"
assert_eq "$before" "$(start_stamps stk-web)" "stk-web user@ / podman.socket start stamps"

step "tasks_max removed, memory_max changed: plan shows the diff, apply rewrites the drop-in"
sed -i '/^tasks_max/d; s/^memory_max = .*/memory_max = "512M"/' "$CT_ROOT/etc/isolate/policy.toml"
isolate_ok plan
grep -q "~ limits of stack web: rewrite $dropin" "$ISO_OUT" || fail "plan does not announce the rewrite"
grep -q -- "MemoryMax=256M -> MemoryMax=512M" "$ISO_OUT" || fail "plan does not show the changed line"
grep -q -- "- TasksMax=64" "$ISO_OUT" || fail "plan does not show the removed line"
isolate_ok apply
grep -q TasksMax "$CT_ROOT$dropin" && fail "TasksMax is still in $dropin"
assert_eq "MemoryMax=536870912" "$(in_ct systemctl show "user-$uid.slice" -p MemoryMax)" "MemoryMax after the change"
[ "$(in_ct systemctl show "user-$uid.slice" -p TasksMax)" = "TasksMax=64" ] && fail "TasksMax=64 still in force after its key went"
assert_eq "$before" "$(start_stamps stk-web)" "stk-web user@ / podman.socket start stamps"

step "rollback --stack web: no drop-in left, the slice unlimited"
isolate_ok rollback --stack web
grep -q "limits of stack web: removed $dropin" "$ISO_OUT" || fail "rollback does not say it removed the drop-in"
[ -e "$CT_ROOT$dropin" ] && fail "$dropin left after rollback"
[ -e "$CT_ROOT/etc/systemd/system/user-$uid.slice.d" ] && fail "user-$uid.slice.d left after rollback"
assert_eq "MemoryMax=infinity" "$(in_ct systemctl show "user-$uid.slice" -p MemoryMax)" "MemoryMax after rollback"
