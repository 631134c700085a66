# Issue 4: data a legacy user's rootless containers wrote keeps the uid:gid the container sees
# after `apply` migrates it (shift) to the stack's own user and range.
legacy=alice
step "legacy user $legacy with a subordinate range and linger"
in_ct useradd --create-home --shell /bin/bash "$legacy"
grep -q "^$legacy:" "$CT_ROOT/etc/subuid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subuid"
grep -q "^$legacy:" "$CT_ROOT/etc/subgid" || printf '%s:100000:65536\n' "$legacy" >>"$CT_ROOT/etc/subgid"
grep "^$legacy:" "$CT_ROOT/etc/subuid" "$CT_ROOT/etc/subgid"
in_ct loginctl enable-linger "$legacy"
legacy_uid=$(uid_of "$legacy")
wait_for 30 in_ct test -S "/run/user/$legacy_uid/bus" || fail "user manager of $legacy did not come up"

step "a rootless container of $legacy writes files as container uid 0, 999 and 1000"
in_ct install -d -o "$legacy" -g "$legacy" /srv/app
import_busybox "$legacy"
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
host_before=$(cd "$CT_ROOT/srv/app" && find . | sort | xargs -d '\n' stat -c '%u:%g %n')
printf 'host view before:\n%s\n' "$host_before"

step "apply --stack app (migrate = shift)"
write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
TOML
isolate_ok apply --stack app

step "a rootless container of stk-app sees exactly the same owners"
assert_stack_running stk-app
import_busybox stk-app
after=$(container_listing stk-app /srv/app)
printf '%s\n' "$after"
assert_eq "$before" "$after" "uid:gid of every file as the containers see it"
host_after=$(cd "$CT_ROOT/srv/app" && find . | sort | xargs -d '\n' stat -c '%u:%g %n')
[ "$host_before" != "$host_after" ] || fail "host owners did not change: nothing was migrated"
