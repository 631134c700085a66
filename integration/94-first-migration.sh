# Issue 19: the first migration as a new admin does it. A seed-style compose project of the
# legacy user (a database writing as uid 999 into a `:U` bind mount, a cache in a named volume,
# an env file with a secret in a home of mode 0700, media shared with a second project) goes
# from `isolate init` to a running stack user's unit with no edit of the draft; `plan --stack`
# previews while the legacy stack runs (whole plan, then refusals); the 0700 home is named by
# plan with its fix, not found by apply's timeout; apply narrates its waits; status, audit and
# rollback close the loop. Every command's output is printed (README's guide quotes it).
legacy=alice
# Test-machine settings, as in scenario 90: podman-compose 1.0.3 needs the network wrapper
# (podman-nonet), given here by a podman-compose earlier in PATH (so the draft's default
# compose command is used unedited); containers share the caller's keyring under nspawn.
install -m 0755 "$SUITE/podman-nonet" "$CT_ROOT/usr/local/bin/podman-nonet"
cat >"$CT_ROOT/usr/local/bin/podman-compose" <<'SH'
#!/bin/sh
exec /usr/bin/podman-compose --podman-path /usr/local/bin/podman-nonet "$@"
SH
chmod 0755 "$CT_ROOT/usr/local/bin/podman-compose"
[ -e "$CT_ROOT/etc/containers/containers.conf" ] && fail "the rootfs has a containers.conf; merge the keyring setting into it"
printf '[containers]\nkeyring = false\n' >"$CT_ROOT/etc/containers/containers.conf"

step "legacy user $legacy (home 0700, Debian adduser's default) with two compose projects"
setup_legacy_user "$legacy"
in_ct chmod 0700 "/home/$legacy"
as_user "$legacy" podman tag localhost/busybox localhost/seed:1
in_ct install -d -o root -g root -m 0755 /srv/seed /srv/media
in_ct install -d -o "$legacy" -g "$legacy" /srv/seed/db
printf 'a film\n' >"$CT_ROOT/srv/media/film.mkv"
as_user "$legacy" mkdir -p "/home/$legacy/seed" "/home/$legacy/player"
cat >"$CT_ROOT/home/$legacy/seed/compose.yaml" <<'YAML'
services:
  db:
    image: localhost/seed:${TAG}
    network_mode: none
    user: "999:999"
    env_file: .env
    volumes:
      - ${DATA_ROOT}/db:/var/lib/db:U
    command: ["sh", "-c", "test -n \"$$DB_PASSWORD\" || exit 3; echo row-$$(date +%s%N) >>/var/lib/db/rows; echo db up as $$(id -u) with $$(wc -l </var/lib/db/rows) rows; exec sleep 100000"]
  cache:
    image: localhost/seed:${TAG}
    network_mode: none
    volumes:
      - cache:/data
    command: ["sh", "-c", "test -e /data/warm || echo warm >/data/warm; echo cache up; exec sleep 100000"]
  web:
    image: localhost/seed:${TAG}
    network_mode: none
    volumes:
      - /srv/media:/media
    command: ["sh", "-c", "ls /media >/dev/null && echo web sees media; exec sleep 100000"]
volumes:
  cache:
YAML
printf 'TAG=1\nDATA_ROOT=/srv/seed\nDB_PASSWORD=hunter2\n' >"$CT_ROOT/home/$legacy/seed/.env"
cat >"$CT_ROOT/home/$legacy/player/compose.yaml" <<'YAML'
services:
  player:
    image: localhost/seed:1
    network_mode: none
    volumes:
      - /srv/media:/media
    command: ["sh", "-c", "ls /media; exec sleep 100000"]
YAML
in_ct chown -R "$legacy:$legacy" "/home/$legacy/seed" "/home/$legacy/player"
in_ct chmod 0600 "/home/$legacy/seed/.env"
legacy_compose() { # DIR ARGS...: podman-compose as the legacy user in DIR
  local dir=$1
  shift
  as_user "$legacy" sh -c 'cd "$1" && shift && exec podman-compose "$@"' compose "$dir" "$@"
}
legacy_compose "/home/$legacy/seed" up -d >/dev/null 2>&1 || { legacy_compose "/home/$legacy/seed" up -d 2>&1 | tail -20; fail "the legacy seed project did not start"; }
legacy_compose "/home/$legacy/player" up -d >/dev/null 2>&1 || fail "the legacy player project did not start"
wait_for 30 as_user "$legacy" sh -c 'podman logs seed_db_1 2>&1 | grep -q "db up as 999 with 1 rows"' || fail "the legacy db did not start"
wait_for 30 as_user "$legacy" sh -c 'podman logs seed_cache_1 2>&1 | grep -q "cache up"' || fail "the legacy cache did not start"
as_user "$legacy" podman ps --format '{{.Names}} {{.Status}}'
rows_before=$(in_ct cat /srv/seed/db/rows)

step "isolate init drafts the policy (written unedited to /etc/isolate/policy.toml)"
in_ct install -d /etc/isolate
in_ct sh -c "isolate init --legacy-owner $legacy --compose /home/$legacy/seed --compose /home/$legacy/player >/etc/isolate/policy.toml"
sed 's/^/  draft| /' "$CT_ROOT/etc/isolate/policy.toml"
draft_sum=$(sha256sum <"$CT_ROOT/etc/isolate/policy.toml")
grep -q '^\[stacks.seed\]' "$CT_ROOT/etc/isolate/policy.toml" || fail "init drafts no stack seed"
grep -q '^service = true' "$CT_ROOT/etc/isolate/policy.toml" || fail "init drafts no service"
grep -q "/home/$legacy/seed/.env" "$CT_ROOT/etc/isolate/policy.toml" || fail "init drafts no env file"

