# The VM suite's own check: the VM is what the limit scenarios need. A unified cgroup v2
# hierarchy with memory, pids and cpu; a lingering user's manager holding those controllers
# (delegated by user@.service); a rootless container of that user running inside its slice.
step "cgroup v2, unified"
[ -f /sys/fs/cgroup/cgroup.controllers ] || fail "no /sys/fs/cgroup/cgroup.controllers: not a unified cgroup v2 host"
assert_eq cgroup2fs "$(stat -f -c %T /sys/fs/cgroup)" "filesystem type of /sys/fs/cgroup"
for c in memory pids cpu; do
  grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || fail "controller $c missing: $(cat /sys/fs/cgroup/cgroup.controllers)"
done
cat /sys/fs/cgroup/cgroup.controllers

step "isolate runs here"
in_ct isolate --version

step "a lingering user's manager gets memory, pids and cpu"
setup_rootless_user smoke 300000
uid=$(uid_of smoke)
manager=$(user_slice_dir smoke)/user@$uid.service
assert_eq active "$(system_unit_prop "user@$uid.service" ActiveState)" "user@$uid.service ActiveState"
for c in memory pids cpu; do
  grep -qw "$c" "$manager/cgroup.controllers" || fail "$c not delegated to user@$uid.service: $(cat "$manager/cgroup.controllers")"
done
system_unit_prop "user@$uid.service" DelegateControllers

step "a rootless container runs in the user's slice"
cid=$(as_user smoke podman run -d --network none localhost/busybox sleep 600)
pid=$(as_user smoke podman inspect -f '{{.State.Pid}}' "$cid")
cgroup=$(cut -d: -f3 "/proc/$pid/cgroup")
echo "container process $pid in $cgroup"
case $cgroup in
  /user.slice/user-$uid.slice/user@$uid.service/*) ;;
  *) fail "the container's process is in $cgroup, not below user@$uid.service" ;;
esac
assert_eq "0 $uid 1" "$(awk 'NR == 1 { print $1, $2, $3 }' "/proc/$pid/uid_map")" "first line of the container's uid_map"
as_user smoke podman rm -f -t 0 "$cid" >/dev/null
