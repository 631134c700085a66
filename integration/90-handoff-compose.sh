# Issue 12: one `apply --stack` moves a stopped compose project of the legacy user whole to its
# stack user: env files become the stack user's alone, local images are copied into its store
# with the same IDs, the named volume moves with its owners shifted, and a user unit in the
# stack user's manager runs the project (also after a reboot), its logs readable by the stack
# user. Rollback gives it all back and the legacy project starts again.
legacy=alice
install -m 0755 "$SUITE/podman-nonet" "$CT_ROOT/usr/local/bin/podman-nonet"
# Under systemd-nspawn, crun cannot create a session keyring for containers started from a
# systemd unit (EPERM from keyctl); a login shell's podman can. Containers share the caller's
# keyring instead (a setting of this test machine, not of isolate).
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"
# compose as USER in /srv/app/conf, with the env file's variables (podman-compose 1.0.3 has no
# --env-file) and the network wrapper (see podman-nonet).
compose_as() {
  local user=$1
  shift
  as_user "$user" sh -c 'cd /srv/app/conf && set -a && . ./app.env && set +a &&
    exec podman-compose --podman-path /usr/local/bin/podman-nonet -p app "$@"' compose "$@"
}
# "uid:gid path" of everything under DIR as USER's containers of the project's image see it.
listing_as() {
  as_user "$1" podman run --rm --network none -v "$2:/data" localhost/app:1 \
    sh -c 'cd /data && find . | sort | while read -r f; do stat -c "%u:%g %n" "$f"; done'
}
step "legacy user $legacy with a local image localhost/app:1 (imported busybox, tagged)"
setup_legacy_user "$legacy"
as_user "$legacy" podman tag localhost/busybox localhost/app:1
legacy_id=$(as_user "$legacy" podman image inspect --format '{{.Id}}' localhost/app:1)

step "its compose project: two services, a named volume written as uid 999, a bind-mounted data path"
# The walk wants root-owned parents above a data path.
in_ct chown root:root /srv/app
in_ct install -d -o "$legacy" -g "$legacy" /srv/app/data /srv/app/conf
cat >"$CT_ROOT/srv/app/conf/compose.yaml" <<'YAML'
services:
  db:
    image: localhost/app:${TAG}
    network_mode: none
    user: "999:999"
    volumes:
      - dbdata:/var/lib/db
    command: ["sh", "-c", "test -e /var/lib/db/by-999 || echo 999 >/var/lib/db/by-999; echo db up as $$(id -u); exec sleep 100000"]
  web:
    image: localhost/app:${TAG}
    network_mode: none
    volumes:
      - /srv/app/data:/data
    command: ["sh", "-c", "test -e /data/by-root || echo root >/data/by-root; echo web up; exec sleep 100000"]
volumes:
  dbdata:
YAML
printf 'TAG=1\nSECRET=hunter2\n' >"$CT_ROOT/srv/app/conf/app.env"
in_ct chown -R "$legacy:$legacy" /srv/app/conf
in_ct chmod 0644 /srv/app/conf/app.env
compose_as "$legacy" up -d >/dev/null 2>&1 || { compose_as "$legacy" up -d 2>&1 | tail -20; fail "podman-compose up as $legacy failed"; }
wait_for 30 as_user "$legacy" sh -c 'podman logs app_db_1 2>&1 | grep -q "db up as 999"' || fail "the legacy db did not start"
wait_for 30 as_user "$legacy" sh -c 'podman logs app_web_1 2>&1 | grep -q "web up"' || fail "the legacy web did not start"
as_user "$legacy" podman ps -a --format '{{.Names}} {{.Status}}'
vol_before=$(as_user "$legacy" podman run --rm --network none -v app_dbdata:/v localhost/app:1 ls -ln /v | awk 'NR>1 {print $3":"$4, $NF}')
data_before=$(listing_as "$legacy" /srv/app/data)
printf 'volume as the legacy containers see it: %s\ndata: %s\n' "$vol_before" "$data_before"
assert_eq "999:999 by-999" "$vol_before" "the db wrote its volume as 999"
compose_as "$legacy" stop >/dev/null 2>&1
# uid 1800: journald keeps the logs of uids below 1000 in the system journal, which the stack
# user cannot read (README, "Logs").
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app/data"]
migrate = "shift"
uid = 1800
compose = ["/srv/app/conf/compose.yaml"]
env_files = ["/srv/app/conf/app.env"]
service = true
compose_command = ["podman-compose", "--podman-path", "/usr/local/bin/podman-nonet"]
TOML

