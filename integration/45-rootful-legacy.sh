# Issue 24: a rootful legacy (`legacy_owner = "root"`): root's container wrote its data as uid 999
# and 0 (host 999 and 0: rootful podman maps nothing), into a bind-mounted data path and a named
# volume of root's store, from a custom localhost/ image. apply refuses while the container holds
# the data (exit 2, naming it), then moves it whole: a rootless container of the stack user sees
# the files as 999 and 0, its store has the image with the same ID, the volume moved out of
# /var/lib/containers; rollback gives root its files back with the owners they had.
step "root's store: localhost/pg:1, volume app_dbdata, its API socket (podman.socket)"
in_ct podman import -q /usr/local/share/isolate-it/busybox.tar localhost/busybox >/dev/null
in_ct podman tag localhost/busybox localhost/pg:1
image_id=$(in_ct podman image inspect --format '{{.Id}}' localhost/pg:1)
in_ct podman volume create --label io.podman.compose.project=app app_dbdata >/dev/null
in_ct systemctl start podman.socket
wait_for 20 in_ct curl -sS --max-time 20 --unix-socket /run/podman/podman.sock http://d/_ping || fail "root's podman socket does not answer"
vols=/var/lib/containers/storage/volumes
# Root's containers here run without cgroups: on this VM's cgroup v1 the container's hierarchy has
# no cpuset controller for crun to make one in (a setting of this test machine, not of isolate;
# rootless containers make none on cgroup v1 anyway).
rootful_run() { in_ct podman run --cgroups=disabled "$@"; }

step "a rootful postgres-like container writes /srv/app and the volume as 999 and 0, and keeps running"
in_ct install -d -o root -g root /srv/app
rootful_run -d --name pg --network none -v /srv/app:/data -v app_dbdata:/vol localhost/pg:1 sh -c \
  'mkdir -p /data/pgdata /vol/db && echo row >/data/pgdata/table && chown -R 999:999 /data/pgdata &&
   echo root >/data/by-root && echo w >/data/www && chown 33:33 /data/www &&
   echo b >/data/beyond && chown 100000:100000 /data/beyond && echo v >/vol/db/f && chown 999:999 /vol/db/f && touch /data/ready && exec sleep 100000' >/dev/null
wait_for 30 in_ct test -e /srv/app/ready || fail "the rootful container did not write its data"
data_before=$(host_listing /srv/app)
# ./beyond (uid 100000) is beyond what a stack's mapping holds (container ids 0-65536).
mapped_before=$(grep -v ' ./beyond$' <<<"$data_before")
vol_before=$(host_listing $vols/app_dbdata/_data)
printf 'data as root sees it:\n%s\nvolume:\n%s\n' "$data_before" "$vol_before"
grep -qx '999:999 ./pgdata/table' <<<"$data_before" || fail "the rootful container did not write as 999"

write_policy /etc/isolate/policy.toml <<'TOML'
legacy_owner = "root"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
images = ["localhost/pg:1"]
TOML

step "apply --stack app is refused while root's container holds the data (exit 2, naming it)"
fingerprint_before=$(host_fingerprint)
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply with a rootful holder"
grep -q "pg (of root)" "$ISO_ERR" || fail "the refusal does not name root's container"
grep -Eq "pid [0-9]+ .*\(of root\)" "$ISO_ERR" || fail "the refusal does not name the holding process"
assert_eq "$data_before" "$(host_listing /srv/app)" "owners under /srv/app after the refusal"
assert_eq "$fingerprint_before" "$(host_fingerprint)" "accounts and state after the refusal"

step "stopped, apply --stack app moves data, image and volume"
in_ct podman stop -t 0 pg >/dev/null
isolate_ok apply --stack app
grep -q '/srv/app: 7 inodes seen, 6 changed, 0 already right, 1 outside the legacy mapping' "$ISO_OUT" || fail "apply does not report the id beyond the stack's mapping"
uid=$(uid_of stk-app)
sub=$(grep '^stk-app:' "$CT_ROOT/etc/subuid" | cut -d: -f2)
[ "$uid" != 0 ] || fail "the stack user is root"

step "the image is in stk-app's store with the same ID"
assert_eq "$image_id" "$(as_user stk-app podman image inspect --format '{{.Id}}' localhost/pg:1)" "image ID in the stack user's store"

step "a rootless container of stk-app sees the files as 999 and 0"
assert_eq "$(expected_uid_map stk-app)" "$(short_run stk-app podman run --rm --network none localhost/pg:1 cat /proc/self/uid_map | awk '{print $1, $2, $3}')" "uid_map in a container of stk-app"
seen=$(short_run stk-app podman run --rm --network none -v /srv/app:/data -v app_dbdata:/vol localhost/pg:1 \
  sh -c 'cd /data && find . | sort | while read -r f; do stat -c "%u:%g %n" "$f"; done; echo ---; cd /vol && find . | sort | while read -r f; do stat -c "%u:%g %n" "$f"; done')
printf 'as stk-app sees it:\n%s\n' "$seen"
assert_eq "$mapped_before
---
$vol_before" "$(grep -v ' ./beyond$' <<<"$seen")" "the data and the volume as a container of stk-app sees them"
# Never guessed: left as it was, which a container of the stack sees as the overflow id.
assert_eq "65534:65534 ./beyond" "$(grep ' ./beyond$' <<<"$seen")" "the file beyond the mapping as stk-app's container sees it"
assert_eq "100000:100000" "$(in_ct stat -c '%u:%g' /srv/app/beyond)" "host owner of the file beyond the mapping"
# A host system user's file (the rootful container ran as www-data) was container uid 33.
assert_eq "$((sub + 32)):$((sub + 32))" "$(in_ct stat -c '%u:%g' /srv/app/www)" "host owner of a file of container uid 33"
assert_eq "$((sub + 998)):$((sub + 998))" "$(in_ct stat -c '%u:%g' /srv/app/pgdata/table)" "host owner of a file of container uid 999"
assert_eq "$uid" "$(in_ct stat -c '%u' /srv/app/by-root)" "host owner of a file of container root"
in_ct test ! -e $vols/app_dbdata/_data/db || fail "root's volume still holds the data"

step "nothing of the stack runs as root: its postgres-like runs as host $((sub + 998))"
as_user stk-app podman run -d --name pg --network none --user 999:999 -v app_dbdata:/vol localhost/pg:1 \
  sh -c 'cat /vol/db/f >/dev/null && exec sleep 100001' >/dev/null
wait_for 30 in_ct sh -c 'for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^sleep 100001" && exit 0; done; exit 1' || fail "the stack's container did not start"
owners=$(in_ct sh -c 'for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^sleep 10000[01]" && stat -c %u $p; done; true' | sort -u | tr '\n' ' ')
assert_eq "$((sub + 998)) " "$owners" "host uids of the sleeping containers (root's pg is stopped)"
as_user stk-app podman rm -f -t 0 pg >/dev/null

step "apply again: nothing to do"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"

step "rollback --stack app gives root its files and its volume back, owners as before"
isolate_ok rollback --stack app
assert_eq "$data_before" "$(host_listing /srv/app)" "owners under /srv/app after rollback"
assert_eq "$vol_before" "$(host_listing $vols/app_dbdata/_data)" "owners in root's volume after rollback"
assert_eq "v" "$(rootful_run --rm --network none -v app_dbdata:/vol localhost/pg:1 cat /vol/db/f)" "root's container reads its volume again"
