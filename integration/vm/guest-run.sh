# Runs inside the VM (started by isolate-vm-run.service from the 9p share at /mnt/it): installs
# the binaries of the run, runs the one scenario named in /mnt/it/scenario with the VM's lib.sh,
# and writes its output to /mnt/it/out/log and its exit code to /mnt/it/out/rc (written last:
# no rc file means the scenario never finished).
set -u
share=/mnt/it
out=$share/out
mkdir -p "$out"
# Seconds from the kernel's start until here: the boot time the host reports.
cut -d' ' -f1 /proc/uptime >"$out/booted-at"
scenario=$(cat "$share/scenario")
install -m 0755 "$share/bin/isolate" /usr/local/bin/isolate
install -m 0755 "$share/bin/systemd-probe" /usr/local/bin/systemd-probe
mkdir -p /etc/isolate
rc=0
cd / && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  HOME=/root SUITE="$share/suite" SCENARIO="$scenario" IT_RELEASE=trixie IT_VM=1 \
  bash -c 'set -euo pipefail; source "$SUITE/vm/lib.sh"; source "$SUITE/vm/$SCENARIO.sh"' \
  >"$out/log" 2>&1 </dev/null || rc=$?
cut -d' ' -f1 /proc/uptime >"$out/done-at"
# Where the boot's time went (printed with the log of a failed or verbose run).
{ systemd-analyze time; systemd-analyze blame | head -n 12; } >"$out/boot-times" 2>&1 || true
# The journal of the run, for a failed scenario's post-mortem.
journalctl -b --no-pager -o short-monotonic >"$out/journal" 2>&1 || true
echo "$rc" >"$out/rc.tmp"
mv "$out/rc.tmp" "$out/rc"
sync
