# Helpers for the booted-systemd scenarios (sourced by scripts/integration with CT_PID, CT_ROOT, SUITE set).
# Everything asserts what really happened in the container, never what isolate says it did.

source "$SUITE/container.sh"

CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ISO_OUT=$(mktemp) ISO_ERR=$(mktemp) ISO_RC=0
trap 'rm -f "$ISO_OUT" "$ISO_ERR"' EXIT

step() { printf -- '--- %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

# in_ct CMD...: CMD inside the container, as root, cwd /, a clean environment.
in_ct() { nsenter -t "$CT_PID" -a -W / env -i PATH="$CT_PATH" LANG=C.UTF-8 "$@"; }
in_ct_sh() { in_ct bash -c "$1"; }

# A real reboot of this scenario's container; CT_PID follows it.
reboot_ct() {
  ct_reboot "$CT_ROOT" || fail "the container did not come back after a reboot"
}

uid_of() { in_ct id -u "$1"; }
gid_of() { in_ct id -g "$1"; }
home_of() { in_ct getent passwd "$1" | cut -d: -f6; }

# as_user USER CMD...: CMD as USER with its runtime dir, as a login would set it (cwd /).
as_user() {
  local user=$1 uid
  shift
  uid=$(uid_of "$user")
  in_ct runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" HOME="$(home_of "$user")" "$@"
}

# Filter: podman's stderr without the line podman 5 prints on every call on this VM's cgroup v1
# (a real Debian 13 host is cgroup v2 and prints nothing), for scenarios that compare it.
drop_cgroupv1_warning() {
  grep -v 'Using cgroups-v1 which is deprecated in favor of cgroups-v2' || true
}

# The busybox image every scenario's containers run (no registry here).
import_busybox() {
  as_user "$1" podman import -q /usr/local/share/isolate-it/busybox.tar localhost/busybox >/dev/null
}

# What a rootless container of USER sees as its uid (or, with "gid", gid) map, one
# "inside outside count" per line.
container_uid_map() {
  short_run "$1" podman run --rm --network none localhost/busybox cat "/proc/self/${2:-uid}_map" |
    awk '{ print $1, $2, $3 }'
}

# podman 4.3 can lose the whole output of a container that exits at once (its attach races the
# exit; seen under load as empty output with exit 0, in scenarios 40 and 50): for a command
# whose output is never empty, an empty one is asked again (at most 3 times).
short_run() { # USER COMMAND...
  local out try
  for try in 1 2 3; do
    out=$(as_user "$@")
    [ -n "$out" ] && break
    echo "short_run: no output from ${*:2:3} (try $try)" >&2
  done
  printf '%s\n' "$out"
}

# The map podman must build for USER: its uid (gid) for 0, its /etc/subuid (subgid) range from 1.
expected_uid_map() {
  local user=$1 kind=${2:-uid} line own
  line=$(grep "^$user:" "$CT_ROOT/etc/sub$kind") || fail "no /etc/sub$kind line for $user"
  [ "$(printf '%s\n' "$line" | wc -l)" = 1 ] || fail "more than one /etc/sub$kind line for $user: $line"
  if [ "$kind" = uid ]; then own=$(uid_of "$user"); else own=$(gid_of "$user"); fi
  printf '0 %s 1\n1 %s %s\n' "$own" "$(cut -d: -f2 <<<"$line")" "$(cut -d: -f3 <<<"$line")"
}

assert_eq() { # EXPECTED ACTUAL WHAT
  [ "$1" = "$2" ] || fail "$3: expected [$1], got [$2]"
}

# Waits up to SECONDS for CMD... to succeed.
wait_for() {
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@"
}

system_unit_prop() { in_ct systemctl show -p "$2" --value "$1"; }
user_unit_prop() { as_user "$1" systemctl --user show -p "$3" --value "$2"; }

# GET /_ping on USER's podman socket, from inside the container; prints the body.
podman_ping() {
  local uid
  uid=$(uid_of "$1")
  in_ct curl -sS --max-time 20 --unix-socket "/run/user/$uid/podman/podman.sock" http://d/_ping
}

# Everything a stack's systemd side must be, as seen by systemd itself.
assert_stack_running() {
  local user=$1 uid
  uid=$(uid_of "$user")
  [ -e "$CT_ROOT/var/lib/systemd/linger/$user" ] || fail "no linger file for $user"
  assert_eq active "$(system_unit_prop "user@$uid.service" ActiveState)" "user@$uid.service ActiveState"
  assert_eq active "$(user_unit_prop "$user" podman.socket ActiveState)" "$user podman.socket ActiveState"
  assert_eq enabled "$(user_unit_prop "$user" podman.socket UnitFileState)" "$user podman.socket UnitFileState"
  assert_eq OK "$(podman_ping "$user")" "GET /_ping on $user's socket"
}

# Fails unless a rootless container of USER maps exactly its uid and its subuid range.
assert_container_mapping() {
  local user=$1
  import_busybox "$user"
  assert_eq "$(expected_uid_map "$user")" "$(container_uid_map "$user")" "uid_map in a container of $user"
  assert_eq "$(expected_uid_map "$user" gid)" "$(container_uid_map "$user" gid)" "gid_map in a container of $user"
}

# The listing "uid:gid path" of everything under DIR as a rootless container of USER sees it
# (DIR mounted at /data).
# (a listing always has `.`: short_run asks again when podman lost the output)
container_listing() {
  short_run "$1" podman run --rm --network none -v "$2:/data" localhost/busybox \
    sh -c 'cd /data && find . | sort | while read -r f; do stat -c "%u:%g %n" "$f"; done'
}

# No two /etc/subuid (or subgid) lines share an id.
assert_no_overlap() {
  local kind
  for kind in subuid subgid; do
    sort -t: -k2,2n "$CT_ROOT/etc/$kind" | awk -F: -v f="$kind" '
      NR > 1 && $2 < end { print f ": " prev " overlaps " $0; bad = 1 }
      { if ($2 + $3 > end) end = $2 + $3; prev = $0 }
      END { exit bad }' || fail "overlapping $kind ranges"
  done
}

# The two-stack policy scenarios 10 and 20 start from, applied.
apply_two_stack_policy() {
  mkdir -p "$CT_ROOT/srv/web" "$CT_ROOT/srv/db"
  write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
migrate = "reown"

[stacks.db]
data = ["/srv/db"]
migrate = "reown"
TOML
  isolate_ok apply
}

# Timestamps that change whenever a stack's user manager or socket is (re)started.
start_stamps() {
  local user=$1 uid
  uid=$(uid_of "$user")
  printf '%s %s %s\n' "$(system_unit_prop "user@$uid.service" ActiveEnterTimestampMonotonic)" \
    "$(system_unit_prop "user@$uid.service" MainPID)" \
    "$(user_unit_prop "$user" podman.socket ActiveEnterTimestampMonotonic)"
}

# write_policy PATH (in the container) < TOML
write_policy() {
  mkdir -p "$CT_ROOT$(dirname "$1")"
  cat >"$CT_ROOT$1"
}

# run_isolate ARGS...: runs isolate in the container; sets ISO_RC, stdout in $ISO_OUT, stderr in $ISO_ERR.
run_isolate() {
  ISO_RC=0
  in_ct isolate "$@" >"$ISO_OUT" 2>"$ISO_ERR" || ISO_RC=$?
  printf '$ isolate %s  -> exit %s\n' "$*" "$ISO_RC"
  sed 's/^/  out| /' "$ISO_OUT"
  sed 's/^/  err| /' "$ISO_ERR"
}

# Like run_isolate, but the command must exit 0.
isolate_ok() {
  run_isolate "$@"
  [ "$ISO_RC" = 0 ] || fail "isolate $* exited $ISO_RC"
}

# Checksums of the account files and whether isolate's state file exists: equal before and
# after means "nothing changed".
host_fingerprint() {
  local f
  for f in etc/passwd etc/group etc/shadow etc/gshadow etc/subuid etc/subgid; do
    if [ -e "$CT_ROOT/$f" ]; then sha256sum "$CT_ROOT/$f" | cut -d' ' -f1; else echo "absent $f"; fi
  done
  ls -A "$CT_ROOT/var/lib/systemd/linger" 2>/dev/null | tr '\n' ' '
  echo
  [ -e "$CT_ROOT/var/lib/isolate/state.json" ] && echo "state.json present" || echo "no state.json"
}

# json_stack_value FILE STACK KEY: the value of KEY in the part of a JSON document about STACK
# (an object whose name/stack field is STACK or its user, or the value under a key STACK).
# Tolerant of the document's shape, so the check is about the fact, not the layout.
json_stack_value() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
path, stack, key = sys.argv[1:]
doc = json.load(open(path))
names = {stack, "stk-" + stack}
def find_key(node):
    if isinstance(node, dict):
        if key in node:
            return node[key]
        for v in node.values():
            r = find_key(v)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = find_key(v)
            if r is not None:
                return r
    return None
def about_stack(node):
    if isinstance(node, dict):
        if any(node.get(k) in names for k in ("name", "stack", "user")):
            yield node
        for k, v in node.items():
            if k in names and isinstance(v, dict):
                yield v
            yield from about_stack(v)
    elif isinstance(node, list):
        for v in node:
            yield from about_stack(v)
for part in about_stack(doc):
    value = find_key(part)
    if value is not None:
        print(json.dumps(value))
        sys.exit(0)
print("null")
EOF
}

# The legacy user (issue 4): a normal user with a subordinate range, linger and the busybox image,
# owning /srv/app the way its rootless containers left it.
setup_legacy_user() {
  local legacy=$1 uid
  in_ct useradd --create-home --shell /bin/bash "$legacy"
  grep -q "^$legacy:" "$CT_ROOT/etc/subuid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subuid"
  grep -q "^$legacy:" "$CT_ROOT/etc/subgid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subgid"
  grep "^$legacy:" "$CT_ROOT/etc/subuid" "$CT_ROOT/etc/subgid"
  in_ct loginctl enable-linger "$legacy"
  uid=$(uid_of "$legacy")
  wait_for 30 in_ct test -S "/run/user/$uid/bus" || fail "user manager of $legacy did not come up"
  in_ct install -d -o "$legacy" -g "$legacy" /srv/app
  import_busybox "$legacy"
}

# The issue 4 policy: stack app takes over /srv/app from LEGACY by shifting.
write_shift_policy() {
  write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$1"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
TOML
}

# "uid:gid path" of everything under DIR (in the container) as the host sees it.
host_listing() {
  (cd "$CT_ROOT$1" && find . | sort | xargs -d '\n' stat -c '%u:%g %n')
}