step "issue 17 (12): a fake API on alice's socket naming /root/secret as the volume moves nothing (exit 2)"
in_ct install -d -m 0700 /root/secret
in_ct sh -c 'echo key >/root/secret/key && chmod 0600 /root/secret/key'
cat >"$CT_ROOT/usr/local/bin/fake-libpod.py" <<'PY'
# A 35-line libpod: every volume query answers with app_dbdata placed at argv[2].
import json, os, socket, sys
path, mountpoint, pidfile = sys.argv[1:]
vol = {"Name": "app_dbdata", "Driver": "local", "Mountpoint": mountpoint,
       "Labels": {"io.podman.compose.project": "app"}}
os.makedirs(os.path.dirname(path), exist_ok=True)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
open(pidfile, "w").write(str(os.getpid()))
while True:
    c, _ = srv.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            break
        req += d
    p = req.split(b" ")[1].decode() if req.count(b" ") else ""
    if "/volumes/json" in p:
        st, body = "200 OK", json.dumps([vol])
    elif "/volumes/app_dbdata/json" in p:
        st, body = "200 OK", json.dumps(vol)
    elif "/containers/json" in p:
        st, body = "200 OK", "[]"
    elif "_ping" in p:
        st, body = "200 OK", "OK"
    else:
        st, body = "404 Not Found", '{"cause":"no such object"}'
    b = body.encode()
    c.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n" % (st, len(b))).encode() + b)
    c.close()
PY
legacy_uid=$(uid_of "$legacy")
legacy_sock=/run/user/$legacy_uid/podman/podman.sock
as_user "$legacy" systemctl --user stop podman.socket podman.service
as_user "$legacy" python3 /usr/local/bin/fake-libpod.py "$legacy_sock" /root/secret /tmp/fake-libpod.pid &
wait_for 10 in_ct test -s /tmp/fake-libpod.pid || fail "the fake libpod did not start"
secret_before=$(in_ct find /root/secret -printf '%p %U:%G %m %i\n' | sort)
fingerprint_before=$(host_fingerprint)
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply with a socket naming /root/secret"
grep -q 'volume app_dbdata: .* places it at /root/secret, not at /home/alice/.local/share/containers/storage/volumes/app_dbdata/_data' "$ISO_ERR" || fail "the refusal does not name the volume and both paths"
assert_eq "$secret_before" "$(in_ct find /root/secret -printf '%p %U:%G %m %i\n' | sort)" "/root/secret after the refused apply"
assert_eq "$fingerprint_before" "$(host_fingerprint)" "accounts and state after the refused apply"
in_ct test ! -e /var/lib/isolate/volumes || fail "the refused apply staged a volume"
in_ct sh -c 'kill "$(cat /tmp/fake-libpod.pid)"; rm -f /tmp/fake-libpod.pid'
in_ct rm -f "$legacy_sock"
as_user "$legacy" systemctl --user start podman.socket
wait || true  # the fake ends by SIGTERM
podman_ping "$legacy" >/dev/null || fail "alice's own podman socket did not come back"

