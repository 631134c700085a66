# Issue 22 (accounting): the metrics of a RUNNING stack equal its slice's cgroup files. Stack a
# (memory_max 64M, no swap) runs a container and has one process OOM-killed; stack b runs one
# too. For each, `isolate audit --only usage --format prometheus` is bracketed by two reads of
# the slice's files, and each value isolate reports must lie between the two reads:
#  - cpu.stat usage_usec is a counter, and isolate (run as root, outside every stack's slice)
#    adds nothing to it: before <= isolate <= after, exactly (isolate prints microseconds).
#  - memory.current and pids.current are gauges of an idle stack (sleeping containers, the
#    podman API service stopped): between the two reads, widened by 1 MiB of memory (kernel
#    allocations, page cache of the idle user manager) and 1 task (a short-lived helper of the
#    user manager); an unrelated number would miss by far more.
#  - memory.events oom_kill and memory.max / pids.max do not move while nothing happens: equal.
# The whole bracket takes well under a second; isolate's own read time
# (isolate_usage_last_read_timestamp_seconds) must be within one second of the second read.

mkdir -p /srv/a /srv/b
cat >/etc/isolate/policy.toml <<'TOML'
[stacks.a]
data = ["/srv/a"]
migrate = "reown"

[stacks.a.limits]
memory_max = "64M"
memory_swap_max = "0"

[stacks.b]
data = ["/srv/b"]
migrate = "reown"
TOML

step "apply a (memory_max 64M) and b; each runs a sleeping container"
apply_until_up stk-a stk-b
for s in a b; do
  assert_stack_running "stk-$s"
  import_busybox "stk-$s"
  as_user "stk-$s" podman run -d --network none localhost/busybox sleep 3600 >/dev/null
done

step "a's container allocating 200M is OOM-killed (memory.events oom_kill moves)"
as_user stk-a podman run --rm --network none localhost/busybox \
  sh -c 'head -c 209715200 /dev/zero | tail | wc -c' || true
oom=$(cgroup_key "$(user_slice_dir stk-a)/memory.events" oom_kill)
[ "$oom" -ge 1 ] || fail "no OOM kill in a's slice"
for s in a b; do as_user "stk-$s" systemctl --user stop podman.service podman.socket 2>/dev/null || true; done
sleep 2

# slice_values USER: "memory.current pids.current usage_usec oom_kill" of USER's slice now.
slice_values() {
  local d
  d=$(user_slice_dir "$1")
  printf '%s %s %s %s\n' "$(cat "$d/memory.current")" "$(cat "$d/pids.current")" \
    "$(cgroup_key "$d/cpu.stat" usage_usec)" "$(cgroup_key "$d/memory.events" oom_kill)"
}
metric() { awk -v want="$1{stack=\"$2\"}" '$1 == want { print $2 }' /run/usage.prom; }

step "audit --only usage, between two reads of each slice"
read -r a_mem0 a_pids0 a_cpu0 a_oom0 <<<"$(slice_values stk-a)"
read -r b_mem0 b_pids0 b_cpu0 b_oom0 <<<"$(slice_values stk-b)"
isolate_ok audit --only usage --format prometheus --output /run/usage.prom
read -r a_mem1 a_pids1 a_cpu1 a_oom1 <<<"$(slice_values stk-a)"
read -r b_mem1 b_pids1 b_cpu1 b_oom1 <<<"$(slice_values stk-b)"
after=$(date +%s.%N)
cat /run/usage.prom
read_at=$(awk '$1 == "isolate_usage_last_read_timestamp_seconds" { print $2 }' /run/usage.prom)
python3 - "$read_at" "$after" <<'PY' || fail "isolate read the slices more than one second before the second read"
import sys
read_at, after = map(float, sys.argv[1:])
print(f"isolate's read to the second read: {after - read_at:.3f} s")
sys.exit(0 if 0 <= after - read_at < 1 else 1)
PY

check() { # STACK MEM0 MEM1 PIDS0 PIDS1 CPU0 CPU1 OOM0 OOM1
  python3 - "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" \
    "$(metric isolate_stack_memory_bytes "$1")" "$(metric isolate_stack_tasks "$1")" \
    "$(metric isolate_stack_cpu_seconds_total "$1")" "$(metric isolate_stack_oom_kills_total "$1")" \
    "$(metric isolate_stack_cgroup_available "$1")" <<'PY'
import sys
s, m0, m1, p0, p1, c0, c1, o0, o1, mem, tasks, cpu, oom, avail = sys.argv[1:]
m0, m1, p0, p1, c0, c1, o0, o1 = map(int, (m0, m1, p0, p1, c0, c1, o0, o1))
problems = []
if avail != "1": problems.append(f"cgroup_available {avail!r}")
mem, tasks, oom = int(float(mem)), int(float(tasks)), int(float(oom))
cpu_usec = round(float(cpu) * 1e6)
MiB = 1 << 20
if not (min(m0, m1) - MiB <= mem <= max(m0, m1) + MiB):
    problems.append(f"memory {mem} not within [{m0}, {m1}] +- 1 MiB")
if not (min(p0, p1) - 1 <= tasks <= max(p0, p1) + 1):
    problems.append(f"tasks {tasks} not within [{p0}, {p1}] +- 1")
if not (c0 <= cpu_usec <= c1):
    problems.append(f"cpu {cpu_usec} usec not within [{c0}, {c1}]")
if not (o0 == oom == o1):
    problems.append(f"oom_kills {oom} != memory.events oom_kill {o0}/{o1}")
print(f"{s}: memory {m0} / {mem} / {m1}, tasks {p0} / {tasks} / {p1}, cpu usec {c0} / {cpu_usec} / {c1}, oom_kill {o0} / {oom} / {o1}")
sys.exit("; ".join(problems) if problems else 0)
PY
}
step "each value isolate reports lies between the two reads of the slice's own files"
check a "$a_mem0" "$a_mem1" "$a_pids0" "$a_pids1" "$a_cpu0" "$a_cpu1" "$a_oom0" "$a_oom1" || fail "a's metrics differ from its slice"
check b "$b_mem0" "$b_mem1" "$b_pids0" "$b_pids1" "$b_cpu0" "$b_cpu1" "$b_oom0" "$b_oom1" || fail "b's metrics differ from its slice"
[ "$(metric isolate_stack_oom_kills_total a)" -ge 1 ] || fail "a's OOM kill is not in the metrics"
assert_eq 0 "$(metric isolate_stack_oom_kills_total b)" "b's OOM kills"
assert_eq 67108864 "$(metric isolate_stack_memory_max_bytes a)" "a's memory limit in the metrics"
assert_eq +Inf "$(metric isolate_stack_memory_max_bytes b)" "b's memory limit (none) in the metrics"

step "status shows each stack's usage from its slice"
isolate_ok status
grep -Eq '^  memory [0-9.]+ [KMG]iB of 64.0 MiB, CPU [0-9.]+ s, tasks [0-9]+' "$ISO_OUT" ||
  fail "status shows no usage line with a's 64 MiB limit"
