# Issue 17 item 5: a legacy-user process already inside the data (a shell sitting in it, a
# process holding a file open there) would keep its access after the migration and the
# closing of the top, and every process of its uid would reach the files through
# /proc/PID/cwd and /proc/PID/fd. apply refuses (exit 2) naming each process, changes nothing,
# and goes ahead once they are gone.
legacy=alice
step "legacy user $legacy; a shell of theirs sits in /srv/app/data, another holds a file there open"
setup_legacy_user "$legacy"
in_ct runuser -u "$legacy" -- sh -c 'mkdir -p /srv/app/data/sub && echo secret >/srv/app/data/sub/f'
in_ct_sh "setsid runuser -u $legacy -- sh -c 'cd /srv/app/data && exec sleep 600' </dev/null >/dev/null 2>&1 &"
in_ct_sh "setsid runuser -u $legacy -- sh -c 'cd / && exec sleep 601 3</srv/app/data/sub/f' </dev/null >/dev/null 2>&1 &"
# pid_running CMDLINE: the pid (in the container) of the process whose command line is CMDLINE
# (no pgrep in the rootfs).
pid_running() {
  in_ct_sh "for p in /proc/[0-9]*; do [ \"\$(tr '\\0' ' ' <\$p/cmdline 2>/dev/null)\" = '$1 ' ] && echo \${p#/proc/}; done; true"
}
for _ in $(seq 50); do
  in_cwd=$(pid_running 'sleep 600') with_fd=$(pid_running 'sleep 601')
  [ -n "$in_cwd" ] && [ -n "$with_fd" ] && break
  sleep 0.2
done
[ -n "$in_cwd" ] || fail "the shell in the data did not start"
[ -n "$with_fd" ] || fail "the file holder did not start"
uid=$(uid_of "$legacy")
printf 'in the data: pid %s (cwd %s), pid %s (fd 3 %s)\n' "$in_cwd" \
  "$(in_ct readlink "/proc/$in_cwd/cwd")" "$with_fd" "$(in_ct readlink "/proc/$with_fd/fd/3")"
write_shift_policy "$legacy"
host_before=$(host_listing /srv/app)
accounts_before=$(host_fingerprint)

step "plan and apply --stack app refuse, naming both processes"
for cmd in plan apply; do
  run_isolate "$cmd" --stack app
  assert_eq 2 "$ISO_RC" "exit status of $cmd with processes inside the data"
  grep -qF "pid $in_cwd (sleep, uid $uid $legacy): working directory" "$ISO_ERR" ||
    fail "$cmd does not name the shell sitting in the data"
  grep -qF "pid $with_fd (sleep, uid $uid $legacy): open file 3" "$ISO_ERR" ||
    fail "$cmd does not name the process holding a file in the data"
done
assert_eq "$host_before" "$(host_listing /srv/app)" "owners under /srv/app after the refusal"
assert_eq "$accounts_before" "$(host_fingerprint)" "accounts and state after the refusal"

step "the shell leaves: still refused for the open file"
in_ct_sh "kill $in_cwd"
wait_for 10 sh -c "! nsenter -t $CT_PID -a test -e /proc/$in_cwd" || fail "pid $in_cwd did not end"
run_isolate apply --stack app
assert_eq 2 "$ISO_RC" "exit status of apply with a file still held open inside"
grep -qF "pid $in_cwd " "$ISO_ERR" && fail "the ended shell is still named"
grep -qF "pid $with_fd (sleep, uid $uid $legacy): open file 3" "$ISO_ERR" ||
  fail "apply does not name the process holding a file in the data"

step "both gone: apply migrates and closes"
in_ct_sh "kill $with_fd"
wait_for 10 sh -c "! nsenter -t $CT_PID -a test -e /proc/$with_fd" || fail "pid $with_fd did not end"
isolate_ok apply --stack app
[ "$host_before" != "$(host_listing /srv/app)" ] || fail "nothing was migrated after the processes ended"
# Closed now: the legacy user can no longer enter.
if in_ct runuser -u "$legacy" -- sh -c 'cd /srv/app/data' 2>/dev/null; then
  fail "$legacy still enters /srv/app/data after the migration"
fi
