# Issue 22: disk_max on a btrfs subvolume holds a real rootless container of the stack at the
# limit ("Disk quota exceeded"), while another stack's container on the same filesystem writes
# on; a second apply does nothing; removing the key and rollback lift it. The container has no
# loop devices of its own and no btrfs-progs: the image is made and prepared (quotas on, one
# subvolume per stack) on the host in a private mount namespace, then mounted inside the
# container with `mount -o loop` (autoclear: the loop device goes with the container's mount).
step "a btrfs image with quotas on and subvolumes app and other (made on the host)"
img="$CT_ROOT/var/tmp/isolate-disk.img"
truncate -s 512M "$img"
mkfs.btrfs -q "$img"
uuid=$(blkid -s UUID -o value "$img")
prep=$(mktemp -d)
unshare --mount --propagation private sh -ec "
  mount -o loop '$img' '$prep'
  btrfs quota enable '$prep'
  btrfs -q subvolume create '$prep/app'
  btrfs -q subvolume create '$prep/other'
  umount '$prep'"
rmdir "$prep"

step "mounted inside the container at /srv/q (loop nodes made in its own /dev)"
in_ct_sh '[ -e /dev/loop-control ] || mknod /dev/loop-control c 10 237
  for n in $(seq 0 63); do [ -e /dev/loop$n ] || mknod /dev/loop$n b 7 $n; done
  mkdir -p /srv/q && mount -o loop /var/tmp/isolate-disk.img /srv/q'
in_ct findmnt -n -o FSTYPE /srv/q | grep -qx btrfs || fail "/srv/q is not the btrfs image"
limit_flags() { in_ct cat "/sys/fs/btrfs/$uuid/qgroups/0_256/limit_flags"; }

step "apply: app gets disk_max 32M, other none"
policy() {
  write_policy /etc/isolate/policy.toml <<TOML
[stacks.app]
data = ["/srv/q/app"]
migrate = "reown"
$1
[stacks.other]
data = ["/srv/q/other"]
migrate = "reown"
TOML
}
policy $'[stacks.app.limits]\ndisk_max = "32M"'
isolate_ok apply
grep -qF '+ disk_max 32M for app: btrfs qgroup 0/256 of /srv/q/app limited to 33554432 bytes referenced' "$ISO_OUT" ||
  fail "apply did not set the limit"
[ $(( $(limit_flags) & 1 )) = 1 ] || fail "qgroup 0/256 has no referenced limit"

step "a rootless container of stk-app stops at the limit; one of stk-other writes on"
import_busybox stk-app
import_busybox stk-other
write64() { # USER DIR
  as_user "$1" podman run --rm --network none -v "$2:/data" localhost/busybox \
    dd if=/dev/zero of=/data/big bs=1048576 count=64 2>&1
}
if out=$(write64 stk-app /srv/q/app); then
  fail "stk-app wrote 64M past its 32M budget: $out"
fi
printf '%s\n' "$out"
grep -q 'Disk quota exceeded' <<<"$out" || fail "stk-app failed, but not with EDQUOT: $out"
out=$(write64 stk-other /srv/q/other) || fail "stk-other could not write 64M: $out"

step "a second apply does nothing"
isolate_ok apply
assert_eq "nothing to do: the host matches the policy" "$(cat "$ISO_OUT")" "second apply"

step "the key removed: the limit goes and stk-app writes 64M"
policy ""
isolate_ok apply
grep -qF -- '- disk_max 32M for app: btrfs qgroup 0/256 of /srv/q/app no longer limited' "$ISO_OUT" ||
  fail "apply did not take the limit back"
[ $(( $(limit_flags) & 1 )) = 0 ] || fail "qgroup 0/256 still limited"
in_ct rm -f /srv/q/app/big
out=$(write64 stk-app /srv/q/app) || fail "stk-app could not write 64M without a budget: $out"

step "set again, then rollback --stack app lifts it"
policy $'[stacks.app.limits]\ndisk_max = "32M"'
isolate_ok apply
[ $(( $(limit_flags) & 1 )) = 1 ] || fail "qgroup 0/256 not limited again"
isolate_ok rollback --stack app
[ $(( $(limit_flags) & 1 )) = 0 ] || fail "rollback left the limit"
in_ct umount /srv/q
