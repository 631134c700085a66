# Issue 20: a proxy project and a backend project of the legacy user share an external podman
# network; `isolate init` drafts `reaches` from their compose files. They are migrated one at a
# time, the reaching stack first, and after each step the proxy container (the legacy user's,
# then the moved one) gets the backend's answer over a real TCP connection:
# - apply --stack proxy: the moved proxy reaches `backend` on the host's loopback (its override
#   names it, a containers.conf drop-in gives host-loopback access); the backend is still the
#   legacy user's, so isolate re-ups her project as her with one more `-f` that publishes the
#   port on 127.0.0.1 (her network stays; publishing needs no host-loopback access of hers).
#   rollback --stack proxy re-ups her project without it; the legacy proxy reaches it again.
# - apply --stack backend (refused while her containers still hold the port): the backend's own
#   override publishes the same host port; the legacy publish is forgotten.
# The other order is not taken: plan --stack backend first says the legacy proxy would lose the
# path until its own apply (her rootless network namespace has no host-loopback access).
legacy=alice
# Rootless user-mode networking (slirp4netns, pasta) opens /dev/net/tun. systemd-nspawn makes
# the node with mode 0600 (root only); a host gives it 0666. Made so here, from the host side
# of the container's mount namespace (nspawn's own seccomp and capability limits do not apply).
nsenter -t "$CT_PID" -m sh -c 'test -c /dev/net/tun || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }; chmod 0666 /dev/net/tun'
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"

compose_as() { # USER PROJECT ARGS...
  local user=$1 project=$2
  shift 2
  as_user "$user" sh -c 'cd /srv/'"$project"'/conf && exec podman-compose -p '"$project"' "$@"' compose "$@"
}
# A real HTTP request over TCP from the proxy container to HOST:8080; prints the body's line.
ask_backend() { # USER CONTAINER HOST
  as_user "$1" podman exec "$2" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 '"$3"' 8080' 2>&1 | grep -a answer-from-backend
}

step "legacy user $legacy with an external network shared by two projects"
# podman 4 (slirp4netns) shows the host's loopback at 10.0.2.2 with allow_host_loopback; podman 5
# (pasta) at the address isolate maps with --map-host-loopback. podman 5 makes bridge networks
# with netavark, which runs `nft`.
if in_ct podman --version | grep -q 'version [5-9]'; then
  in_ct sh -c 'command -v nft' >/dev/null || fail "the rootfs has podman 5 but no nftables: netavark cannot make bridge networks (add nftables to the rootfs's packages)"
  loopback=169.254.1.3 net_opt=pasta:--map-host-loopback=169.254.1.3
  conf_line='pasta_options = \["--map-host-loopback=169.254.1.3"\]'
else
  loopback=10.0.2.2 net_opt=slirp4netns:allow_host_loopback=true
  conf_line='network_cmd_options = \["allow_host_loopback=true"\]'
fi
setup_legacy_user "$legacy"
as_user "$legacy" podman network create shared >/dev/null
for p in backend proxy; do
  in_ct install -d -o root -g root /srv/$p
  in_ct install -d -o "$legacy" -g "$legacy" /srv/$p/conf
done
cat >"$CT_ROOT/srv/backend/conf/compose.yaml" <<'YAML'
name: backend
services:
  backend:
    image: localhost/busybox
    networks: [shared]
    expose: ["8080"]
    command: ["sh", "-c", "mkdir -p /w && echo answer-from-backend >/w/index.html && exec httpd -f -p 8080 -h /w"]
networks:
  shared:
    external: true
YAML
cat >"$CT_ROOT/srv/proxy/conf/compose.yaml" <<'YAML'
name: proxy
services:
  proxy:
    image: localhost/busybox
    networks: [shared]
    environment:
      UPSTREAM: http://backend:8080/
    command: ["sh", "-c", "exec sleep 100000"]
networks:
  shared:
    external: true
YAML
in_ct chown -R "$legacy:$legacy" /srv/backend/conf /srv/proxy/conf
for p in backend proxy; do
  compose_as "$legacy" $p up -d >/dev/null 2>&1 || { compose_as "$legacy" $p up -d 2>&1 | tail -20; fail "podman-compose up of $p as $legacy failed"; }
done
# The rootfs has no DNS plugin for podman's CNI networks: on the shared network the proxy
# reaches the backend by its address there.
backend_ip=$(as_user "$legacy" podman inspect -f '{{(index .NetworkSettings.Networks "shared").IPAddress}}' backend_backend_1)
echo "backend on the legacy shared network: $backend_ip"
wait_for 30 ask_backend "$legacy" proxy_proxy_1 "$backend_ip" || fail "the legacy proxy does not get the backend's answer over the shared network"
echo "# runuser -u $legacy -- podman exec proxy_proxy_1 sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc $backend_ip 8080'"
ask_backend "$legacy" proxy_proxy_1 "$backend_ip"

