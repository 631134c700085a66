# Issue 13: the Debian package installs on Debian 12 and ships what an admin expects: the tool
# in /usr/sbin, its man pages, a bash completion that offers commands and stack names, the
# audit and usage units (disabled), the Grafana dashboard, and journal records that carry the stack as a field.
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

step "systemctl start isolate-audit.service writes the metrics; its records carry the stack"
prom=/var/lib/prometheus/node-exporter/isolate.prom
[ ! -e "$CT_ROOT$prom" ] || fail "$prom exists before the audit ran"
# journal_mark: a whole second after every record so far, so `--since @MARK` shows only newer
# ones (journalctl 252 drops the first record after --after-cursor: a cursor is not enough).
journal_mark() {
  sleep 1
  in_ct date +%s
}
mark=$(journal_mark)
in_ct systemctl start isolate-audit.service
assert_eq success "$(system_unit_prop isolate-audit.service Result)" "isolate-audit.service Result"
[ -s "$CT_ROOT$prom" ] || fail "isolate-audit.service wrote no $prom"
grep -E '^isolate_audit_(worst_severity|last_completion_timestamp_seconds) ' "$CT_ROOT$prom" ||
  fail "$prom holds no isolate_audit_ summary metric"
# journal_stacks MARK: the ISOLATE_STACK values of isolate's records since MARK, one a line.
# Matched by SYSLOG_IDENTIFIER, which the record carries itself: journald attributes a native
# record to its unit (_SYSTEMD_UNIT, what `journalctl -u` matches) only while the sender
# still lives, and a short run like `status` has often exited by then.
journal_stacks() {
  in_ct journalctl --sync
  in_ct journalctl --since "@$1" -o json --no-pager >"$ISO_OUT"
  python3 - "$ISO_OUT" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    rec = json.loads(line)
    if rec.get("SYSLOG_IDENTIFIER") == "isolate" and rec.get("ISOLATE_STACK"):
        print(rec["ISOLATE_STACK"], "|", rec.get("MESSAGE"), file=sys.stderr)
        print(rec["ISOLATE_STACK"])
EOF
}
assert_eq "$(printf 'db\nweb')" "$(journal_stacks "$mark" | sort -u)" "ISOLATE_STACK of the audit's records"
grep -q '^isolate_usage_' "$CT_ROOT$prom" && fail "the hourly audit wrote the slices' families (--skip usage)"

step "the usage units (every minute, disabled) write their own file; the dashboard is installed"
assert_eq disabled "$(in_ct systemctl is-enabled isolate-usage.timer || true)" "isolate-usage.timer enabled?"
assert_eq 1min "$(system_unit_prop isolate-usage.timer TimersMonotonic | grep -o 'OnUnitActiveUSec=[^ ;]*' | cut -d= -f2)" \
  "isolate-usage.timer interval"
in_ct systemctl start isolate-usage.service
assert_eq success "$(system_unit_prop isolate-usage.service Result)" "isolate-usage.service Result"
usage_prom=/var/lib/prometheus/node-exporter/isolate-usage.prom
grep -q '^isolate_usage_last_read_timestamp_seconds ' "$CT_ROOT$usage_prom" ||
  fail "isolate-usage.service wrote no $usage_prom"
grep -q '^isolate_audit_' "$CT_ROOT$usage_prom" && fail "$usage_prom holds the audit's families"
python3 -m json.tool "$CT_ROOT/usr/share/isolate/grafana/isolate.json" >/dev/null ||
  fail "no valid dashboard at /usr/share/isolate/grafana/isolate.json"

step "journal records of isolate status, run as a unit, carry ISOLATE_STACK"
mark=$(journal_mark)
in_ct systemd-run --wait --collect --quiet --unit=isolate-status-probe /usr/sbin/isolate status >/dev/null
assert_eq "$(printf 'db\nweb')" "$(journal_stacks "$mark" | sort -u)" "ISOLATE_STACK of status's records"

step "dpkg -r removes the tool; the policy stays"
in_ct dpkg -r isolate
[ ! -e "$CT_ROOT/usr/sbin/isolate" ] || fail "/usr/sbin/isolate is still there after dpkg -r"
[ -f "$CT_ROOT/etc/isolate/policy.toml" ] || fail "dpkg -r removed the admin's policy"
