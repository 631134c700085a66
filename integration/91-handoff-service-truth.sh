# Issue 17, items 10 and 15. (10) A compose service is proven by its project's containers
# running, on every read: podman-compose exits 0 while a container cannot start (its command does
# not exist, it stays `Created`), so the oneshot unit is active; apply's step fails, the next
# apply retries it, status says the project does not run and audit has a finding. (15) After the
# hand-off the legacy user still owns the compose directory: the unit runs isolate's root-owned
# copies, so her new env file and her `volumes: ["/:/host"]` change nothing until an admin runs
# apply; plan shows both changes (an env file's keys, never its values). A relative bind source
# of the compose file still means the original directory's neighbour.
legacy=alice
install -m 0755 "$SUITE/podman-nonet" "$CT_ROOT/usr/local/bin/podman-nonet"
# See scenario 90: containers share the caller's keyring under systemd-nspawn.
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"

step "legacy user $legacy with localhost/app:1; project app binds ../data relatively, project bad runs a missing command"
setup_legacy_user "$legacy"
as_user "$legacy" podman tag localhost/busybox localhost/app:1
in_ct chown root:root /srv/app
in_ct install -d -o "$legacy" -g "$legacy" /srv/app/data /srv/app/conf /srv/bad
cat >"$CT_ROOT/srv/app/conf/compose.yaml" <<'YAML'
services:
  web:
    image: localhost/app:${TAG}
    network_mode: none
    environment:
      - GREETING=${GREETING}
    volumes:
      - ../data:/data
    command: ["sh", "-c", "echo $$GREETING >/data/greeting; echo web up; exec sleep 100000"]
YAML
printf 'TAG=1\nGREETING=hello\n' >"$CT_ROOT/srv/app/conf/app.env"
cat >"$CT_ROOT/srv/bad/compose.yaml" <<'YAML'
services:
  broken:
    image: localhost/app:1
    network_mode: none
    command: ["/no/such/command"]
YAML
in_ct chown -R "$legacy:$legacy" /srv/app/conf /srv/bad
in_ct chmod 0600 /srv/app/conf/app.env
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

[stacks.bad]
data = []
uid = 1801
compose = ["/srv/bad/compose.yaml"]
service = true
compose_command = ["podman-compose", "--podman-path", "/usr/local/bin/podman-nonet"]
TOML

step "(10) apply --stack bad: the unit is active, its container is not running: the step fails"
run_isolate apply --stack bad
[ "$ISO_RC" = 1 ] || fail "apply of a project that does not run exited $ISO_RC, not 1"
grep -q "^FAILED + service isolate-compose-bad.service" "$ISO_OUT" || fail "the service step is not FAILED"
grep -q "project bad does not run as stk-bad: not running: bad_broken_1 (" "$ISO_OUT" || fail "the failure does not name the container that does not run"
assert_eq active "$(user_unit_prop stk-bad isolate-compose-bad.service ActiveState)" "the oneshot unit is active all the same"

step "(10) plan and a second apply retry it instead of saying nothing to do"
isolate_ok plan --stack bad
grep -q "^! service isolate-compose-bad.service of stk-bad is enabled and active, but project bad does not run" "$ISO_OUT" || fail "plan does not say the project does not run"
grep -q "^+ service isolate-compose-bad.service for bad" "$ISO_OUT" || fail "plan does not retry the service"
grep -q "nothing to do" "$ISO_OUT" && fail "plan says nothing to do"
starts_before=$(user_unit_prop stk-bad isolate-compose-bad.service InvocationID)
run_isolate apply --stack bad
[ "$ISO_RC" = 1 ] || fail "the second apply exited $ISO_RC, not 1"
grep -q "nothing to do" "$ISO_OUT" && fail "the second apply says nothing to do"
[ "$(user_unit_prop stk-bad isolate-compose-bad.service InvocationID)" != "$starts_before" ] || fail "the second apply did not restart the unit"

step "(10) status says the project does not run; audit has a finding"
isolate_ok status --stack bad
grep -q "service isolate-compose-bad.service (enabled, active, project bad does not run: not running: bad_broken_1 (" "$ISO_OUT" || fail "status does not say the project does not run"
run_isolate audit --stack bad --format json
[ "$ISO_RC" != 2 ] || fail "audit refused"
python3 - "$ISO_OUT" <<'EOF' || fail "audit has no service_not_running finding for bad"
import json, sys
doc = json.load(open(sys.argv[1]))
found = [f for f in doc["findings"] if f["kind"] == "service_not_running" and f["stack"] == "bad"]
print(found)
sys.exit(0 if found else 1)
EOF

