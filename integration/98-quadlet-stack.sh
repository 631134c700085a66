# Issue 24, quadlet stacks (Debian 13 only: Debian 12's podman 4.3 has no quadlet). A rootless
# quadlet stack of the legacy user runs: a pod (`app.pod`) with two containers (`Pod=app.pod`),
# one with a quadlet volume (`app-data.volume`, podman volume systemd-app-data), both on a
# custom `localhost/` image built here. `isolate apply --stack app` parks her quadlets (her
# units are gone from her manager), hands over the image (same ID) and the quadlet volume
# (named by the `.volume` file, not by the policy), writes the stack user's quadlets into
# /etc/containers/systemd/users/UID/ and starts the pod there; after a reboot one copy runs,
# the stack user's. Rollback gives her the pod back with its volume.
if [ "${IT_RELEASE:-bookworm}" = bookworm ]; then
  step "skipped: Debian 12 has no quadlet (podman 4.3.1; quadlet came with 4.4)"
  return 0
fi
legacy=alice
step "legacy user $legacy; a custom image localhost/app-web:1 built in her store"
setup_legacy_user "$legacy"
home=$(home_of "$legacy")
uid=$(uid_of "$legacy")
in_ct install -d -o "$legacy" -g "$legacy" /srv/app/conf "$home/build"
printf 'FROM localhost/busybox\nRUN echo web >/etc/app-role\n' >"$CT_ROOT$home/build/Containerfile"
in_ct chown "$legacy:" "$home/build/Containerfile"
as_user "$legacy" podman build -q --network none -t localhost/app-web:1 "$home/build" >/dev/null
image_id=$(as_user "$legacy" podman image inspect --format '{{.Id}}' localhost/app-web:1)
printf 'image ID %s\n' "$image_id"

step "her quadlets: app.pod, web.container and db.container in it, app-data.volume"
qdir=$home/.config/containers/systemd
in_ct install -d -o "$legacy" -g "$legacy" "$home/.config" "$home/.config/containers" "$qdir"
# Harness needs of this VM, not of a Debian 13 host: nspawn refuses crun's session keyring
# (EPERM), so containers.conf turns it off for every user; on this cgroup v1 host quadlet's default
# --cgroups=split cannot make its cgroup, so the containers say --cgroups=enabled; and her
# podman-user-wait-network-online.service (masked for every user) would wait 90 s for a network-online.target the
# container never reaches.
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"
in_ct systemctl --global mask podman-user-wait-network-online.service
write_quadlet() { # NAME < TEXT
  cat >"$CT_ROOT$qdir/$1"
  in_ct chown "$legacy:" "$qdir/$1"
}
write_quadlet app.pod <<'UNIT'
[Pod]
PodName=app

[Install]
WantedBy=default.target
UNIT
write_quadlet app-data.volume <<'UNIT'
[Volume]
UNIT
write_quadlet web.container <<'UNIT'
[Container]
Image=localhost/app-web:1
Pod=app.pod
PodmanArgs=--cgroups=enabled
Volume=/srv/app/conf:/conf
Exec=sleep infinity

[Install]
WantedBy=default.target
UNIT
write_quadlet db.container <<'UNIT'
[Container]
Image=localhost/app-web:1
Pod=app.pod
PodmanArgs=--cgroups=enabled
Volume=app-data.volume:/data
Exec=sh -c 'echo row >>/data/rows; exec sleep infinity'

[Install]
WantedBy=default.target
UNIT
as_user "$legacy" systemctl --user daemon-reload
as_user "$legacy" systemctl --user start app-pod.service ||
  fail "her quadlet pod did not start: $(in_ct journalctl --no-pager -n 40 _UID="$uid" 2>&1 | drop_cgroupv1_warning)"
wait_for 60 as_user "$legacy" systemctl --user is-active --quiet db.service ||
  fail "her quadlet pod did not start: $(as_user "$legacy" systemctl --user status app-pod.service db.service web.service 2>&1 | tail -20)"
in_pod=$(as_user "$legacy" podman ps --filter pod=app --format '{{.Names}}' | sort | tr '\n' ' ')
printf 'containers in pod app: %s\n' "$in_pod"
case $in_pod in *systemd-db*systemd-web*) ;; *) fail "pod app does not hold both containers: $in_pod" ;; esac
wait_for 30 in_ct test -s "$home/.local/share/containers/storage/volumes/systemd-app-data/_data/rows" ||
  fail "the quadlet volume systemd-app-data got no row"