step "plan --stack seed while the legacy stack runs: the whole plan, then the refusals (exit 2)"
fingerprint_before=$(host_fingerprint)
run_isolate plan --stack seed
assert_eq 2 "$ISO_RC" "exit status of plan while the legacy stack runs"
grep -q '^+ user stk-seed ' "$ISO_OUT" || fail "the preview does not create stk-seed"
grep -q '^~ migrate /srv/seed/db for seed' "$ISO_OUT" || fail "the preview does not migrate /srv/seed/db"
grep -q '^~ volume seed_cache for seed: move' "$ISO_OUT" || fail "the preview does not move the volume"
grep -q '^+ service isolate-compose-seed.service for seed' "$ISO_OUT" || fail "the preview does not install the service"
grep -q '^isolate: stack `seed`: containers are running on /srv/seed/db: ' "$ISO_ERR" || fail "the refusal does not name what runs on the db's data"
grep -q "but /home/$legacy (owner $legacy, mode 0700) does not let stk-seed through" "$ISO_ERR" || fail "plan does not name the 0700 home"
assert_eq "$fingerprint_before" "$(host_fingerprint)" "accounts and state after plan"
run_isolate apply --stack seed
assert_eq 2 "$ISO_RC" "exit status of apply while the legacy stack runs"
assert_eq "$fingerprint_before" "$(host_fingerprint)" "accounts and state after the refused apply"

step "the admin stops the legacy project and runs the command plan names for the home"
legacy_compose "/home/$legacy/seed" stop >/dev/null 2>&1
fix=$(grep -o "for stk-seed alone, \`setfacl [^\`]*\`" "$ISO_ERR" | head -1 | sed 's/^[^`]*`//; s/`$//')
[ -n "$fix" ] || fail "no setfacl command in the refusal"
printf 'running: %s\n' "$fix"
in_ct sh -c "$fix"
isolate_ok plan --stack seed
grep -q "does not let" "$ISO_ERR" && fail "plan still names the home"

step "apply --stack seed: narrated waits"
isolate_ok apply --stack seed
grep -q '^waiting for isolate-compose-seed.service of uid [0-9]* to start (compose brings the project up) (up to 300 s)$' "$ISO_ERR" || fail "apply does not narrate the compose unit's wait"
grep -q '^waiting for the containers of project seed to run as stk-seed (up to 60 s)$' "$ISO_ERR" || fail "apply does not narrate the project's wait"
assert_eq "$draft_sum" "$(sha256sum <"$CT_ROOT/etc/isolate/policy.toml")" "the policy is init's draft, unedited"

step "the stack user's unit runs the project; rows, volume and media as before"
assert_eq "enabled active" "$(user_unit_prop stk-seed isolate-compose-seed.service UnitFileState) $(user_unit_prop stk-seed isolate-compose-seed.service ActiveState)" "state of the compose unit"
for c in seed_db_1 seed_cache_1 seed_web_1; do
  wait_for 30 as_user stk-seed sh -c "podman ps --format '{{.Names}}' | grep -qx $c" || fail "$c does not run as stk-seed"
done
wait_for 30 as_user stk-seed sh -c 'podman logs seed_db_1 2>&1 | grep -q "db up as 999 with 2 rows"' || fail "the stack's db does not see the legacy rows"
assert_eq "$rows_before" "$(as_user stk-seed podman exec seed_db_1 head -1 /var/lib/db/rows)" "the first row as the stack's db sees it"
assert_eq "warm" "$(as_user stk-seed podman exec seed_cache_1 cat /data/warm)" "the cache volume as the stack sees it"
wait_for 30 as_user stk-seed sh -c 'podman logs seed_web_1 2>&1 | grep -q "web sees media"' || fail "the stack's web does not see the media"

step "status and audit"
isolate_ok status --stack seed
grep -q "service isolate-compose-seed.service (enabled, active, project seed runs)" "$ISO_OUT" || fail "status does not show the service"
run_isolate audit --stack seed
[ "$ISO_RC" = 0 ] || [ "$ISO_RC" = 1 ] || fail "audit exited $ISO_RC"

step "rollback --stack seed: alice's project starts again with its rows"
isolate_ok rollback --stack seed
legacy_compose "/home/$legacy/seed" up -d >/dev/null 2>&1 || fail "the legacy seed project did not start again"
wait_for 30 as_user "$legacy" sh -c 'podman logs seed_db_1 2>&1 | grep -q "db up as 999 with 3 rows"' || fail "the legacy db does not see its rows after rollback"

step "a wait that fails ends with the unit's journal lines (a stack added by hand: its command does not exist)"
in_ct install -d -o "$legacy" -g "$legacy" /srv/broken
cat >"$CT_ROOT/srv/broken/compose.yaml" <<'YAML'
services:
  broken:
    image: localhost/seed:1
    network_mode: none
    command: ["/no/such/command"]
YAML
in_ct chown "$legacy:$legacy" /srv/broken/compose.yaml
cat >>"$CT_ROOT/etc/isolate/policy.toml" <<'TOML'

[stacks.broken]
data = []
compose = ["/srv/broken/compose.yaml"]
service = true
TOML
run_isolate apply --stack broken
assert_eq 1 "$ISO_RC" "exit status of apply with a project that cannot run"
grep -q 'isolate-compose-broken.service is active, but project broken does not run as stk-broken' "$ISO_OUT" || fail "the failure does not say the project does not run"
grep -q 'last journal lines (`journalctl _UID=[0-9]* _SYSTEMD_USER_UNIT=isolate-compose-broken.service + _UID=[0-9]* USER_UNIT=isolate-compose-broken.service`):' "$ISO_OUT" || fail "the failure carries no journal lines"
grep -q '/no/such/command' "$ISO_OUT" || fail "the journal lines do not say why the container does not start"
