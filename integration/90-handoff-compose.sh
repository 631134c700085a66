# Issue 12: a stopped compose project of the legacy user moves whole to its stack user: env
# files become the stack user's alone, the project's local images are copied into the stack
# user's store with the same IDs, its named volume moves with its owners shifted; rollback
# gives it all back and the legacy project starts again.
legacy=alice
install -m 0755 "$SUITE/podman-nonet" "$CT_ROOT/usr/local/bin/podman-nonet"
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
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app/data"]
migrate = "shift"
compose = ["/srv/app/conf/compose.yaml"]
env_files = ["/srv/app/conf/app.env"]
TOML

step "plan names the image copy, the env file and the volume"
isolate_ok plan --stack app
grep -q '^+ image localhost/app:1 for app: copy from alice' "$ISO_OUT" || fail "plan does not copy localhost/app:1"
grep -q '^~ env file /srv/app/conf/app.env of app: owner stk-app' "$ISO_OUT" || fail "plan does not hand over the env file"
grep -q '^~ volume app_dbdata for app: move /home/alice/.local/share/containers/storage/volumes/app_dbdata/_data' "$ISO_OUT" || fail "plan does not move the volume"

step "apply --stack app"
isolate_ok apply --stack app

step "the env file is stk-app's alone"
assert_eq "stk-app:stk-app 400" "$(in_ct stat -c '%U:%G %a' /srv/app/conf/app.env)" "owner and mode of the env file"

step "the image is in stk-app's store with the same ID"
stack_id=$(as_user stk-app podman image inspect --format '{{.Id}}' localhost/app:1)
assert_eq "$legacy_id" "$stack_id" "image ID in the stack user's store"

step "the volume is stk-app's, with the same labels, and its containers see the same owners"
assert_eq "com.docker.compose.project=app io.podman.compose.project=app" \
  "$(as_user stk-app podman volume inspect app_dbdata --format '{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}' | sed 's/ $//')" "labels of the stack's volume"
vol_after=$(as_user stk-app podman run --rm --network none -v app_dbdata:/v localhost/app:1 ls -ln /v | awk 'NR>1 {print $3":"$4, $NF}')
assert_eq "$vol_before" "$vol_after" "the volume's files as the stack's containers see them"
assert_eq "$data_before" "$(listing_as stk-app /srv/app/data)" "the data path as the stack's containers see it"
in_ct test ! -e /home/alice/.local/share/containers/storage/volumes/app_dbdata/_data || fail "the legacy volume still holds data"

step "apply again: nothing to do"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"

step "the legacy containers are left behind, and plan says how to remove them"
as_user "$legacy" podman container exists app_db_1 || fail "the legacy container app_db_1 was deleted"
isolate_ok plan --stack app
grep -q "left behind: alice's containers of project app: app_db_1, app_web_1" "$ISO_OUT" || fail "plan does not name what is left behind"

step "rollback: env file, volume and data are alice's again and her project starts again"
isolate_ok rollback --stack app
assert_eq "alice:alice 644" "$(in_ct stat -c '%U:%G %a' /srv/app/conf/app.env)" "owner and mode after rollback"
compose_as "$legacy" up -d >/dev/null 2>&1
wait_for 30 as_user "$legacy" sh -c 'podman ps --format "{{.Names}}" | grep -q app_web_1' || fail "the legacy web did not start again"
wait_for 30 as_user "$legacy" sh -c 'podman ps --format "{{.Names}}" | grep -q app_db_1' || fail "the legacy db did not start again"
assert_eq "$vol_before" "$(as_user "$legacy" podman exec app_db_1 ls -ln /var/lib/db | awk 'NR>1 {print $3":"$4, $NF}')" "the volume as the legacy db sees it again"
