# Issue 20: a proxy project and a backend project of the legacy user share an external podman
# network; `isolate init` drafts `reaches` from their compose files, and after each stack is
# moved to its own user (backend first, then proxy) the proxy's container still gets the
# backend's answer over a real TCP connection: the backend's port published on the host's
# loopback, the proxy given host-loopback access and the name `backend` by isolate's override.
legacy=alice
# Rootless user-mode networking (slirp4netns, pasta) opens /dev/net/tun. systemd-nspawn makes
# the node with mode 0600 (root only); a host gives it 0666. Made so here, from the host side
# of the container's mount namespace (nspawn's own seccomp and capability limits do not apply).
nsenter -t "$CT_PID" -m sh -c 'test -c /dev/net/tun || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }; chmod 0666 /dev/net/tun'
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"
# podman-compose 1.0.3 passes `--net NETS --network-alias SERVICE` to every container, also next
# to a `network_mode` (`--network MODE`), which podman refuses; newer podman-compose leaves them
# out. This wrapper drops those two options when a `--network` is given, nothing else.
cat >"$CT_ROOT/usr/local/bin/podman-netmode" <<'SH'
#!/bin/sh
mode=""
for a in "$@"; do case "$a" in --network) mode=1 ;; esac; done
[ -z "$mode" ] && exec podman "$@"
for a in "$@"; do
  shift
  if [ -n "$skip" ]; then skip=""; continue; fi
  case "$a" in --net|--network-alias) skip=1; continue ;; esac
  set -- "$@" "$a"
done
exec podman "$@"
SH
chmod 0755 "$CT_ROOT/usr/local/bin/podman-netmode"

compose_as() { # USER PROJECT ARGS...
  local user=$1 project=$2
  shift 2
  as_user "$user" sh -c 'cd /srv/'"$project"'/conf && exec podman-compose --podman-path /usr/local/bin/podman-netmode -p '"$project"' "$@"' compose "$@"
}
# A real HTTP request over TCP from the proxy container to HOST:8080; prints the body's line.
ask_backend() { # USER CONTAINER HOST
  as_user "$1" podman exec "$2" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 '"$3"' 8080' 2>&1 | grep -a answer-from-backend
}

step "legacy user $legacy with an external network shared by two projects"
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

step "init drafts reaches on the proxy from its env value"
isolate_ok init --compose /srv/backend/conf --compose /srv/proxy/conf --legacy-owner "$legacy"
grep -A2 '^reaches = \[' "$ISO_OUT" | grep -q '"backend:backend:8080",  # proxy.s env UPSTREAM=http://backend:8080/ names service backend of project backend' ||
  fail "init does not draft reaches = [\"backend:backend:8080\"] on the proxy"
drafted=$(grep -A1 '^reaches = \[' "$ISO_OUT" | sed -n 2p | sed 's/,  #.*//')
compose_cmd='["podman-compose", "--podman-path", "/usr/local/bin/podman-netmode"]'
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.backend]
data = []
uid = 1801
compose = ["/srv/backend/conf/compose.yaml"]
service = true
compose_command = $compose_cmd

[stacks.proxy]
data = []
uid = 1802
compose = ["/srv/proxy/conf/compose.yaml"]
service = true
compose_command = $compose_cmd
reaches = [$drafted]
TOML
cat "$CT_ROOT/etc/isolate/policy.toml"

step "plan --stack backend shows the override that publishes the backend's port on loopback"
isolate_ok plan --stack backend
grep -q '^+ reach override /var/lib/isolate/stacks/backend/reaches.compose.yaml for backend' "$ISO_OUT" || fail "plan does not show the backend's override"
grep -q '| *- "127.0.0.1:8080:8080"' "$ISO_OUT" || fail "plan does not show the loopback publish"

step "apply --stack backend"
compose_as "$legacy" backend stop >/dev/null 2>&1
isolate_ok apply --stack backend
assert_eq "root:root 644" "$(in_ct stat -c '%U:%G %a' /var/lib/isolate/stacks/backend/reaches.compose.yaml)" "owner and mode of the override"
wait_for 60 as_user stk-backend sh -c 'podman ps --format "{{.Names}}" | grep -qx backend_backend_1' || fail "the backend does not run as stk-backend"
wait_for 30 in_ct sh -c 'curl -s -m 5 http://127.0.0.1:8080/ | grep -q answer-from-backend' || fail "the backend does not answer on the host's loopback"
# The legacy proxy is alice's until its own apply: a container of hers with host-loopback access
# and the name reaches the moved backend the same way the proxy's override will.
legacy_reaches_moved_backend() {
  as_user "$legacy" podman run --rm --network slirp4netns:allow_host_loopback=true --add-host backend:10.0.2.2 \
    localhost/busybox sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 backend 8080' </dev/null | grep -a answer-from-backend
}
wait_for 30 legacy_reaches_moved_backend ||
  fail "a container of $legacy with host-loopback access does not reach the moved backend"

step "apply --stack proxy: the proxy reaches backend:8080 by name"
compose_as "$legacy" proxy stop >/dev/null 2>&1
isolate_ok plan --stack proxy
grep -q 'network_mode: "slirp4netns:allow_host_loopback=true"' "$ISO_OUT" || fail "plan does not show the proxy's host-loopback access"
isolate_ok apply --stack proxy
wait_for 60 as_user stk-proxy sh -c 'podman ps --format "{{.Names}}" | grep -qx proxy_proxy_1' || fail "the proxy does not run as stk-proxy"
wait_for 30 ask_backend stk-proxy proxy_proxy_1 backend || {
  as_user stk-proxy podman exec proxy_proxy_1 cat /etc/hosts || true
  fail "the moved proxy does not get the backend's answer"
}
ask_backend stk-proxy proxy_proxy_1 backend

step "audit reports the path and that it answers"
run_isolate audit
grep -q 'reach proxy -> backend:backend:8080 .*answers' "$ISO_OUT" || fail "audit does not report the answering path"

step "apply again: nothing to do"
isolate_ok apply
grep -q "nothing to do" "$ISO_OUT" || fail "a second apply is not 'nothing to do'"
