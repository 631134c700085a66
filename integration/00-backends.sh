# The Rust systemd/podman backends alone (no CLI): a hand-made stack user goes through
# enable_linger -> wait_user_manager -> enable_and_start_user_unit(podman.socket) -> ping.
user=it-probe
in_ct useradd --system --home-dir /var/lib/it-probe --create-home --shell /usr/sbin/nologin "$user"
printf '%s:500000:65536\n' "$user" >>"$CT_ROOT/etc/subuid"
printf '%s:500000:65536\n' "$user" >>"$CT_ROOT/etc/subgid"
uid=$(uid_of "$user")

step "before: no linger, no user manager"
[ ! -e "$CT_ROOT/var/lib/systemd/linger/$user" ] || fail "linger file before the probe"
assert_eq inactive "$(system_unit_prop "user@$uid.service" ActiveState)" "user@$uid.service before"

step "systemd-probe $uid"
in_ct systemd-probe "$uid"

step "systemd agrees: linger, user manager, podman.socket enabled and active, _ping OK"
assert_stack_running "$user"
[ -L "$CT_ROOT/var/lib/it-probe/.config/systemd/user/sockets.target.wants/podman.socket" ] ||
  fail "podman.socket is not enabled in $user's own unit directory"

step "a rootless container of $user maps uid $uid and 500000+65536"
assert_eq "$(printf '0 %s 1\n1 500000 65536' "$uid")" "$(expected_uid_map "$user")" "expected map"
assert_container_mapping "$user"

step "running again changes nothing and restarts nothing"
before=$(start_stamps "$user")
in_ct systemd-probe "$uid"
assert_eq "$before" "$(start_stamps "$user")" "start timestamps of user@$uid.service and podman.socket"

step "a user manager that never comes: bounded wait, clear error"
in_ct useradd --system --no-create-home --shell /usr/sbin/nologin it-nolinger
nolinger=$(uid_of it-nolinger)
rc=0
err=$(in_ct timeout 60 systemd-probe --wait-only "$nolinger" 2>&1) || rc=$?
printf '%s\n' "$err"
[ "$rc" = 1 ] || fail "expected exit 1 from a wait that times out, got $rc"
grep -q "timed out after .* waiting for user@$nolinger.service" <<<"$err" || fail "timeout error does not name the unit"

step "running_container_mounts sees a running container of $user and its bind mount"
in_ct install -d -o "$user" -g "$user" /srv/probe
import_busybox "$user"
as_user "$user" podman run -d --name sleeper --network none -v /srv/probe:/data localhost/busybox sleep 300 >/dev/null
found=$(in_ct systemd-probe --containers "$uid")
printf '%s\n' "$found"
assert_eq '[{"name":"sleeper","sources":["/srv/probe"]}]' "$found" "running containers with mounts"

step "mount_holders sees it too, from /proc, and nothing holds an unrelated path"
holders=$(in_ct systemd-probe --holders /srv/probe)
printf '%s\n' "$holders"
python3 - "$holders" "$uid" <<'PY'
import json, sys
holders, uid = json.loads(sys.argv[1]), int(sys.argv[2])
assert len(holders) == 1, holders
assert holders[0]["mount_point"] == "/data", holders
assert holders[0]["uid"] >= 500000 or holders[0]["uid"] == uid, holders
PY
assert_eq "$holders" "$(in_ct systemd-probe --holders /srv)" "holders of /srv (the container mounts a part of it)"
in_ct mkdir /srv/probe-sibling
assert_eq '[]' "$(in_ct systemd-probe --holders /srv/probe-sibling)" "holders of a sibling of /srv/probe"
assert_eq '[]' "$(in_ct systemd-probe --holders /usr)" "holders of /usr"
as_user "$user" podman rm -f -t 0 sleeper >/dev/null
assert_eq '[]' "$(in_ct systemd-probe --containers "$uid")" "running containers after rm"
assert_eq '[]' "$(in_ct systemd-probe --holders /srv/probe)" "holders after rm"
