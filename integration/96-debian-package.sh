# Issue 13: the Debian package installs on Debian 12 and ships what an admin expects: the tool
# in /usr/sbin, its man pages, a bash completion that offers commands and stack names, the
# audit units (disabled), and journal records that carry the stack as a field.
step "build the package (scripts/package-deb) and install it with dpkg -i"
deb=$("$SUITE/../scripts/package-deb" | tail -n 1)
[ -f "$deb" ] || fail "scripts/package-deb made no .deb"
# /tmp in the container is its own tmpfs: hand the package over through /root.
cp "$deb" "$CT_ROOT/root/isolate.deb"
# Only the packaged binary may answer below: drop the suite's copy in /usr/local/bin.
rm -f "$CT_ROOT/usr/local/bin/isolate"
rmdir "$CT_ROOT/etc/isolate"
in_ct dpkg -i /root/isolate.deb
assert_eq "install ok installed" "$(in_ct dpkg-query -W -f='${Status}' isolate)" "dpkg status"
assert_eq /usr/sbin/isolate "$(in_ct bash -c 'command -v isolate')" "isolate on PATH"
[ -d "$CT_ROOT/etc/isolate" ] || fail "the package made no /etc/isolate"
[ -f "$CT_ROOT/usr/share/doc/isolate/examples/homelab.toml" ] || fail "no example policy"

step "isolate --version"
version=$(in_ct isolate --version)
echo "$version"
[[ $version == "isolate "[0-9]* ]] || fail "isolate --version printed [$version]"

step "man -w isolate, isolate-policy(5)"
assert_eq /usr/share/man/man8/isolate.8.gz "$(in_ct man -w isolate)" "man -w isolate"
assert_eq /usr/share/man/man5/isolate-policy.5.gz "$(in_ct man -w 5 isolate-policy)" "man -w 5 isolate-policy"
in_ct env MANWIDTH=80 man -P cat 5 isolate-policy | grep -q "subid_size" ||
  fail "isolate-policy(5) does not describe subid_size"

step "the bash completion offers subcommands and the policy's stacks"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
migrate = "reown"

[stacks.db]
data = ["/srv/db"]
migrate = "reown"
TOML
mkdir -p "$CT_ROOT/srv/web" "$CT_ROOT/srv/db"
# complete(1) as bash-completion loads it: the completion is found by the command's name.
complete_words() {
  in_ct bash -c '
    source /usr/share/bash-completion/bash_completion
    _completion_loader isolate
    fn=$(complete -p isolate | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    "$fn" isolate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort' complete "$@"
}
subs=$(complete_words isolate "")
echo "$subs" | tr '\n' ' '
echo
for sub in plan apply status map rollback; do
  grep -qx "$sub" <<<"$subs" || fail "the completion does not offer $sub"
done
assert_eq "$(printf 'db\nweb')" "$(complete_words isolate apply --stack "")" "completion of --stack"

step "the audit units are installed and disabled"
assert_eq disabled "$(in_ct systemctl is-enabled isolate-audit.timer || true)" "isolate-audit.timer enabled?"
assert_eq inactive "$(in_ct systemctl is-active isolate-audit.timer || true)" "isolate-audit.timer active?"
assert_eq loaded "$(system_unit_prop isolate-audit.service LoadState)" "isolate-audit.service LoadState"

step "systemctl start isolate-audit.service"
prom=/var/lib/prometheus/node-exporter/isolate.prom
rc=0
in_ct systemctl start isolate-audit.service || rc=$?
in_ct journalctl --sync
in_ct journalctl -u isolate-audit.service --no-pager -o cat | tail -n 20
[ -n "$(system_unit_prop isolate-audit.service ExecMainStartTimestampMonotonic | grep -v '^0$')" ] ||
  fail "isolate-audit.service never ran its command"
if in_ct isolate audit --help >/dev/null 2>&1; then
  [ "$rc" = 0 ] || fail "isolate-audit.service failed"
  [ -s "$CT_ROOT$prom" ] || fail "isolate-audit.service wrote no $prom"
  grep -q '^isolate_' "$CT_ROOT$prom" || fail "$prom holds no isolate_ metric"
else
  # `isolate audit` is built on another branch: until it is merged the unit's command exits 2.
  echo "(this build has no 'isolate audit' yet: the unit ran and its command refused)"
  assert_eq 2 "$(system_unit_prop isolate-audit.service ExecMainStatus)" "audit's exit status"
fi

step "journal records of a unit carry ISOLATE_STACK"
in_ct systemd-run --wait --collect --quiet --unit=isolate-status-probe /usr/sbin/isolate status >/dev/null
in_ct journalctl --sync
in_ct journalctl -u isolate-status-probe.service -o json --no-pager >"$ISO_OUT"
python3 - "$ISO_OUT" <<'EOF' || fail "no journal record of isolate status carries ISOLATE_STACK=web and db"
import json, sys
stacks = set()
for line in open(sys.argv[1]):
    rec = json.loads(line)
    if rec.get("SYSLOG_IDENTIFIER") == "isolate" and "ISOLATE_STACK" in rec:
        print(rec["ISOLATE_STACK"], "|", rec.get("MESSAGE"))
        stacks.add(rec["ISOLATE_STACK"])
sys.exit(0 if {"web", "db"} <= stacks else 1)
EOF

step "dpkg -r removes the tool; the policy stays"
in_ct dpkg -r isolate
[ ! -e "$CT_ROOT/usr/sbin/isolate" ] || fail "/usr/sbin/isolate is still there after dpkg -r"
[ -f "$CT_ROOT/etc/isolate/policy.toml" ] || fail "dpkg -r removed the admin's policy"
