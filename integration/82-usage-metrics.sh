# Issue 22 (accounting): a stack's disk use per tree (its data, its podman store) in the audit's
# metrics equals what the host's files add up to, counted independently here (regular files'
# sizes and inodes whose uid is in the stack's mapping; a store walk that crosses no mount and
# counts a hardlinked inode once); `audit --only usage` reads the slices alone (on this cgroup
# v1 host: unavailable, with no fake zero; on a cgroup v2 host: the slice's values); promtool
# accepts both outputs; `status` shows each stack's usage line.
step "apply web and db; stk-web imports an image and its container writes /srv/web"
apply_two_stack_policy
import_busybox stk-web
as_user stk-web podman run --rm --network none -v /srv/web:/data localhost/busybox sh -c '
  set -e
  head -c 100000 /dev/zero >/data/by-0
  head -c 2345 /dev/zero >/data/by-1000
  chown 1000:1000 /data/by-1000
  mkdir /data/dir
  chown 33:33 /data/dir'

# /run in the container is its own tmpfs: the metrics go to /root, seen from here too.
step "audit --format prometheus"
run_isolate audit --format prometheus --output /root/isolate.prom
[ "$ISO_RC" = 0 ] || [ "$ISO_RC" = 1 ] || fail "audit exited $ISO_RC"
prom="$CT_ROOT/root/isolate.prom"
promtool check metrics <"$prom" || fail "promtool rejects the audit's metrics"

metric() { # NAME LABELS: the sample's value, empty when absent
  awk -v want="$1{$2}" '$1 == want { print $2 }' "$prom"
}

# The mapping of a stack user: its uid and its /etc/subuid range.
count() { # USER TREE: "INODES BYTES" of the tree's entries whose uid is in USER's mapping
  python3 - "$CT_ROOT" "$(uid_of "$1")" "$(grep "^$1:" "$CT_ROOT/etc/subuid")" "$2" <<'PY'
import os, sys
root, uid, line, tree = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
_, start, count = line.split(":")
start, count = int(start), int(count)
mine = lambda u: u == uid or start <= u < start + count
top = root + tree
top_dev = os.lstat(top).st_dev
seen, inodes, size = set(), 0, 0
for d, dirs, files in os.walk(top, followlinks=False):
    st = os.lstat(d)
    entries = [(d, st)]
    keep = []
    for n in dirs:
        s = os.lstat(os.path.join(d, n))
        if s.st_dev != top_dev:
            continue  # a mount point: not crossed, not counted
        keep.append(n)
        if os.path.islink(os.path.join(d, n)):
            entries.append((os.path.join(d, n), s))
    dirs[:] = [n for n in keep if not os.path.islink(os.path.join(d, n))]
    for n in files:
        entries.append((os.path.join(d, n), os.lstat(os.path.join(d, n))))
    for p, s in entries:
        if (s.st_dev, s.st_ino) in seen:
            continue
        seen.add((s.st_dev, s.st_ino))
        if mine(s.st_uid):
            inodes += 1
            if (s.st_mode & 0o170000) == 0o100000:
                size += s.st_size
print(inodes, size)
PY
}

step "web's data: the audit's bytes and inodes equal the host's files in web's ids"
read -r inodes bytes <<<"$(count stk-web /srv/web)"
[ "$bytes" -ge 102345 ] || fail "the container's files are not on the host ($bytes bytes)"
assert_eq "$bytes" "$(metric isolate_stack_disk_bytes 'stack="web",tree="data"')" "web data bytes"
assert_eq "$inodes" "$(metric isolate_stack_disk_inodes 'stack="web",tree="data"')" "web data inodes"

step "web's podman store under its home: the audit's bytes and inodes equal the host's"
store="$(home_of stk-web)/.local/share/containers/storage"
[ -d "$CT_ROOT$store" ] || fail "no store at $store"
read -r inodes bytes <<<"$(count stk-web "$store")"
[ "$bytes" -gt 100000 ] || fail "the imported image is not in the store ($bytes bytes)"
assert_eq "$bytes" "$(metric isolate_stack_disk_bytes 'stack="web",tree="store"')" "web store bytes"
assert_eq "$inodes" "$(metric isolate_stack_disk_inodes 'stack="web",tree="store"')" "web store inodes"
# db ran no container, but apply's ping started its podman, which made a (small) store.
db_store="$(home_of stk-db)/.local/share/containers/storage"
read -r inodes bytes <<<"$(count stk-db "$db_store")"
assert_eq "$bytes" "$(metric isolate_stack_disk_bytes 'stack="db",tree="store"')" "db store bytes"
assert_eq "$inodes" "$(metric isolate_stack_disk_inodes 'stack="db",tree="store"')" "db store inodes"

step "audit --only usage: the slices alone, promtool accepts it"
start=$(date +%s%N)
run_isolate audit --only usage --format prometheus --output /root/isolate-usage.prom
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
assert_eq 0 "$ISO_RC" "audit --only usage exit code (findings are not its business)"
echo "audit --only usage took ${took_ms} ms"
prom="$CT_ROOT/root/isolate-usage.prom"
promtool check metrics <"$prom" || fail "promtool rejects the usage metrics"
grep -q '^isolate_audit_' "$prom" && fail "--only usage emitted audit families"
grep -q '^isolate_stack_disk' "$prom" && fail "--only usage walked the data"
if [ -e "$CT_ROOT/sys/fs/cgroup/cgroup.controllers" ]; then
  step "cgroup v2: web's slice is read"
  assert_eq 1 "$(metric isolate_stack_cgroup_available 'stack="web"')" "web slice available"
  [ -n "$(metric isolate_stack_memory_bytes 'stack="web"')" ] || fail "no memory sample for web"
else
  step "cgroup v1 (this host): every slice is unavailable, no value is faked"
  for stack in web db; do
    assert_eq 0 "$(metric isolate_stack_cgroup_available "stack=\"$stack\"")" "$stack slice available"
  done
  grep -Eq '^isolate_stack_(memory|cpu|tasks|oom|io)' "$prom" && fail "a value for an unreadable slice"
  run_isolate audit --only usage
  grep -q '^web (uid [0-9]*): usage unavailable: no cgroup v2' "$ISO_OUT" ||
    fail "the text does not say why web's usage is unavailable"
fi

step "status shows each stack's usage"
isolate_ok status --no-systemd
grep -Eq '^  (usage unavailable: |memory )' "$ISO_OUT" || fail "status shows no usage line"