step "init drafts reaches on the proxy from its env value"
isolate_ok init --compose /srv/backend/conf --compose /srv/proxy/conf --legacy-owner "$legacy"
grep -A2 '^reaches = \[' "$ISO_OUT" | grep -q '"backend:backend:8080",  # proxy.s env UPSTREAM=http://backend:8080/ names service backend of project backend' ||
  fail "init does not draft reaches = [\"backend:backend:8080\"] on the proxy"
drafted=$(grep -A1 '^reaches = \[' "$ISO_OUT" | sed -n 2p | sed 's/,  #.*//')
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.backend]
data = []
uid = 1801
compose = ["/srv/backend/conf/compose.yaml"]
service = true

[stacks.proxy]
data = []
uid = 1802
compose = ["/srv/proxy/conf/compose.yaml"]
service = true
reaches = [$drafted]
TOML
cat "$CT_ROOT/etc/isolate/policy.toml"

step "plan --stack backend (the target first) says the legacy proxy would lose the path"
isolate_ok plan --stack backend
grep -q '^+ reach override /var/lib/isolate/stacks/backend/reaches.compose.yaml for backend' "$ISO_OUT" || fail "plan does not show the backend's override"
grep -q '| *- "127.0.0.1:8080:8080"' "$ISO_OUT" || fail "plan does not show the loopback publish"
grep -qF "  ! \`proxy\` reaches backend:backend:8080 and still runs as $legacy: her containers cannot reach the host's loopback, where backend answers from now on" "$ISO_OUT" ||
  fail "plan --stack backend does not say what the legacy proxy loses"
grep -qF "so \`proxy\` loses this path until \`isolate apply --stack proxy\`. Applying the reaching stack first keeps the path at every step" "$ISO_OUT" ||
  fail "plan --stack backend does not recommend the reaching stack first"

step "plan --stack proxy: the moved proxy reaches backend:8080 by name; $legacy's backend publishes it"
compose_as "$legacy" proxy stop >/dev/null 2>&1
isolate_ok plan --stack proxy
grep -q "|       - \"backend:$loopback\"  # backend:backend:8080" "$ISO_OUT" || fail "plan does not give the proxy the name backend"
grep -q "$conf_line" "$ISO_OUT" || fail "plan does not show the proxy's host-loopback access"
grep -qF "~ legacy publish of backend for proxy: backend still runs as $legacy, so its compose project backend is re-upped as $legacy with /var/lib/isolate/reach-legacy/backend.compose.yaml" "$ISO_OUT" ||
  fail "plan does not show the legacy publish"
grep -qF '    $ podman-compose -p backend -f /srv/backend/conf/compose.yaml -f /var/lib/isolate/reach-legacy/backend.compose.yaml up -d --force-recreate' "$ISO_OUT" ||
  fail "plan does not show the legacy user's compose command"
grep -qF '    |       - "127.0.0.1:8080:8080"  # reached by proxy' "$ISO_OUT" || fail "plan does not show the legacy override's publish"

moved_proxy_gets_answer() {
  wait_for 60 as_user stk-proxy sh -c 'podman ps --format "{{.Names}}" | grep -qx proxy_proxy_1' || fail "the proxy does not run as stk-proxy"
  wait_for 30 ask_backend stk-proxy proxy_proxy_1 backend || {
    as_user stk-proxy podman exec proxy_proxy_1 cat /etc/hosts || true
    fail "the moved proxy does not get the backend's answer ($1)"
  }
  echo "# runuser -u stk-proxy -- podman exec proxy_proxy_1 sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc backend 8080'   ($1)"
  ask_backend stk-proxy proxy_proxy_1 backend
}

step "apply --stack proxy (the reaching stack first): the moved proxy gets the still-legacy backend's answer"
isolate_ok apply --stack proxy
grep -qF "~ legacy publish of backend for proxy" "$ISO_OUT" || fail "apply does not show the legacy publish"
assert_eq "root:root 644" "$(in_ct stat -c '%U:%G %a' /var/lib/isolate/reach-legacy/backend.compose.yaml)" "owner and mode of the legacy override"
as_user "$legacy" podman ps --format '{{.Names}} {{.Ports}}' | grep -q '^backend_backend_1 127.0.0.1:8080->8080/tcp' ||
  fail "$legacy's backend does not publish 127.0.0.1:8080 from her own store"
as_user "$legacy" podman ps --format '{{.Names}} {{.Ports}}' | sed 's/^/  '"$legacy"' runs: /'
moved_proxy_gets_answer "proxy moved, backend still $legacy's"
run_isolate audit
grep -q 'reach proxy -> backend:backend:8080 (host port 8080): answers' "$ISO_OUT" || fail "audit does not report the path to the still-legacy backend as answering"
home=$(home_of stk-proxy)
assert_eq "stk-proxy:stk-proxy 644" "$(in_ct stat -c '%U:%G %a' "$home/.config/containers/containers.conf.d/isolate-reaches.conf")" "owner and mode of the proxy's containers.conf drop-in"
# The services kept their network (podman-compose made `shared` in stk-proxy's own store).
as_user stk-proxy podman network exists shared || fail "stk-proxy has no network shared of its own"

