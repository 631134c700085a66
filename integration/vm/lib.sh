# Helpers for the VM scenarios (sourced inside the VM by guest-run.sh, with SUITE set): the
# booted suite's lib.sh, with the scenario running on the system it tests. CT_ROOT is empty, so
# "$CT_ROOT/etc/subuid" is the VM's own /etc/subuid, and in_ct runs a command right here; every
# helper of lib.sh (as_user, isolate_ok, assert_eq, wait_for, ...) works unchanged.
CT_ROOT="" CT_PID=""
source "$SUITE/lib.sh"

in_ct() { (cd / && env -i PATH="$CT_PATH" LANG=C.UTF-8 "$@"); }
reboot_ct() { fail "the VM suite does not reboot its VM (use the nspawn suite for reboots)"; }

# The cgroup directory of USER's slice (cgroup v2, unified), e.g. /sys/fs/cgroup/user.slice/user-990.slice.
user_slice_dir() { printf '/sys/fs/cgroup/user.slice/user-%s.slice\n' "$(uid_of "$1")"; }

# cgroup_key FILE KEY: the value of KEY in a flat keyed cgroup file (memory.events, cpu.stat).
cgroup_key() { awk -v k="$2" '$1 == k { print $2; found = 1 } END { exit !found }' "$1"; }

# A lingering user with a subordinate range, its user manager up and the busybox image imported:
# what a rootless stack needs, without isolate (the smoke scenario checks the VM itself with it).
setup_rootless_user() {
  local user=$1 start=$2 uid
  in_ct useradd --create-home --shell /bin/bash "$user"
  printf '%s:%s:65536\n' "$user" "$start" >>/etc/subuid
  printf '%s:%s:65536\n' "$user" "$start" >>/etc/subgid
  in_ct loginctl enable-linger "$user"
  uid=$(uid_of "$user")
  wait_for 30 test -S "/run/user/$uid/bus" || fail "user manager of $user did not come up"
  import_busybox "$user"
}

# apply_until_up: `isolate apply`, once more after the user managers are up when the first run
# timed out waiting for them. Under emulation (TCG, on a loaded machine) a user manager can take
# longer to start than the 30 s apply waits, and a daemon-reload longer than its D-Bus call;
# apply is resumable, so the second run goes on where the first stopped.
apply_until_up() {
  run_isolate apply
  [ "$ISO_RC" != 0 ] || return 0
  grep -q 'timed out' "$ISO_OUT" "$ISO_ERR" || fail "isolate apply exited $ISO_RC"
  step "apply timed out (emulated VM): waiting for the user managers, then apply again"
  local user
  for user in "$@"; do
    wait_for 300 systemctl is-active "user@$(uid_of "$user").service" || fail "user@ of $user never came up"
  done
  isolate_ok apply
}
