# Issue 9: closed stack data and a share, proven with real rootless containers. Stacks a and b
# take over data from a legacy user (shift); c has no grants. Share s: write = ["a"],
# read = ["b:1000"]. Every stack, as container root and as container uid 1000, tries to list,
# read and create on a's data, b's data and s; the observed matrix must equal the policy's.
legacy=alice
step "legacy user $legacy with a subordinate range; data of a and b, share s"
source "$SUITE/matrix.sh"
matrix_legacy_host "$legacy"

# Owners, modes and ACLs of everything under the three trees, as the host sees them.
full_listing() {
  local d
  for d in /srv/a /srv/b /srv/s; do
    in_ct_sh "cd $d && find . -path ./from-a -prune -o -print | LC_ALL=C sort | xargs -d '\n' stat -c '%n %u %g %a %h' && getfacl -R -n -P . 2>/dev/null"
  done
}
# One tree's listing, nothing left out.
listing_of() {
  in_ct_sh "cd $1 && find . | LC_ALL=C sort | xargs -d '\n' stat -c '%n %u %g %a %h' && getfacl -R -n -P . 2>/dev/null"
}

step "a backup user (uid 34) whose rwx entries on the share the masks cut to r-x / r--"
in_ct_sh "setfacl -m u:34:rx /srv/s && setfacl -m u:34:rwx,m::rx /srv/s/photos && setfacl -m u:34:rw,m::r /srv/s/probe"
before=$(full_listing)
s_before=$(listing_of /srv/s)

write_matrix_policy "$legacy"

step "plan shows closing and the share step with its inode count"
isolate_ok plan
grep -q '^~ close /srv/a of a' "$ISO_OUT" || fail "plan does not close /srv/a"
grep -q '^~ share s at /srv/s: a write (host uid [0-9]*), b:1000 read (host uid [0-9]*); 4 of 4 inodes change' "$ISO_OUT" ||
  fail "plan does not show the share step with 4 of 4 inodes"

step "apply"
isolate_ok apply
for s in a b c; do import_busybox "stk-$s"; done


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


step "the access matrix real containers observe"
echo "matrix STACK CONTAINER_UID PATH LIST READ CREATE"
observed=$(observed_matrix)
printf '%s\n' "$observed"
assert_eq "$(expected_matrix)" "$observed" "observed access matrix"

step "the backup user keeps what its masks let it use: it lists and reads, it never writes"
as_34() { in_ct setpriv --reuid 34 --regid 34 --clear-groups "$@"; }
as_34 ls /srv/s/photos >/dev/null || fail "uid 34 can no longer list /srv/s/photos"
as_34 cat /srv/s/probe >/dev/null || fail "uid 34 can no longer read /srv/s/probe"
! as_34 touch /srv/s/photos/by-backup 2>/dev/null || fail "uid 34 gained write on /srv/s/photos"
! as_34 sh -c 'echo x >>/srv/s/probe' 2>/dev/null || fail "uid 34 gained write on /srv/s/probe"

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

step "the share moves to /srv/t: isolate's entries leave /srv/s (as it was), /srv/t gets them"
in_ct rm /srv/s/from-a
in_ct_sh "install -d -o $legacy -g $legacy -m 2750 /srv/t && echo t >/srv/t/probe && chown $legacy:$legacy /srv/t/probe && setfacl -m u:34:rwx,m::rx /srv/t"
t_before=$(listing_of /srv/t)
sed -i 's|^path = "/srv/s"$|path = "/srv/t"|' "$CT_ROOT/etc/isolate/policy.toml"
isolate_ok plan
grep -q '^~ share s moves from /srv/s to /srv/t: ' "$ISO_OUT" || fail "plan does not name both paths of the move"
isolate_ok apply
assert_eq "$s_before" "$(listing_of /srv/s)" "/srv/s after the share moved away"
assert_eq 111 "$(try_access a 0 /srv/t)" "a on the share's new path"
assert_eq 000 "$(try_access c 0 /srv/t)" "c on the share's new path"
in_ct getfacl -n -P /srv/t | grep -q '^user:34:r-x$' || fail "uid 34's entry on /srv/t is not cut to r-x"
isolate_ok apply
grep -q '^nothing to do' "$ISO_OUT" || fail "apply after the move is not a no-op"

step "rollback: share and both stacks' data byte for byte as before"
isolate_ok rollback --share s
assert_eq "$t_before" "$(listing_of /srv/t)" "/srv/t after rollback --share (its top's mode and ACL too)"
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