step "(15) apply --stack app: the unit runs root-owned copies"
isolate_ok apply --stack app
copies=/var/lib/isolate/stacks/app/files/srv/app/conf
assert_eq "root:stk-app 750" "$(in_ct stat -c '%U:%G %a' /var/lib/isolate/stacks/app)" "the stack's copy directory"
assert_eq "root:stk-app 440" "$(in_ct stat -c '%U:%G %a' $copies/app.env)" "the env file's copy"
assert_eq "root:stk-app 440" "$(in_ct stat -c '%U:%G %a' $copies/compose.yaml)" "the compose file's copy"
unit=/var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service
in_ct grep -qx "EnvironmentFile=$copies/app.env" "$unit" || fail "the unit does not read the env file's copy"
in_ct grep -q -- "-f $copies/compose.yaml up -d" "$unit" || fail "the unit does not run the compose file's copy"
in_ct grep -q "/srv/app/data:/data" "$copies/compose.yaml" || fail "the relative bind source is not the original directory's neighbour in the copy"
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_web_1' || fail "app_web_1 does not run as stk-app"
wait_for 30 in_ct test -e /srv/app/data/greeting || fail "the web service wrote no greeting into the bound data path"
assert_eq hello "$(in_ct cat /srv/app/data/greeting)" "the greeting from the env file"
isolate_ok status --stack app
grep -q "service isolate-compose-app.service (enabled, active, project app runs)" "$ISO_OUT" || fail "status does not show the project running"
grep -q "the service runs isolate's copies in /var/lib/isolate/stacks/app/files, equal to their originals" "$ISO_OUT" || fail "status does not show the copies equal"
isolate_ok apply --stack app
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"

step "(15) alice replaces her env file and adds / to the compose file; the service restarts from scratch"
as_user "$legacy" sh -c 'cd /srv/app/conf && rm -f app.env && printf "TAG=1\nGREETING=evil\n" >app.env &&
  sed -i "s|      - ../data:/data|      - ../data:/data\n      - /:/host|" compose.yaml'
in_ct grep -q "/:/host" /srv/app/conf/compose.yaml || fail "the test did not edit the compose file"
as_user stk-app systemctl --user stop isolate-compose-app.service
as_user stk-app podman rm -f app_web_1 >/dev/null
in_ct rm -f /srv/app/data/greeting
as_user stk-app systemctl --user start isolate-compose-app.service
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_web_1' || fail "app_web_1 does not run again"
wait_for 30 in_ct test -e /srv/app/data/greeting || fail "the web service wrote no greeting after the restart"
assert_eq hello "$(in_ct cat /srv/app/data/greeting)" "the greeting after alice's new env file"
as_user stk-app podman exec app_web_1 test -e /host/etc/shadow && fail "alice's / mount reached the stack's container"
assert_eq "root:stk-app 440" "$(in_ct stat -c '%U:%G %a' $copies/app.env)" "the env file's copy after alice's change"
in_ct grep -q "/:/host" "$copies/compose.yaml" && fail "the compose copy changed without apply"

step "(15) plan shows both changes (the env file's keys, not its values); apply is the admin's approval"
isolate_ok plan --stack app
grep -q "^! compose file /srv/app/conf/compose.yaml changed since isolate copied it" "$ISO_OUT" || fail "plan does not show the compose change"
grep -q "^    + .*/:/host" "$ISO_OUT" || fail "plan does not show the added / mount"
grep -q "^! env file /srv/app/conf/app.env changed since isolate copied it" "$ISO_OUT" || fail "plan does not show the env change"
grep -q "^    ~ GREETING (value changed)" "$ISO_OUT" || fail "plan does not name the changed key"
grep -q "evil" "$ISO_OUT" && fail "plan prints an env file's value"
grep -q "^+ service isolate-compose-app.service for app" "$ISO_OUT" || fail "plan does not copy and restart the service"
isolate_ok status --stack app
grep -q "these originals differ from their copies.*: /srv/app/conf/app.env, /srv/app/conf/compose.yaml" "$ISO_OUT" || fail "status does not name the changed originals"
grep -q "env file /srv/app/conf/app.env: no longer stk-app's alone: owner uid $(uid_of $legacy)" "$ISO_OUT" || fail "status does not say the env file was replaced"

step "rollback --stack app removes the copies"
isolate_ok rollback --stack app
in_ct test ! -e /var/lib/isolate/stacks/app || fail "the copies are still there after rollback"
