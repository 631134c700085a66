# Issue 7: a data path that is an overlayfs mount (lower and upper on the container's own
# filesystem, a hardlink in the lower layer) migrates completely: every file, not only the
# directories, and a real container of the stack sees exactly what the legacy user's saw.
legacy=alice
step "legacy user $legacy with a subordinate range and linger"
setup_legacy_user "$legacy"

step "an overlayfs mount at /srv/app: lower holds legacy files and a hardlinked pair"
in_ct_sh "set -e
  mkdir -p /srv/ovl/lower/lowdir /srv/ovl/upper /srv/ovl/work
  echo low >/srv/ovl/lower/low-999
  ln /srv/ovl/lower/low-999 /srv/ovl/lower/low-999-link
  echo low >/srv/ovl/lower/lowdir/low-1000
  chown 100998:100998 /srv/ovl/lower/low-999
  chown -R 100999:100999 /srv/ovl/lower/lowdir
  chmod 640 /srv/ovl/lower/lowdir/low-1000
  chown $legacy:$legacy /srv/ovl/upper
  mount -t overlay overlay -o lowerdir=/srv/ovl/lower,upperdir=/srv/ovl/upper,workdir=/srv/ovl/work /srv/app
  stat -f -c '%T' /srv/app"

# uid:gid, mode and name of everything under /data, as USER's rootless container sees it.
listing() {
  as_user "$1" podman run --rm --network none -v /srv/app:/data localhost/busybox \
    sh -c 'cd /data && find . | sort | while read -r f; do stat -c "%u:%g %a %n" "$f"; done'
}

step "a rootless container of $legacy writes files as container uid 0, 999 and 1000"
as_user "$legacy" podman run --rm --network none -v /srv/app:/data localhost/busybox sh -c '
  set -e
  mkdir /data/d
  echo root >/data/by-root
  echo 999 >/data/by-999
  echo 1000 >/data/by-1000
  ln -s by-1000 /data/link-to-1000
  chown 999:999 /data/by-999
  chown 1000:1000 /data/by-1000 /data/d
  chmod 2750 /data/d
  chown -h 999:1000 /data/link-to-1000'
before=$(listing "$legacy")
printf '%s\n' "$before"
grep -q '^999:999 644 ./low-999-link$' <<<"$before" || fail "the lower layer's hardlink is not seen as 999"
grep -q '^1000:1000 2750 ./d$' <<<"$before" || fail "the container did not write as 1000"

step "apply --stack app (migrate = shift) on the overlayfs data path"
write_shift_policy "$legacy"
run_isolate plan --stack app
cat "$ISO_OUT"
isolate_ok apply --stack app
in_ct grep -q '"phase": "done"' /var/lib/isolate/state.json \
  || fail "the migration is not recorded as done"

step "a rootless container of stk-app sees exactly the same owners and modes"
assert_stack_running stk-app
import_busybox stk-app
after=$(listing stk-app)
printf '%s\n' "$after"
# Closing the data (closed = true, the default) takes o+rx off its top and nothing else.
expected=$(sed 's|^0:0 755 \.$|0:0 750 .|' <<<"$before")
grep -q '^0:0 755 \.$' <<<"$before" || fail "the data path's top was not 0755 before"
assert_eq "$expected" "$after" "uid:gid and mode of every file as the containers see them (the top closed)"
left=$(in_ct_sh "find /srv/app \\( -uid +99999 -uid -165536 -o -gid +99999 -gid -165536 \\) | head")
assert_eq "" "$left" "files left in the legacy mapping"
lower_owner=$(in_ct stat -c '%u:%g' /srv/ovl/lower/low-999)
assert_eq "100998:100998" "$lower_owner" "the lower layer (never changed: copy-up)"
