# Issue 9: closed stack data and a share, proven with real rootless containers. Stacks a and b
# take over data from a legacy user (shift); c has no grants. Share s: write = ["a"],
# read = ["b:1000"]. Every stack, as container root and as container uid 1000, tries to list,
# read and create on a's data, b's data and s; the observed matrix must equal the policy's.
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

# Owners, modes and ACLs of everything under the three trees, as the host sees them.
full_listing() {
  local d
  for d in /srv/a /srv/b /srv/s; do
    in_ct_sh "cd $d && find . -path ./from-a -prune -o -print | LC_ALL=C sort | xargs -d '\n' stat -c '%n %u %g %a %h' && getfacl -R -n -P . 2>/dev/null"
  done
}
before=$(full_listing)

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

step "plan shows closing and the share step with its inode count"
isolate_ok plan
grep -q '^~ close /srv/a of a' "$ISO_OUT" || fail "plan does not close /srv/a"
grep -q '^~ share s at /srv/s: a write (host uid [0-9]*), b:1000 read (host uid [0-9]*); 4 of 4 inodes change' "$ISO_OUT" ||
  fail "plan does not show the share step with 4 of 4 inodes"

step "apply"
isolate_ok apply
for s in a b c; do import_busybox "stk-$s"; done

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

# The matrix the policy implies: own data open to container root; container uid 1000 only
# enters a's top (it owns a directory there: --x, no listing); the share as granted.
expected_matrix() {
  cat <<'M'
matrix a 0 data-a 1 1 1
matrix a 0 data-b 0 0 0
matrix a 0 share-s 1 1 1
matrix a 1000 data-a 0 1 0
matrix a 1000 data-b 0 0 0
matrix a 1000 share-s 0 0 0
matrix b 0 data-a 0 0 0
matrix b 0 data-b 1 1 1
matrix b 0 share-s 0 0 0
matrix b 1000 data-a 0 0 0
matrix b 1000 data-b 0 0 0
matrix b 1000 share-s 1 1 0
matrix c 0 data-a 0 0 0
matrix c 0 data-b 0 0 0
matrix c 0 share-s 0 0 0
matrix c 1000 data-a 0 0 0
matrix c 1000 data-b 0 0 0
matrix c 1000 share-s 0 0 0
M
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

step "the access matrix real containers observe"
echo "matrix STACK CONTAINER_UID PATH LIST READ CREATE"
observed=$(observed_matrix)
printf '%s\n' "$observed"
assert_eq "$(expected_matrix)" "$observed" "observed access matrix"

step "from the host: c's user (with its groups, the shared group too) and a subordinate id of c cannot read a's data or s"
c_uid=$(uid_of stk-c) c_gid=$(gid_of stk-c)
c_sub=$(( $(grep '^stk-c:' "$CT_ROOT/etc/subuid" | cut -d: -f2) + 999 ))
for f in /srv/a/probe /srv/s/probe; do
  ! in_ct setpriv --reuid "$c_uid" --regid "$c_gid" --clear-groups cat "$f" 2>/dev/null || fail "uid $c_uid (stk-c) read $f"
  ! in_ct setpriv --reuid "$c_sub" --regid "$c_sub" --clear-groups cat "$f" 2>/dev/null || fail "subordinate id $c_sub of stk-c read $f"
  ! in_ct runuser -u stk-c -- cat "$f" 2>/dev/null || fail "stk-c with its supplementary groups ($(in_ct id -Gn stk-c)) read $f"
done

step "what a writer creates stays reachable; an application's chmod narrows the mask, apply restores it"
as_user stk-a podman run --rm --network none -v /srv/s:/data localhost/busybox sh -c 'echo by-a >/data/from-a && chmod 600 /data/from-a'
b_reads() { as_user stk-b podman run --rm --network none --user 1000:1000 -v /srv/s:/data localhost/busybox cat /data/from-a 2>/dev/null; }
! b_reads >/dev/null || fail "b:1000 read from-a through a mask chmod 600 should have narrowed"
isolate_ok plan
grep -q '^~ share s at /srv/s: .*1 of 5 inodes change' "$ISO_OUT" || fail "plan does not count the one inode to repair"
isolate_ok apply
assert_eq by-a "$(b_reads)" "b:1000 reading what a wrote"

step "a file moved in with a foreign ACL is repaired"
in_ct_sh "echo moved >/root/moved && setfacl -m u:$(uid_of stk-c):rw,u:4242:r /root/moved && mv /root/moved /srv/s/moved"
isolate_ok apply
acl=$(in_ct getfacl -n -P /srv/s/moved)
printf '%s\n' "$acl"
! grep -q "^user:$(uid_of stk-c):" <<<"$acl" || fail "c's entry survived on the moved file"
grep -q '^user:4242:r--' <<<"$acl" || fail "the host user's entry was touched"
in_ct rm /srv/s/moved

step "a second apply changes nothing"
isolate_ok apply
grep -q '^nothing to do' "$ISO_OUT" || fail "second apply was not a no-op"

step "status shows closed data and grants"
isolate_ok status --no-systemd
grep -q '^  closed /srv/a (enters: owner, group and host uids ' "$ISO_OUT" || fail "status does not show /srv/a closed"
grep -q '^  share s read (/srv/s) as container uid 1000 (host uid ' "$ISO_OUT" || fail "status does not show b's grant"
isolate_ok status --no-systemd --json
[ "$(json_stack_value "$ISO_OUT" a closed | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["path"])')" = /srv/a ] ||
  fail "status --json does not show /srv/a closed for a"

step "revoke b:1000's grant: gone after apply"
sed -i '/^read = \["b:1000"\]$/d' "$CT_ROOT/etc/isolate/policy.toml"
b_host=$(( $(grep '^stk-b:' "$CT_ROOT/etc/subuid" | cut -d: -f2) + 999 ))
isolate_ok apply
! in_ct getfacl -R -n -P /srv/s | grep -q "user:$b_host:" || fail "b:1000's entries (host uid $b_host) remain"
assert_eq 000 "$(try_access b 1000 /srv/s)" "b:1000 on s after the revocation"
isolate_ok apply
grep -q '^nothing to do' "$ISO_OUT" || fail "apply after the revocation is not a no-op"

step "rollback: share and both stacks' data byte for byte as before"
in_ct rm /srv/s/from-a
isolate_ok rollback --share s
isolate_ok rollback --stack a
isolate_ok rollback --stack b
after=$(full_listing)
if [ "$before" != "$after" ]; then
  diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") || true
  fail "listings after rollback differ from before apply"
fi

step "the observed access matrix (equal to the policy's; 1 = allowed)"
echo "matrix STACK CONTAINER_UID PATH LIST READ CREATE"
printf '%s\n' "$observed"
