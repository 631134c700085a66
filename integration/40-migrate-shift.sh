# Issue 4: data a legacy user's rootless containers wrote keeps the uid:gid the container sees
# after `apply` migrates it (shift) to the stack's own user and range.
legacy=alice
step "legacy user $legacy with a subordinate range and linger"
setup_legacy_user "$legacy"

step "a rootless container of $legacy writes files as container uid 0, 999 and 1000"
as_user "$legacy" podman run --rm --network none -v /srv/app:/data localhost/busybox sh -c '
  set -e
  mkdir /data/d /data/d/deeper
  echo root >/data/by-root
  echo 999 >/data/by-999
  echo 1000 >/data/by-1000
  echo mixed >/data/d/deeper/mixed
  ln -s by-1000 /data/link-to-1000
  chown 999:999 /data/by-999
  chown 1000:1000 /data/by-1000 /data/d
  chown -h 999:1000 /data/link-to-1000
  chown 1000:999 /data/d/deeper/mixed'
before=$(container_listing "$legacy" /srv/app)
printf '%s\n' "$before"
grep -q '^999:999 ./by-999$' <<<"$before" || fail "the container did not write as 999"
host_before=$(host_listing /srv/app)
printf 'host view before:\n%s\n' "$host_before"

step "apply --stack app (migrate = shift)"
write_shift_policy "$legacy"
isolate_ok apply --stack app

step "a rootless container of stk-app sees exactly the same owners"
assert_stack_running stk-app
import_busybox stk-app
after=$(container_listing stk-app /srv/app)
printf '%s\n' "$after"
assert_eq "$before" "$after" "uid:gid of every file as the containers see it"
host_after=$(host_listing /srv/app)
[ "$host_before" != "$host_after" ] || fail "host owners did not change: nothing was migrated"
