# Issue 20: after the split, logs work by default and root drives every stack. With the default
# pool (no uid pinned) a fresh stack user's `podman logs` and `podman-compose logs` work;
# `isolate logs` shows a container's output and the compose unit's lines; `isolate ps` lists
# the containers of three stacks through their own sockets (and a stopped socket as a line);
# `isolate exec` runs podman as the stack user and passes its exit code through.
legacy=alice
install -m 0755 "$SUITE/podman-nonet" "$CT_ROOT/usr/local/bin/podman-nonet"
# As in scenario 90: crun under nspawn cannot make a session keyring for a unit's containers.
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"
# With ISOLATE_IT_TRANSCRIPT=FILE, the commands and outputs the README's "After the split" shows.
transcript() { # COMMAND-LINE < OUTPUT
  if [ -n "${ISOLATE_IT_TRANSCRIPT:-}" ]; then
    { printf '# %s\n' "$1"; cat; echo; } >>"$ISOLATE_IT_TRANSCRIPT"
  else
    cat >/dev/null
  fi
}
compose_as() {
  local user=$1
  shift
  as_user "$user" sh -c 'cd /srv/app/conf && exec podman-compose --podman-path /usr/local/bin/podman-nonet -p app "$@"' compose "$@"
}

step "legacy user $legacy with localhost/app:1 and a compose project whose service prints a line"
setup_legacy_user "$legacy"
as_user "$legacy" podman tag localhost/busybox localhost/app:1
in_ct chown root:root /srv/app
in_ct install -d -o "$legacy" -g "$legacy" /srv/app/conf
cat >"$CT_ROOT/srv/app/conf/compose.yaml" <<'YAML'
services:
  hello:
    image: localhost/app:1
    network_mode: none
    command: ["sh", "-c", "echo hello from the app stack; exec sleep 100000"]
YAML
in_ct chown -R "$legacy:$legacy" /srv/app/conf
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = []
compose = ["/srv/app/conf/compose.yaml"]
service = true
compose_command = ["podman-compose", "--podman-path", "/usr/local/bin/podman-nonet"]

[stacks.db]
data = []

[stacks.web]
data = []
TOML

step "apply with the default pool: no uid pinned"
isolate_ok apply
uid=$(uid_of stk-app)
printf 'uids: app %s, db %s, web %s\n' "$uid" "$(uid_of stk-db)" "$(uid_of stk-web)"
assert_eq "70000 70001 70002" "$uid $(uid_of stk-db) $(uid_of stk-web)" "uids from the default pool"

step "the compose unit runs the project as stk-app"
wait_for 60 as_user stk-app sh -c 'podman ps --format "{{.Names}}" | grep -qx app_hello_1' || fail "app_hello_1 does not run as stk-app"

step "podman logs and podman-compose logs work for the fresh stack user"
wait_for 30 as_user stk-app sh -c 'podman logs app_hello_1 2>&1 | grep -qx "hello from the app stack"' || {
  as_user stk-app podman logs app_hello_1 || true
  fail "podman logs as stk-app does not show the container's line"
}
as_user stk-app podman logs app_hello_1 2>&1 | tee /dev/stderr | transcript "runuser -u stk-app -- podman logs app_hello_1"
compose_logs=$(compose_as stk-app logs 2>&1 | tr -d '\r')
printf '%s\n' "$compose_logs" | transcript "cd /srv/app/conf && runuser -u stk-app -- podman-compose -p app logs"
printf '%s\n' "$compose_logs" | grep -aq "hello from the app stack" || fail "podman-compose logs as stk-app does not show the line"

step "isolate logs app: the container's output and the compose unit's lines"
isolate_ok logs app
transcript "isolate logs app" <"$ISO_OUT"
grep -q "hello from the app stack" "$ISO_OUT" || fail "isolate logs does not show the container's output"
grep -q "isolate-compose-app.service" "$ISO_OUT" || fail "isolate logs does not show the compose unit's lines"
isolate_ok logs app hello
transcript "isolate logs app hello" <"$ISO_OUT"
grep -q "hello from the app stack" "$ISO_OUT" || fail "isolate logs app hello does not show the service's output"
grep -q "Started isolate-compose-app.service" "$ISO_OUT" && fail "isolate logs app hello shows more than the service's containers"
run_isolate logs app nosuch
[ "$ISO_RC" = 2 ] || fail "logs of an unknown service exited $ISO_RC, not 2"

