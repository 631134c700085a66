# Issue 10: after one of two stacks is migrated and real containers wrote files, `isolate
# audit` attributes each file to the right stack and container uid, lists the unmigrated
# stack's data as legacy, and reports a hardlink planted across the stacks' data.
legacy=alice
step "legacy user $legacy; its containers write /srv/app and /srv/notes as container uid 0, 999 and 1000"
setup_legacy_user "$legacy"
in_ct install -d -o "$legacy" -g "$legacy" /srv/notes
for dir in /srv/app /srv/notes; do
  as_user "$legacy" podman run --rm --network none -v "$dir:/data" localhost/busybox sh -c '
    set -e
    echo root >/data/old-by-0
    echo 999 >/data/old-by-999
    echo 1000 >/data/old-by-1000
    chown 999:999 /data/old-by-999
    chown 1000:1000 /data/old-by-1000'
done

step "migrate only app (shift); notes stays with $legacy"
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"

[stacks.notes]
data = ["/srv/notes"]
migrate = "shift"
TOML
isolate_ok apply --stack app

step "a container of stk-app writes new files as container uid 0, 33 and 1000"
import_busybox stk-app
as_user stk-app podman run --rm --network none -v /srv/app:/data localhost/busybox sh -c '
  set -e
  echo 0 >/data/new-by-0
  echo 33 >/data/new-by-33
  echo 1000 >/data/new-by-1000
  chown 33:33 /data/new-by-33
  chown 1000:1000 /data/new-by-1000'

step "plant a hardlink across the stacks: /srv/app/planted is /srv/notes/old-by-999"
in_ct ln /srv/notes/old-by-999 /srv/app/planted

step "audit --format json"
run_isolate audit --format json
# Findings of severity error exist (the planted link, data paths others can read): exit 1.
assert_eq 1 "$ISO_RC" "audit exit code with error findings"

step "each file is attributed to the stack and container uid that wrote it (uid and gid)"
python3 - "$CT_ROOT" "$ISO_OUT" <<'PY'
import json, os, sys
root = sys.argv[1]
doc = json.load(open(sys.argv[2]))
paths = {p["path"]: p for p in doc["paths"]}
def row(path, kind, host_id):
    rows = [r for r in paths[path][kind] if r["host_id"] == host_id]
    assert rows, f"{path}: no {kind} row for host id {host_id}"
    return rows[0]
def check(path, name, cls, who, container):
    st = os.lstat(root + path + "/" + name)
    for kind, host_id in (("uids", st.st_uid), ("gids", st.st_gid)):
        r = row(path, kind, host_id)
        got = (r["class"], r.get("stack", r.get("owner")), r["container_id"])
        assert got == (cls, who, container), f"{path}/{name} {kind} {host_id}: {got} != {(cls, who, container)}"
        print(f"{path}/{name}: {kind[:-1]} {host_id} -> {got}")
for name, c in (("new-by-0", 0), ("new-by-33", 33), ("new-by-1000", 1000),
                ("old-by-0", 0), ("old-by-999", 999), ("old-by-1000", 1000)):
    check("/srv/app", name, "stack", "app", c)
for name, c in (("old-by-0", 0), ("old-by-999", 999), ("old-by-1000", 1000)):
    check("/srv/notes", name, "legacy", "alice", c)
notes = paths["/srv/notes"]
assert set(notes["uid_classes"]) == {"legacy"}, notes["uid_classes"]
assert set(notes["gid_classes"]) == {"legacy"}, notes["gid_classes"]
# The planted link is the one legacy inode in app's data (and a finding there: app is migrated).
check("/srv/app", "planted", "legacy", "alice", 999)
app = paths["/srv/app"]
assert app["uid_classes"]["legacy"]["inodes"] == 1, app["uid_classes"]
assert set(app["uid_classes"]) == {"stack", "legacy"}, app["uid_classes"]
legacy = [f for f in doc["findings"] if f["kind"] == "legacy_after_migration"]
assert [(f["stack"], f["samples"]) for f in legacy] == [("app", ["/srv/app/planted"])], legacy
links = [f for f in doc["findings"] if f["kind"] == "hardlink_outside"]
by_stack = {f["stack"]: f for f in links}
assert by_stack["app"]["count"] == 1 and by_stack["app"]["samples"] == ["/srv/app/planted"], by_stack
assert by_stack["notes"]["count"] == 1 and by_stack["notes"]["samples"] == ["/srv/notes/old-by-999"], by_stack
assert all(f["severity"] == "error" for f in links)
print("hardlink_outside:", [(f["stack"], f["samples"]) for f in links])
PY

step "the Prometheus file for node_exporter is written atomically and parses"
run_isolate audit --format prometheus --output /var/lib/prometheus/node-exporter/isolate.prom
assert_eq 1 "$ISO_RC" "audit exit code with error findings"
prom="$CT_ROOT/var/lib/prometheus/node-exporter/isolate.prom"
promtool check metrics <"$prom" || fail "promtool rejects $prom"
grep '^isolate_audit_findings{kind="hardlink_outside",severity="error",stack="app",path="/srv/app"} 1$' "$prom" ||
  fail "no hardlink finding metric for app"
[ -z "$(ls -A "$(dirname "$prom")" | grep -v '^isolate.prom$')" ] || fail "a temporary file was left beside $prom"
