# The setting scenarios 60 and 81 share, sourced by both: a legacy user whose containers left
# data for stacks a and b (shifted, closed), c without grants, and a share s with
# write = ["a"], read = ["b:1000"]; and the probe that asks real rootless containers of each
# stack what they can do there.

# matrix_legacy_host LEGACY: the legacy user with its range, and the trees as its containers
# left them.
matrix_legacy_host() {
  local legacy=$1
  in_ct useradd --create-home --shell /bin/bash "$legacy"
  # useradd may have given it a range already (shadow's SUB_UID_MIN is 100000).
  grep -q "^$legacy:" "$CT_ROOT/etc/subuid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subuid"
  grep -q "^$legacy:" "$CT_ROOT/etc/subgid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subgid"
  grep "^$legacy:100000:65536$" "$CT_ROOT/etc/subuid" || fail "$legacy's range is not 100000:65536"
  # As alice's containers left it: container root owns the tops and a probe file (0644),
  # container 999 a postgres-like directory, and in a's data only, container 1000 a directory.
  in_ct_sh "
    set -e
    for s in a b; do
      install -d -o $legacy -g $legacy -m 0755 /srv/\$s
      echo \"data of \$s\" >/srv/\$s/probe && chown $legacy:$legacy /srv/\$s/probe && chmod 0644 /srv/\$s/probe
      install -d -o 100998 -g 100998 -m 0700 /srv/\$s/pg
    done
    install -d -o 100999 -g 100999 -m 0755 /srv/a/u1000
    install -d -o root -g root -m 0755 /srv/c
    install -d -o $legacy -g $legacy -m 0755 /srv/s /srv/s/photos
    echo shared >/srv/s/probe && chmod 0644 /srv/s/probe && chown $legacy:$legacy /srv/s/probe
    echo photo >/srv/s/photos/p1 && chown 1000:1000 /srv/s/photos/p1
    setfacl -m u:4242:r /srv/s/photos/p1   # a host user's entry: never isolate's
  "
}

# write_matrix_policy LEGACY: the policy of the three stacks and the share.
write_matrix_policy() {
  local legacy=$1
  write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.a]
data = ["/srv/a"]
migrate = "shift"

[stacks.b]
data = ["/srv/b"]
migrate = "shift"

[stacks.c]
data = ["/srv/c"]
migrate = "reown"

[shares.s]
path = "/srv/s"
write = ["a"]
read = ["b:1000"]
TOML
}

# try STACK CUID PATH: "LRC" with 1 where list / read probe / create worked, from a real
# rootless container of the stack running as container uid CUID with PATH mounted at /data.
try_access() {
  as_user "stk-$1" podman run --rm --network none --user "$2:$2" -v "$3:/data" localhost/busybox sh -c '
    l=0 r=0 c=0
    ls /data >/dev/null 2>&1 && l=1
    cat /data/probe >/dev/null 2>&1 && r=1
    f=/data/.try-$(id -u)-$$
    if touch "$f" 2>/dev/null; then c=1; rm -f "$f"; fi
    echo "$l$r$c"' 2>/dev/null || echo 000
}

# Prints one stable line per (stack, container uid, path): "matrix STACK CUID PATH LIST READ CREATE".
observed_matrix() {
  local s u t p r
  for s in a b c; do
    for u in 0 1000; do
      for t in data-a:/srv/a data-b:/srv/b share-s:/srv/s; do
        r=$(try_access "$s" "$u" "${t#*:}")
        printf 'matrix %s %s %s %s %s %s\n' "$s" "$u" "${t%%:*}" "${r:0:1}" "${r:1:1}" "${r:2:1}"
      done
    done
  done
}
