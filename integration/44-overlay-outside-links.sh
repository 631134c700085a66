# Issue 17 item 14: on an overlay root (a live system, `--volatile=overlay`), a file made on
# the mounted overlay is one upper inode with several names. Root's 0600 file hardlinked into
# a stack's data path from outside it must never be handed to the stack (on ext4 the same
# tree is refused, so it is here): plan warns, apply fails the step with the file named, the
# migration stays `migrating`, and the file stays root's. A pair with both names inside the
# data still migrates.
legacy=alice
step "legacy user $legacy with a subordinate range and linger"
setup_legacy_user "$legacy"

step "an overlay at /srv/ovl/merged holding the data path app and root's secret beside it"
in_ct_sh "set -e
  mkdir -p /srv/ovl/lower/app /srv/ovl/upper /srv/ovl/work /srv/ovl/merged
  echo data >/srv/ovl/lower/app/file
  chown 100998:100998 /srv/ovl/lower/app/file
  chown $legacy:$legacy /srv/ovl/lower/app
  mount -t overlay overlay -o lowerdir=/srv/ovl/lower,upperdir=/srv/ovl/upper,workdir=/srv/ovl/work /srv/ovl/merged
  stat -f -c '%T' /srv/ovl/merged
  echo 'root secret' >/srv/ovl/merged/root-secret
  chmod 600 /srv/ovl/merged/root-secret
  ln /srv/ovl/merged/root-secret /srv/ovl/merged/app/planted
  echo pair >/srv/ovl/merged/app/pair
  ln /srv/ovl/merged/app/pair /srv/ovl/merged/app/pair-link
  chown 100998:100998 /srv/ovl/merged/app/pair
  stat -c '%u:%g %a %h %n' /srv/ovl/merged/root-secret /srv/ovl/merged/app/planted"

write_policy /etc/isolate/policy.toml <<TOML
legacy_owner = "$legacy"

[stacks.app]
data = ["/srv/ovl/merged/app"]
migrate = "auto"
TOML

step "plan warns about the file linked from outside"
run_isolate plan --stack app
grep -q 'hardlinks outside the data path are never changed: planted' "$ISO_OUT" \
  || fail "plan does not name planted as linked from outside"

step "apply: the step fails naming it, root's file is untouched"
run_isolate apply --stack app
[ "$ISO_RC" = 1 ] || fail "apply exited $ISO_RC, not 1"
grep -q 'hardlinks outside the data path and were not changed: planted' "$ISO_OUT" \
  || fail "apply does not name planted"
secret=$(in_ct stat -c '%u:%g %a' /srv/ovl/merged/root-secret)
assert_eq "0:0 600" "$secret" "root's secret (owner and mode)"
in_ct grep -q '"phase": "migrating"' /var/lib/isolate/state.json \
  || fail "the migration is not left migrating"
stack_uid=$(uid_of stk-app)
pair=$(in_ct stat -c '%u:%g' /srv/ovl/merged/app/pair-link)
[ "$pair" != "100998:100998" ] || fail "the pair with both names inside was not migrated"
file=$(in_ct stat -c '%u' /srv/ovl/merged/app/file)
[ "$file" != 100998 ] || fail "the lower-layer file was not migrated"
echo "stack uid $stack_uid; pair $pair; file $file"

step "a re-run says the same and still leaves root's file alone"
run_isolate apply --stack app
[ "$ISO_RC" = 1 ] || fail "the re-run exited $ISO_RC, not 1"
secret=$(in_ct stat -c '%u:%g %a' /srv/ovl/merged/root-secret)
assert_eq "0:0 600" "$secret" "root's secret after a re-run"
