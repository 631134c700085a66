# Issue 23: units that would undo isolation, and an env file on a filesystem the system
# rewrites. A legacy system unit whose ExecStartPre (written over a continuation line) chowns
# the stack's data back to alice: plan warns naming the unit, its file and line and the fix;
# audit reports it as an undoing_unit finding (text, JSON, Prometheus). An env file on /run
# (tmpfs): apply refuses (exit 2, nothing changed) instead of a chown gone at the next boot;
# once its writer (a tmpfiles line, as the plan says) gives it to the stack user, apply goes
# on, and after a real reboot the file is the stack user's again and plan says so.
in_ct useradd --create-home --shell /bin/bash alice
grep -q '^alice:' "$CT_ROOT/etc/subuid" || printf 'alice:100000:65536\n' >>"$CT_ROOT/etc/subuid"
grep -q '^alice:' "$CT_ROOT/etc/subgid" || printf 'alice:100000:65536\n' >>"$CT_ROOT/etc/subgid"
in_ct install -d -o alice -g alice /srv/app
in_ct install -o alice -g alice -m 0644 /dev/null /srv/app/photo
mkdir -p "$CT_ROOT/etc/systemd/system"
cat >"$CT_ROOT/etc/systemd/system/app-legacy.service" <<'UNIT'
[Unit]
Description=app, as alice ran it

[Service]
Type=oneshot
# hands the data back at every start
ExecStartPre=-/usr/bin/chown -R \
    alice:alice /srv/app
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
UNIT
in_ct systemctl daemon-reload
in_ct install -d -m 0755 /run/app-secrets
in_ct_sh 'printf "KEY=value\n" >/run/app-secrets/app.env && chown alice:alice /run/app-secrets/app.env && chmod 0600 /run/app-secrets/app.env'
[ "$(in_ct stat -f -c %T /run/app-secrets/app.env)" = tmpfs ] || fail "/run is not a tmpfs here"
write_policy /etc/isolate/policy.toml <<'TOML'
legacy_owner = "alice"

[stacks.app]
data = ["/srv/app"]
migrate = "shift"
uid = 1800
env_files = ["/run/app-secrets/app.env"]
TOML
unit_warning='! system unit app-legacy.service (ExecStartPre, /etc/systemd/system/app-legacy.service line 7) runs `/usr/bin/chown -R alice:alice /srv/app` on stack `app`'"'"'s data /srv/app: at its next start it gives the migrated files back, undoing isolation. Fix: remove line 7 of /etc/systemd/system/app-legacy.service (then `systemctl daemon-reload`), or stop the unit for good: `systemctl disable --now app-legacy.service`'
refusal='isolate: stack `app`: env file /run/app-secrets/app.env is on a tmpfs, emptied at every boot and written again by whatever writes it, with that writer'"'"'s owner, so handing it to stk-app now would not last; apply does not pretend it did. Make its writer give it to stk-app (owner stk-app, mode 0400: a `systemd-tmpfiles` line, or the unit that writes it), or keep it on a persistent filesystem, then `isolate apply` again'
before=$(host_fingerprint)

step "plan warns of the unit with its file, line and fix, and refuses the tmpfs env file"
run_isolate plan
assert_eq 2 "$ISO_RC" "plan's exit status with a refusal"
grep -qxF -- "$unit_warning" "$ISO_OUT" || fail "plan does not name the undoing unit"
grep -qxF -- "$refusal" "$ISO_ERR" || fail "plan does not refuse the tmpfs env file with its fix"

step "apply refuses: exit 2, nothing changed, the env file still alice's"
run_isolate apply
assert_eq 2 "$ISO_RC" "apply's exit status"
grep -qxF -- "$refusal" "$ISO_ERR" || fail "apply does not give the refusal"
assert_eq "$before" "$(host_fingerprint)" "account files, linger, state file"
assert_eq "alice 600" "$(in_ct stat -c '%U %a' /run/app-secrets/app.env)" "the env file's owner and mode"

step "its writer gives it to the stack's uid at boot (tmpfiles); apply goes on"
cat >"$CT_ROOT/etc/tmpfiles.d/app-secrets.conf" <<'CONF'
d /run/app-secrets 0755 root root -
f /run/app-secrets/app.env 0400 1800 1800 - KEY=value
CONF
in_ct rm /run/app-secrets/app.env
in_ct systemd-tmpfiles --create /etc/tmpfiles.d/app-secrets.conf
isolate_ok apply --no-systemd
assert_eq "stk-app 400" "$(in_ct stat -c '%U %a' /run/app-secrets/app.env)" "the env file after apply"
assert_eq "stk-app" "$(in_ct stat -c '%U' /srv/app)" "the data's owner after apply"

step "after a real reboot the env file is the stack user's again and plan says so"
reboot_ct
assert_eq "stk-app 400" "$(in_ct stat -c '%U %a' /run/app-secrets/app.env)" "the env file after a reboot"
isolate_ok plan --no-systemd
grep -qF "= env file /run/app-secrets/app.env is stk-app's alone (mode 0400)" "$ISO_OUT" \
  || fail "plan does not see the env file handed"
grep -qxF -- "$unit_warning" "$ISO_OUT" || fail "plan no longer names the undoing unit"

step "audit reports the unit as an undoing_unit finding in every format"
run_isolate audit
assert_eq 1 "$ISO_RC" "audit's exit status (an error finding)"
grep -qF 'system unit app-legacy.service (ExecStartPre, /etc/systemd/system/app-legacy.service line 7)' "$ISO_OUT" \
  || fail "audit's text does not name the unit"
run_isolate audit --format json
python3 - "$ISO_OUT" <<'PY' || fail "audit's JSON has no undoing_unit finding for app"
import json, sys
doc = json.load(open(sys.argv[1]))
f = [f for f in doc["findings"] if f["kind"] == "undoing_unit"]
assert len(f) == 1 and f[0]["stack"] == "app" and f[0]["path"] == "/srv/app", f
assert f[0]["samples"] == ["/etc/systemd/system/app-legacy.service line 7"], f
PY
run_isolate audit --format prometheus
grep -q 'kind="undoing_unit"' "$ISO_OUT" || fail "the Prometheus output does not count the finding"

step "the unit really does what plan says: started, it hands the data back"
in_ct systemctl start app-legacy.service
assert_eq "alice" "$(in_ct stat -c '%U' /srv/app)" "the data's owner after the legacy unit ran"
