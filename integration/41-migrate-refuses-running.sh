# Issue 4: while a container of the legacy user runs on the data, apply refuses to migrate it
# (exit 2) and changes nothing; once it stops, apply goes ahead. The legacy user has no podman
# API socket, as users who only run the podman CLI do not.
legacy=alice
step "legacy user $legacy; a container of theirs runs with /srv/app mounted"
setup_legacy_user "$legacy"
as_user "$legacy" podman run --rm --network none -v /srv/app:/data localhost/busybox \
  sh -c 'echo x >/data/f; chown 999:999 /data/f'
as_user "$legacy" podman run -d --name holder --network none -v /srv/app:/data localhost/busybox sleep 600
host_before=$(host_listing /srv/app)
holders=$(in_ct systemd-probe --holders /srv/app)
printf 'mount holders of /srv/app: %s\n' "$holders"
[ "$holders" != '[]' ] || fail "the backend does not see the legacy container holding /srv/app"
write_shift_policy "$legacy"

step "apply --stack app is refused while the container runs"
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply with a running holder"
# Without an API socket the container's name is unknown; its process and owner are named.
grep -q "(sleep, mounted at /data) (of $legacy)" "$ISO_ERR" || fail "the refusal does not name the running container's process and owner"
assert_eq "$host_before" "$(host_listing /srv/app)" "owners under /srv/app"

step "stopped, apply migrates"
as_user "$legacy" podman rm -f -t 0 holder >/dev/null
isolate_ok apply --stack app
[ "$host_before" != "$(host_listing /srv/app)" ] || fail "nothing was migrated after the holder stopped"