step "isolate exec: podman as the stack user, in its session; the exit code passes through"
for s in db web; do
  isolate_ok exec "$s" -- podman import -q /usr/local/share/isolate-it/busybox.tar localhost/busybox
  isolate_ok exec "$s" -- podman run -d --network none --name "$s-one" localhost/busybox sh -c "echo hello from $s; exec sleep 100000"
done
isolate_ok exec db -- podman ps --format '{{.Names}} {{.Status}}'
transcript "isolate exec db -- podman ps --format '{{.Names}} {{.Status}}'" <"$ISO_OUT"
grep -q '^db-one Up' "$ISO_OUT" || fail "podman ps through isolate exec does not list db-one"
isolate_ok exec db -- sh -c 'id -u; echo $XDG_RUNTIME_DIR $DOCKER_HOST; pwd'
assert_eq "70001
/run/user/70001 unix:///run/user/70001/podman/podman.sock
/var/lib/isolate/home/stk-db" "$(cat "$ISO_OUT")" "identity and session of isolate exec"
run_isolate exec web -- sh -c 'exit 5'
[ "$ISO_RC" = 5 ] || fail "isolate exec exited $ISO_RC, not the command's 5"

step "a container process logging as a subordinate uid is in isolate logs (its owner uid is the stack's)"
# The sender lives on after logging: journald reads a sender's cgroup (hence
# _SYSTEMD_OWNER_UID) from /proc when the record arrives, and a sender gone by then leaves only
# _UID in the record (`logger MSG` exits at once; fed by a pipe it waits for the pipe's end).
isolate_ok exec db -- podman run --rm --network none --user 999 -v /dev/log:/dev/log localhost/busybox sh -c '(echo "logged by container uid 999"; sleep 3) | logger -t subuid-probe'
sub=$(( $(grep '^stk-db:' "$CT_ROOT/etc/subuid" | cut -d: -f2) + 998 ))
wait_for 30 in_ct sh -c "journalctl --no-pager _UID=$sub | grep -q 'logged by container uid 999'" || fail "no journal record with _UID=$sub"
in_ct journalctl --no-pager -o verbose _UID=$sub | grep -E '^ *(_UID|_SYSTEMD_OWNER_UID|_SYSTEMD_USER_UNIT|_SYSTEMD_UNIT|_SYSTEMD_CGROUP|MESSAGE)=' | transcript "journalctl -o verbose _UID=$sub (the probe's record)"
isolate_ok logs db
transcript "isolate logs db" <"$ISO_OUT"
grep -q "logged by container uid 999" "$ISO_OUT" || fail "isolate logs db does not show the record of the container's uid 999 (host $sub)"
in_ct journalctl --no-pager _UID=70001 | grep -q "logged by container uid 999" && fail "_UID=70001 alone already holds the record: the test proves nothing"

step "isolate ps: the containers of three stacks"
isolate_ok ps
transcript "isolate ps" <"$ISO_OUT"
for c in "app *app_hello_1" "db *db-one" "web *web-one"; do
  grep -q "^$c " "$ISO_OUT" || fail "isolate ps does not list $c"
done
isolate_ok ps --format json --stack web
grep -q '"name": "web-one"' "$ISO_OUT" || fail "ps --format json does not list web-one"

step "a stack whose socket is down is a line, not an abort"
as_user stk-web systemctl --user stop podman.socket podman.service
isolate_ok ps
transcript "isolate ps  (stk-web's podman.socket stopped)" <"$ISO_OUT"
grep -q "^web: no answer from /run/user/70002/podman/podman.sock" "$ISO_OUT" || fail "ps does not say web's socket is down"
grep -q "^db *db-one " "$ISO_OUT" || fail "ps stopped listing after web's socket"
as_user stk-web systemctl --user start podman.socket