step "rollback --stack proxy: $legacy's backend is re-upped without the publish; her proxy reaches it again"
isolate_ok rollback --stack proxy
grep -qF "rolled back legacy publish of backend (removed): $legacy's project backend re-upped without /var/lib/isolate/reach-legacy/backend.compose.yaml" "$ISO_OUT" ||
  fail "rollback does not re-up the legacy backend without the publish"
grep -q "rolled back containers.conf drop-in $home/.config/containers/containers.conf.d/isolate-reaches.conf (removed)" "$ISO_OUT" || fail "rollback does not name the drop-in"
in_ct test ! -e "$home/.config/containers/containers.conf.d/isolate-reaches.conf" || fail "the drop-in is still there"
in_ct test ! -e /var/lib/isolate/reach-legacy/backend.compose.yaml || fail "the legacy override is still there"
wait_for 30 as_user "$legacy" sh -c 'podman ps --format "{{.Names}}" | grep -qx backend_backend_1' || fail "$legacy's backend does not run after the rollback"
as_user "$legacy" podman ps --format '{{.Names}} {{.Ports}}' | grep -q '127.0.0.1:8080' && fail "$legacy's backend still publishes 127.0.0.1:8080"
compose_as "$legacy" proxy start >/dev/null 2>&1
backend_ip=$(as_user "$legacy" podman inspect -f '{{(index .NetworkSettings.Networks "shared").IPAddress}}' backend_backend_1)
wait_for 30 ask_backend "$legacy" proxy_proxy_1 "$backend_ip" || fail "the legacy proxy does not get the backend's answer after the rollback"

step "apply --stack proxy again"
compose_as "$legacy" proxy stop >/dev/null 2>&1
isolate_ok apply --stack proxy
moved_proxy_gets_answer "proxy moved again, backend still $legacy's"

step "apply --stack backend while $legacy's backend still runs: refused, nothing changed"
run_isolate apply --stack backend
assert_eq 2 "$ISO_RC" "exit code of apply --stack backend while the legacy backend runs"
grep -qF "stack \`backend\`: $legacy's containers of project backend (backend_backend_1) still run, publishing its port on the host's loopback for proxy (isolate's legacy publish), where the stack's own unit publishes it now: stop them first" "$ISO_ERR" ||
  fail "the refusal does not say which containers hold the port"

step "apply --stack backend: the moved proxy gets the moved backend's answer"
compose_as "$legacy" backend stop >/dev/null 2>&1
isolate_ok apply --stack backend
grep -qF -- "- legacy publish /var/lib/isolate/reach-legacy/backend.compose.yaml of backend (for proxy): its own override publishes the port now" "$ISO_OUT" ||
  fail "apply --stack backend does not forget the legacy publish"
in_ct test ! -e /var/lib/isolate/reach-legacy/backend.compose.yaml || fail "the legacy override is still there"
assert_eq "root:root 644" "$(in_ct stat -c '%U:%G %a' /var/lib/isolate/stacks/backend/reaches.compose.yaml)" "owner and mode of the override"
wait_for 60 as_user stk-backend sh -c 'podman ps --format "{{.Names}}" | grep -qx backend_backend_1' || fail "the backend does not run as stk-backend"
wait_for 30 in_ct sh -c 'curl -s -m 5 http://127.0.0.1:8080/ | grep -q answer-from-backend' || fail "the backend does not answer on the host's loopback"
moved_proxy_gets_answer "both moved"

step "audit reports the path and that it answers"
run_isolate audit
grep -q 'reach proxy -> backend:backend:8080 .*answers' "$ISO_OUT" || fail "audit does not report the answering path"

step "audit says when a path does not answer"
as_user stk-backend systemctl --user stop isolate-compose-backend.service
run_isolate audit
grep -q 'reach proxy -> backend:backend:8080 (host port 8080): DOES NOT ANSWER' "$ISO_OUT" || fail "audit does not report the dead path"
as_user stk-backend systemctl --user start isolate-compose-backend.service || {
  as_user stk-backend systemctl --user status isolate-compose-backend.service | cat || true
  as_user stk-backend journalctl --user -u isolate-compose-backend.service --no-pager | tail -n 40 || true
  in_ct journalctl --no-pager | tail -n 40 || true
  fail "the backend's unit does not start again"
}
wait_for 30 ask_backend stk-proxy proxy_proxy_1 backend || fail "the path does not answer again after the backend's unit started"

step "apply again: nothing to do"
isolate_ok apply
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"
