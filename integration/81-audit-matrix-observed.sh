# Issue 10: the access matrix audit predicts from modes, ACLs and masks along the path equals
# what real rootless containers observe (the setup of scenario 60: stacks a and b shifted and
# closed, c without grants, share s with write = ["a"], read = ["b:1000"]). Per stack the
# observed level is the best of its container uids 0 and 1000: create -> write, list or
# read -> read, nothing -> none.
legacy=alice
step "legacy user $legacy with a subordinate range; data of a and b, share s"
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

step "apply (migrate, close, share)"
isolate_ok apply
for s in a b c; do import_busybox "stk-$s"; done

step "audit --format json: the predicted matrix"
run_isolate audit --format json
[ "$ISO_RC" = 0 ] || [ "$ISO_RC" = 1 ] || fail "audit exited $ISO_RC"
predicted=$(python3 - "$ISO_OUT" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
names = {"/srv/a": "data-a", "/srv/b": "data-b", "/srv/s": "share-s"}
for c in sorted(doc["matrix"], key=lambda c: (c["stack"], names.get(c["path"], c["path"]))):
    if c["path"] in names:
        print(c["stack"], names[c["path"]], c["predicted"])
PY
)
printf '%s\n' "$predicted"

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

step "what real containers of each stack observe, as container uid 0 and 1000"
observed=$(observed_matrix)
printf '%s\n' "$observed"
observed_levels=$(awk '
  { key = $2 " " $4; lvl = ($7 == 1) ? 2 : (($5 == 1 || $6 == 1) ? 1 : 0); if (lvl > best[key]) best[key] = lvl; seen[key] = 1 }
  END { for (k in seen) print k, (best[k] == 2 ? "write" : (best[k] == 1 ? "read" : "none")) }' <<<"$observed" | sort)
printf 'observed per stack:\n%s\n' "$observed_levels"
assert_eq "$observed_levels" "$predicted" "audit's predicted matrix against the observed one"
