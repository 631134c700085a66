# Issue 24, a rootful quadlet stack moves to its own user. In the VM suite (Debian 13, cgroup v2):
# a rootful pod cannot start in the nspawn suite on this machine's cgroup v1 (podman cannot make
# the pod's cgroup there), and Debian 12 has no quadlet. Root runs a two-container pod from /etc/containers/systemd: app.pod, a
# postgres-like db.container (runs as container uid 999 and, like postgres, refuses a data
# directory it does not own) on /srv/app/pg, and web.container; both on custom localhost/ images
# built in root's store. `isolate apply --stack app` parks root's quadlets, shifts the data,
# copies the images (same IDs), writes the stack user's quadlets into
# /etc/containers/systemd/users/UID/ and starts the pod in its manager: same rows, nothing of it
# runs as root, root's units are gone. Rollback brings the rootful pod back with its rows.
step "root's store: custom images localhost/app-db:1 (postgres-like) and localhost/app-web:1"
in_ct podman import -q /usr/local/share/isolate-it/busybox.tar localhost/busybox >/dev/null
in_ct install -d /root/build-db /root/build-web
cat >"$CT_ROOT/root/build-db/pg-start" <<'SH'
#!/bin/sh
# Like postgres: refuses a data directory owned by anyone but the user it runs as.
cd /var/lib/pg || exit 1
if [ "$(stat -c %u .)" != "$(id -u)" ]; then
  echo "FATAL: data directory /var/lib/pg has wrong ownership" >&2
  exit 1
fi
[ -e rows ] || { printf 'alice\nbob\n' >rows; chmod 600 rows; }
echo "started as $(id -u)" >>starts
exec sleep infinity
SH
chmod 755 "$CT_ROOT/root/build-db/pg-start"
printf 'FROM localhost/busybox\nCOPY pg-start /pg-start\n' >"$CT_ROOT/root/build-db/Containerfile"
echo web >"$CT_ROOT/root/build-web/app-role"
printf 'FROM localhost/busybox\nCOPY app-role /etc/app-role\n' >"$CT_ROOT/root/build-web/Containerfile"
in_ct podman build -q --network none -t localhost/app-db:1 /root/build-db >/dev/null
in_ct podman build -q --network none -t localhost/app-web:1 /root/build-web >/dev/null
db_image=$(in_ct podman image inspect --format '{{.Id}}' localhost/app-db:1)
web_image=$(in_ct podman image inspect --format '{{.Id}}' localhost/app-web:1)
printf 'image IDs %s %s\n' "$db_image" "$web_image"
in_ct install -d -o 999 -g 999 -m 0700 /srv/app/pg

step "root's quadlets in /etc/containers/systemd: app.pod, db.container, web.container"
qdir=/etc/containers/systemd
in_ct install -d "$qdir"
write_quadlet() { cat >"$CT_ROOT$qdir/$1"; }
write_quadlet app.pod <<'UNIT'
[Pod]
PodName=app
Network=none

[Install]
WantedBy=multi-user.target
UNIT
write_quadlet db.container <<'UNIT'
[Container]
ContainerName=db
Image=localhost/app-db:1
Pod=app.pod
User=999
Group=999
Volume=/srv/app/pg:/var/lib/pg
Exec=/pg-start

[Install]
WantedBy=multi-user.target
UNIT
write_quadlet web.container <<'UNIT'
[Container]
ContainerName=web
Image=localhost/app-web:1
Pod=app.pod
Exec=sleep infinity

[Install]
WantedBy=multi-user.target
UNIT
in_ct systemctl daemon-reload
in_ct systemctl start app-pod.service || fail "root's pod did not start: $(in_ct journalctl --no-pager -n 60 2>&1)"
wait_for 60 in_ct systemctl is-active --quiet db.service ||
  fail "root's db did not start: $(in_ct systemctl status app-pod.service db.service web.service 2>&1 | tail -30; in_ct journalctl --no-pager -n 60)"
wait_for 60 in_ct test -s /srv/app/pg/starts || fail "root's db wrote nothing"
rows_before=$(in_ct podman exec db cat /var/lib/pg/rows)
printf 'rows: %s\n' "$rows_before"
assert_eq "alice
bob" "$rows_before" "the rows root's db holds"
assert_eq "999:999" "$(in_ct stat -c %u:%g /srv/app/pg/rows)" "host owner of the rows root's db wrote"

write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "root"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
images = ["localhost/app-db:1", "localhost/app-web:1"]
quadlets = ["$qdir/app.pod", "$qdir/db.container", "$qdir/web.container"]
TOML
in_ct systemctl start podman.socket