step "init drafts the pod as one stack from her quadlet directory"
isolate_ok init --quadlets "$qdir" --legacy-owner "$legacy"
grep -q '^\[stacks.app\]$' "$ISO_OUT" || fail "init drafted no stack app from $qdir"
for f in app.pod db.container web.container app-data.volume; do
  grep -q "^  \"$qdir/$f\",\$" "$ISO_OUT" || fail "init's stack app lacks $f"
done

step "stopped, apply --stack app moves the pod, its image and its quadlet volume"
as_user "$legacy" systemctl --user stop app-pod.service
her_db_stopped() { ! as_user "$legacy" systemctl --user is-active --quiet db.service; }
wait_for 60 her_db_stopped || fail "her db did not stop"
rows_before=$(in_ct cat "$home/.local/share/containers/storage/volumes/systemd-app-data/_data/rows")
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
quadlets = ["$qdir/app.pod", "$qdir/web.container", "$qdir/db.container", "$qdir/app-data.volume"]
TOML
isolate_ok apply --stack app
stk_uid=$(uid_of stk-app)
for f in app.pod web.container db.container app-data.volume; do
  in_ct test ! -e "$qdir/$f" || fail "her $f is still in $qdir"
  in_ct test -e "/etc/containers/systemd/users/$stk_uid/$f" || fail "$f is not in stk-app's quadlet directory"
done
if as_user "$legacy" systemctl --user cat db.service >/dev/null 2>&1; then fail "her manager still has db.service"; fi

step "the pod runs as stk-app, same image ID, the volume moved with its rows"
wait_for 120 as_user stk-app systemctl --user is-active --quiet db.service ||
  fail "stk-app's db did not start: $(as_user stk-app systemctl --user status app-pod.service db.service 2>&1 | tail -20)"
wait_for 60 as_user stk-app systemctl --user is-active --quiet web.service || fail "stk-app's web did not start"
assert_eq "$image_id" "$(as_user stk-app podman inspect --format '{{.Image}}' systemd-web)" "image of stk-app's web"
stk_home=$(home_of stk-app)
vol=$stk_home/.local/share/containers/storage/volumes/systemd-app-data/_data/rows
more_rows() { [ "$(wc -l <"$CT_ROOT$vol")" -gt "$(wc -l <<<"$rows_before")" ]; }
wait_for 30 more_rows || fail "stk-app's db wrote no row into the moved volume"
assert_eq "$rows_before" "$(head -n "$(wc -l <<<"$rows_before")" "$CT_ROOT$vol")" "the rows the volume held before"
in_ct test ! -e "$home/.local/share/containers/storage/volumes/systemd-app-data/_data" || fail "her volume systemd-app-data still holds data"

step "after a reboot one copy runs: stk-app's"
reboot_ct
wait_for 120 as_user stk-app systemctl --user is-active --quiet db.service || fail "stk-app's db did not come back after the reboot"
if as_user "$legacy" systemctl --user is-active --quiet db.service; then fail "her db started after the reboot"; fi
copies=$(in_ct sh -c 'for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^sleep infinity" && stat -c %u $p; done; true' | sort | tr '\n' ' ')
printf 'host uids of sleep infinity: %s\n' "$copies"
assert_eq 2 "$(wc -w <<<"$copies")" "sleeping containers after the reboot (web and db, once)"

step "status names her db.container when it is back in her directory"
cp "$CT_ROOT/var/lib/isolate/stacks/app/quadlets-legacy/db.container" "$CT_ROOT$qdir/db.container"
isolate_ok status --stack app
grep -q "left behind: legacy quadlet file $qdir/db.container is in place again" "$ISO_OUT" || fail "status does not name her db.container"
rm "$CT_ROOT$qdir/db.container"

step "rollback --stack app: her pod comes back with its volume"
isolate_ok rollback --stack app
for f in app.pod web.container db.container app-data.volume; do in_ct test -e "$qdir/$f" || fail "her $f is not back"; done
assert_eq "$legacy:$legacy" "$(in_ct stat -c %U:%G "$qdir/db.container")" "owner of her db.container after rollback"
wait_for 120 as_user "$legacy" systemctl --user is-active --quiet db.service || fail "her db did not start again"
in_ct test -s "$home/.local/share/containers/storage/volumes/systemd-app-data/_data/rows" || fail "her volume systemd-app-data has no rows after rollback"
if as_user stk-app systemctl --user is-active --quiet db.service; then fail "stk-app's db still runs"; fi
