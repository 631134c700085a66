# Booting and stopping one nspawn container of the suite; sourced by scripts/integration and by
# lib.sh (a scenario may reboot its container). State: NSPAWN_PID, CT_PID, and ROOT.pids on disk.

# Long steps run in the background and are waited for: bash runs an INT/TERM trap at once
# while in `wait`, but not after a foreground child that caught the signal itself (podman,
# systemctl and nsenter do), so Ctrl-C would otherwise go on to the next scenario.
# `bg --out FILE CMD...` sends CMD's output to FILE (a redirection on the call itself would
# also catch what a trap prints).
BG_PID=""
bg() {
  local rc=0
  if [ "$1" = --out ]; then
    local out=$2
    shift 2
    "$@" >"$out" 2>&1 &
  else
    "$@" &
  fi
  BG_PID=$!
  wait "$BG_PID" || rc=$?
  BG_PID=""
  return "$rc"
}

# ct_start ROOT LOG: boots ROOT (already populated) and waits for systemd to be up. Sets
# NSPAWN_PID and CT_PID (the container's init) and writes them to ROOT.pids, so whoever tears
# down finds the container even if a scenario rebooted it.
# --console=read-only: the console's output goes to the boot log. With `passive`, systemd 257
# (Debian 13) on this VM's cgroup v1 hangs a reboot with user managers running: it waits out 90 s
# stop jobs while its status spinner fills a console nobody reads.
# --private-network: the container has its own loopback only, so ports that stacks publish in
# two containers at once (releases in parallel, parallel runs) never meet, nor the host's.
ct_start() {
  local root=$1 boot_log=$2
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 setsid systemd-nspawn -q -D "$root" -b \
    --register=no --keep-unit --console=read-only --bind=/dev/fuse --private-network \
    --machine="it-$(basename "$root")" </dev/null >>"$boot_log" 2>&1 &
  NSPAWN_PID=$! CT_PID=""
  echo "$NSPAWN_PID" >"$root.pids"
  # The container's init is the nspawn child running systemd (an intermediate child comes and
  # goes first); it is ready to be asked once its private socket exists.
  local child deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ] && kill -0 "$NSPAWN_PID" 2>/dev/null; do
    for child in $(pgrep -P "$NSPAWN_PID" || true); do
      if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] &&
        nsenter -t "$child" -a test -S /run/systemd/private 2>/dev/null; then
        CT_PID=$child
      fi
    done
    [ -n "$CT_PID" ] && break
    bg sleep 0.1
  done
  if [ -z "$CT_PID" ]; then
    echo "systemd-nspawn did not start a container:" >&2
    cat "$boot_log" >&2
    return 1
  fi
  echo "$NSPAWN_PID $CT_PID" >"$root.pids"
  local state
  bg --out "$root.state" timeout 90 nsenter -t "$CT_PID" -a systemctl is-system-running --wait || true
  state=$(cat "$root.state")
  rm -f "$root.state"
  if [ "$state" != running ]; then
    echo "container is '$state', not running; failed units:" >&2
    timeout 10 nsenter -t "$CT_PID" -a systemctl --failed --no-pager >&2 || true
    [ "$state" = degraded ] || return 1
  fi
}

# Waits up to TENTHS/10 seconds for process PID to be gone.
ct_wait_gone() {
  local pid=$1 tenths=$2 i
  for ((i = 0; i < tenths; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$pid" 2>/dev/null
}

# ct_stop ROOT: stops the container booted from ROOT. A clean poweroff gets 3 s; a copy that is
# thrown away needs no more (user managers with running containers take far longer to stop),
# so then its init is killed, which ends every process of its PID namespace, and nspawn exits.
ct_stop() {
  local root=$1 nspawn="" init=""
  [ -f "$root.pids" ] && read -r nspawn init <"$root.pids"
  rm -f "$root.pids"
  [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null || return 0
  if [ -n "$init" ] && timeout 5 nsenter -t "$init" -a systemctl poweroff --no-block >/dev/null 2>&1; then
    ct_wait_gone "$nspawn" 30 && return 0
  fi
  [ -n "$init" ] && kill -KILL "$init" 2>/dev/null || true
  ct_wait_gone "$nspawn" 50 && return 0
  # nspawn runs in its own session (setsid): its process group holds nothing else of ours.
  kill -KILL -- "-$nspawn" 2>/dev/null || kill -KILL "$nspawn" 2>/dev/null || true
  ct_wait_gone "$nspawn" 50 || true
}

# ct_reboot ROOT: a real reboot (nspawn exits on reboot, so it is booted again on the same
# files). Sets NSPAWN_PID and CT_PID anew. Going down gets 300 s: on Debian 13 (systemd 257 on
# this VM's cgroup v1) scenario 90's reboot with a compose unit running took 11 s in one run and
# 121 s (a 90 s stop job) in another. A reboot slower than 30 s prints the console's stop-job
# lines (the boot log: read-only console), so the waiting unit is named.
ct_reboot() {
  local root=$1 nspawn="" init="" t0=$SECONDS
  read -r nspawn init <"$root.pids"
  timeout 10 nsenter -t "$init" -a systemctl reboot --no-block
  if ! ct_wait_gone "$nspawn" 3000; then
    echo "container did not go down for the reboot within 300 s; its console:" >&2
    tail -n 40 "$root.boot.log" | tr -d '\r' | sed 's/^/  console| /' >&2
    return 1
  fi
  echo "container went down for the reboot in $((SECONDS - t0)) s" >&2
  if [ $((SECONDS - t0)) -gt 30 ]; then
    grep -a -i -E 'stop job|timed out|killing|still around' "$root.boot.log" | tr -d '\r' |
      sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | tail -n 15 | sed 's/^/  console| /' >&2 || true
  fi
  ct_start "$root" "$root.boot.log"
}
