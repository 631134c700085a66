# Issue 24, quadlet stacks (Debian 13 only: Debian 12's podman 4.3 has no quadlet). A rootless
# quadlet stack of the legacy user runs: a pod (`app.pod`) with two containers (`Pod=app.pod`),
# one with a quadlet volume (`app-data.volume`, podman volume systemd-app-data), both on a
# custom `localhost/` image built here. A policy that names its `quadlets` is refused by plan
# and apply (exit 2, nothing changed) until apply can park her units and install the stack
# user's: moving only the data would leave her units enabled, and a reboot would start two
# copies. Her pod keeps running from her quadlets.
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
# (EPERM), so her containers.conf turns it off; on this cgroup v1 host quadlet's default
# --cgroups=split cannot make its cgroup, so the containers say --cgroups=enabled; and her
# podman-user-wait-network-online.service would wait 90 s for a network-online.target the
# container never reaches.
printf '[containers]\nkeyring = false\n' >"$CT_ROOT$home/.config/containers/containers.conf"
in_ct chown "$legacy:" "$home/.config/containers/containers.conf"
as_user "$legacy" systemctl --user mask podman-user-wait-network-online.service
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

step "stopped, a policy naming her quadlets is refused by plan and apply; nothing changes"
as_user "$legacy" systemctl --user stop app-pod.service
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
quadlets = ["$qdir/app.pod", "$qdir/web.container", "$qdir/db.container", "$qdir/app-data.volume"]
TOML
before=$(host_fingerprint)
run_isolate plan
assert_eq 2 "$ISO_RC" "exit status of plan for a quadlet stack"
grep -q 'names `quadlets`, whose move .* this isolate cannot carry out yet' "$ISO_ERR" ||
  fail "plan does not say why the quadlet stack is refused"
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply for a quadlet stack"
assert_eq "$before" "$(host_fingerprint)" "account files, linger and state after the refusal"
in_ct test -e "$qdir/app.pod" || fail "her app.pod is gone after a refusal"

step "her pod starts again from her quadlets, same image"
as_user "$legacy" systemctl --user start app-pod.service
wait_for 60 as_user "$legacy" systemctl --user is-active --quiet web.service || fail "her pod did not start again"
assert_eq "$image_id" "$(as_user "$legacy" podman image inspect --format '{{.Id}}' localhost/app-web:1)" "image ID"