step "issue 17 (16): alice's volume whose _data is a symbolic link is refused (exit 2), not left behind"
vols=/home/$legacy/.local/share/containers/storage/volumes
as_user "$legacy" sh -c "cd $vols/app_dbdata && mv _data _data.real && ln -s _data.real _data"
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply with a _data symlink"
grep -q "volume app_dbdata: .*/app_dbdata/_data is a symbolic link" "$ISO_ERR" || fail "the refusal does not name the link"
assert_eq "$fingerprint_before" "$(host_fingerprint)" "accounts and state after the refused apply"
as_user "$legacy" sh -c "cd $vols/app_dbdata && rm _data && mv _data.real _data"

step "plan names the image copy, the env file, the volume and the service"
isolate_ok plan --stack app
grep -q '^+ image localhost/app:1 for app: copy from alice' "$ISO_OUT" || fail "plan does not copy localhost/app:1"
grep -q '^~ env file /srv/app/conf/app.env of app: owner stk-app' "$ISO_OUT" || fail "plan does not hand over the env file"
grep -q '^~ volume app_dbdata for app: move /home/alice/.local/share/containers/storage/volumes/app_dbdata/_data' "$ISO_OUT" || fail "plan does not move the volume"
grep -q '^+ service isolate-compose-app.service for app' "$ISO_OUT" || fail "plan does not install the service"

step "apply --stack app"
isolate_ok apply --stack app
uid=$(uid_of stk-app)
assert_eq 1800 "$uid" "uid of stk-app"

step "the env file is stk-app's alone"
assert_eq "stk-app:stk-app 400" "$(in_ct stat -c '%U:%G %a' /srv/app/conf/app.env)" "owner and mode of the env file"

step "the image is in stk-app's store with the same ID"
assert_eq "$legacy_id" "$(as_user stk-app podman image inspect --format '{{.Id}}' localhost/app:1)" "image ID in the stack user's store"

step "with no command typed as stk-app, its unit runs the project"
assert_eq "enabled active" "$(user_unit_prop stk-app isolate-compose-app.service UnitFileState) $(user_unit_prop stk-app isolate-compose-app.service ActiveState)" "state of the compose unit"
wait_for 30 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_db_1' || fail "app_db_1 does not run as stk-app"
wait_for 30 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_web_1' || fail "app_web_1 does not run as stk-app"
# The services' processes: web as container root (the stack user), db as container 999.
owners=$(in_ct sh -c 'for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^sleep 100000" && stat -c %u $p; done; true' | sort -u | tr '\n' ' ')
db_host=$(( $(grep '^stk-app:' "$CT_ROOT/etc/subuid" | cut -d: -f2) + 998 ))
assert_eq "1800 $db_host " "$owners" "host uids of the project's processes"

step "its containers show the same files and uids as before"
assert_eq "$vol_before" "$(as_user stk-app podman exec app_db_1 ls -ln /var/lib/db | awk 'NR>1 {print $3":"$4, $NF}')" "the volume as the stack's db sees it"
assert_eq "$data_before" "$(as_user stk-app podman exec app_web_1 sh -c 'cd /data && find . | sort | while read -r f; do stat -c "%u:%g %n" "$f"; done')" "the data path as the stack's web sees it"
assert_eq "com.docker.compose.project=app io.podman.compose.project=app" \
  "$(as_user stk-app podman volume inspect app_dbdata --format '{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}' | sed 's/ $//')" "labels of the stack's volume"
in_ct test ! -e /home/alice/.local/share/containers/storage/volumes/app_dbdata/_data || fail "the legacy volume still holds data"

step "podman logs as stk-app shows the service's output; root finds it in the journal"
wait_for 30 as_user stk-app sh -c 'podman logs app_db_1 2>&1 | grep -q "db up as 999"' || {
  as_user stk-app podman logs app_db_1 || true
  fail "podman logs as stk-app does not show the db's output"
}
wait_for 30 in_ct sh -c "journalctl --no-pager _UID=$uid | grep -q 'db up as 999'" || fail "root does not find the db's output in the journal"