step "apply --stack app is refused while root's pod holds the data (exit 2, naming it)"
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply while root's db runs"
grep -q "db (of root)" "$ISO_ERR" || fail "the refusal does not name root's db"
in_ct test -e "$qdir/db.container" || fail "root's db.container is gone after a refusal"

step "root's pod stopped, plan shows the quadlet steps, apply --stack app moves it"
in_ct systemctl stop app-pod.service
wait_for 60 sh -c '! systemctl is-active --quiet db.service' || fail "root's db did not stop"
isolate_ok plan
grep -q "^~ quadlets of app: stop root's units app-pod.service, db.service, web.service, move the 3 quadlet files to /var/lib/isolate/stacks/app/quadlets-legacy" "$ISO_OUT" ||
  fail "plan does not show root's units retired"
grep -q "^+ quadlets of app: app.pod, db.container, web.container into /etc/containers/systemd/users/" "$ISO_OUT" ||
  fail "plan does not show the stack user's quadlets"
isolate_ok apply --stack app
uid=$(uid_of stk-app)
sub=$(grep '^stk-app:' /etc/subuid | cut -d: -f2)

step "root's units are gone: no quadlet file of the stack left in $qdir, no db.service"
for f in app.pod db.container web.container; do
  in_ct test ! -e "$qdir/$f" || fail "$qdir/$f is still there"
  in_ct test -e "/var/lib/isolate/stacks/app/quadlets-legacy/$f" || fail "$f was not parked"
done
if in_ct systemctl cat db.service >/dev/null 2>&1; then fail "root's manager still has db.service"; fi
assert_eq "" "$(in_ct podman ps -q)" "root's running containers"

step "the pod runs from stk-app's quadlets in /etc/containers/systemd/users/$uid"
ls -l "/etc/containers/systemd/users/$uid"
assert_eq "0:0 644" "$(stat -c '%u:%g %a' "/etc/containers/systemd/users/$uid/db.container")" "owner and mode of the stack's db.container"
wait_for 120 as_user stk-app systemctl --user is-active --quiet db.service ||
  fail "stk-app's db did not start: $(as_user stk-app systemctl --user status app-pod.service db.service 2>&1 | tail -20)"
wait_for 60 as_user stk-app systemctl --user is-active --quiet web.service || fail "stk-app's web did not start"
in_pod=$(as_user stk-app podman ps --filter pod=app --format '{{.Names}}' | sort | tr '\n' ' ')
printf 'containers in pod app of stk-app: %s\n' "$in_pod"
case $in_pod in *db*web*) ;; *) fail "stk-app's pod app does not hold db and web: $in_pod" ;; esac

step "same image IDs, postgres-like db started on its shifted data with the same rows"
assert_eq "$db_image" "$(as_user stk-app podman inspect --format '{{.Image}}' db)" "image of stk-app's db"
assert_eq "$web_image" "$(as_user stk-app podman inspect --format '{{.Image}}' web)" "image of stk-app's web"
assert_eq "$rows_before" "$(as_user stk-app podman exec db cat /var/lib/pg/rows)" "rows in stk-app's db"
assert_eq "$((sub + 998)):$((sub + 998))" "$(stat -c %u:%g /srv/app/pg/rows)" "host owner of the rows after the shift"
grep -c "started as 999" /srv/app/pg/starts | grep -qx 2 || fail "the db did not start twice as 999: $(cat /srv/app/pg/starts)"

step "nothing of the pod runs as root: its sleeps run as stk-app's ids"
owners=$(for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q '^sleep infinity' && stat -c %u "$p"; done | sort -u | tr '\n' ' ' || true)
printf 'host uids of sleep infinity: %s\n' "$owners"
assert_eq "$(printf '%s\n' "$uid" "$((sub + 998))" | sort | tr '\n' ' ')" "$owners" "host uids of the pod's processes"

step "apply again: nothing to do"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"

step "rollback --stack app: stk-app's pod stops, root's comes back on its data with its rows"
isolate_ok rollback --stack app
in_ct test ! -e "/etc/containers/systemd/users/$uid/db.container" || fail "stk-app's db.container is still there"
for f in app.pod db.container web.container; do in_ct test -e "$qdir/$f" || fail "root's $f is not back"; done
wait_for 120 in_ct systemctl is-active --quiet db.service || fail "root's db did not start again: $(in_ct systemctl status db.service 2>&1 | tail -20)"
assert_eq "999:999" "$(stat -c %u:%g /srv/app/pg/rows)" "host owner of the rows after rollback"
assert_eq "$rows_before" "$(in_ct podman exec db cat /var/lib/pg/rows)" "rows in root's db after rollback"
if as_user stk-app systemctl --user is-active --quiet db.service; then fail "stk-app's db still runs"; fi