step "status --unit prints the drop-in for a root-owned wrapper unit"
isolate_ok status --unit --stack app
grep -qx "User=stk-app" "$ISO_OUT" || fail "no User= in the drop-in"
grep -qx "Environment=XDG_RUNTIME_DIR=/run/user/$uid" "$ISO_OUT" || fail "no literal XDG_RUNTIME_DIR in the drop-in"
grep -qx "RequiresMountsFor=/run/user/$uid" "$ISO_OUT" || fail "no RequiresMountsFor= in the drop-in"

step "apply again: nothing to do"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"

step "the legacy containers are left behind, and plan says how to remove them"
as_user "$legacy" podman container exists app_db_1 || fail "the legacy container app_db_1 was deleted"
isolate_ok plan --stack app
grep -q "left behind: alice's containers of project app: app_db_1, app_web_1" "$ISO_OUT" || fail "plan does not name what is left behind"
isolate_ok status --stack app
grep -q "service isolate-compose-app.service (enabled, active, project app runs)" "$ISO_OUT" || fail "status does not show the service"
grep -q "left behind: alice's containers of project app: app_db_1, app_web_1; remove with \`runuser -u alice -- podman rm app_db_1 app_web_1\`" "$ISO_OUT" || fail "status does not name what is left behind"

step "reboot: the project comes back as stk-app with nobody logged in"
reboot_ct
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_db_1' || fail "app_db_1 is not back after the reboot"
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_web_1' || fail "app_web_1 is not back after the reboot"
unit_active() { [ "$(user_unit_prop stk-app isolate-compose-app.service ActiveState)" = active ]; }
wait_for 60 unit_active || fail "the compose unit is not active after the reboot"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "apply after a reboot is not 'nothing to do'"

step "a rollback refused while alice's container holds the data changes nothing: the service runs again"
as_user "$legacy" podman run -d --name holder --network none -v /srv/app/data:/data localhost/app:1 sleep 100000 >/dev/null
run_isolate rollback --stack app
[ "$ISO_RC" = 2 ] || fail "rollback with alice's container on the data exited $ISO_RC, not 2"
grep -q 'containers are running on the data of `app`: holder (of alice) on /srv/app/data' "$ISO_ERR" || fail "the refusal does not name the holder"
wait_for 60 unit_active || fail "the compose unit is not active again after the refused rollback"
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_db_1' || fail "app_db_1 does not run again after the refused rollback"
isolate_ok status --stack app
grep -q "service isolate-compose-app.service (enabled, active, project app runs)" "$ISO_OUT" || fail "status does not show the service enabled and active after the refused rollback"
as_user "$legacy" podman rm -f holder >/dev/null

step "rollback: service gone; env file, volume and data are alice's again and her project starts again"
isolate_ok rollback --stack app
grep -q "rolled back service isolate-compose-app.service" "$ISO_OUT" || fail "rollback does not name the service"
as_user stk-app sh -c 'podman ps --format "{{.Names}}"' | grep -q app_ && fail "stk-app's containers still run after rollback"
in_ct test ! -e "/var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service" || fail "the unit file is still there"
assert_eq "alice:alice 644" "$(in_ct stat -c '%U:%G %a' /srv/app/conf/app.env)" "owner and mode after rollback"
compose_as "$legacy" up -d >/dev/null 2>&1
wait_for 30 as_user "$legacy" sh -c 'podman ps --format "{{.Names}}" | grep -q app_web_1' || fail "the legacy web did not start again"
wait_for 30 as_user "$legacy" sh -c 'podman ps --format "{{.Names}}" | grep -q app_db_1' || fail "the legacy db did not start again"
assert_eq "$vol_before" "$(as_user "$legacy" podman exec app_db_1 ls -ln /var/lib/db | awk 'NR>1 {print $3":"$4, $NF}')" "the volume as the legacy db sees it again"
assert_eq "$data_before" "$(listing_as "$legacy" /srv/app/data)" "the data path as the legacy containers see it again"
