#!/usr/bin/env bash
# Builds (once, then caches) the VM the VM suite boots: the suite's cached Debian 13 rootfs plus a
# kernel, udev and kmod, as an ext4 image with the kernel and initrd beside it. The VM exists
# because limits (memory.max, pids.max, cpu.weight) act only on a cgroup v2 host with systemd
# delegating controllers, which the nspawn containers on a cgroup v1 machine cannot be.
#
#   integration/vm/build-image.sh      prints the image's directory last
#
# The directory holds root.raw (ext4, booted through a copy-on-write overlay per run), vmlinuz,
# initrd.img and .complete. Bump `version` when what is installed below changes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${ISOLATE_IT_CACHE:-/var/cache/isolate-it}
version=v4
log() { printf 'vm-image: %s\n' "$*" >&2; }

rootfs=$("$repo/scripts/build-rootfs" trixie | tail -n 1)
[ -f "$rootfs/.complete" ] || { log "no complete trixie rootfs at $rootfs"; exit 1; }
# The image follows its rootfs: a new rootfs stamp makes a new image.
image="$cache/vm-$(basename "$rootfs")-$version"
if [ -f "$image/.complete" ]; then
  echo "$image"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/vmbuild.XXXXXX")
cleanup() {
  umount -l "$work/root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

log "copying $rootfs"
cp -a --reflink=auto "$rootfs" "$work/root"
rm -f "$work/root/.complete"

# A kernel and what a real boot needs that a container does not: udev (devices, module
# autoloading) and kmod (modprobe); initramfs-tools builds the initrd with virtio and ext4.
log "installing a kernel in the copy"
# A small initrd: emulated (TCG) boots spend seconds per megabyte unpacking it. It needs only
# the disk (virtio) and its filesystem; everything else loads from the root filesystem.
mkdir -p "$work/root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' >"$work/root/etc/initramfs-tools/conf.d/isolate-vm.conf"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$work/root/etc/initramfs-tools/modules"
mount -t proc proc "$work/root/proc"
chroot "$work/root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c '
  set -e
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends linux-image-amd64 initramfs-tools udev kmod
  apt-get clean
' >&2
umount "$work/root/proc"

kernel=$(cd "$work/root/boot" && ls vmlinuz-* | sort -V | tail -n 1)
initrd="initrd.img-${kernel#vmlinuz-}"
[ -f "$work/root/boot/$initrd" ] || { log "no $initrd was built"; exit 1; }

# The guest side of the harness: at boot, mount the run's 9p share and run its guest-run.sh,
# which writes the scenario's log and exit code there and powers the VM off.
units="$work/root/etc/systemd/system"
install -m 0644 "$repo/integration/vm/isolate-vm-run.service" "$units/isolate-vm-run.service"
mkdir -p "$units/multi-user.target.wants"
ln -sf ../isolate-vm-run.service "$units/multi-user.target.wants/isolate-vm-run.service"
# Nobody logs in on the serial console: it only carries the kernel's and the scenario's output.
ln -sf /dev/null "$units/serial-getty@ttyS0.service"
# The kernel mounts the root read-write (root=/dev/vda rw): no fstab entry, so the boot waits for
# no device unit. Timers and mounts no scenario uses are masked: under emulation every unit costs
# seconds. The journal stays in memory (guest-run.sh copies it to the share).
printf '# root: mounted by the kernel (root=/dev/vda rw)\n' >"$work/root/etc/fstab"
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer man-db.timer \
  e2scrub_all.timer e2scrub_reap.service dev-hugepages.mount sys-kernel-debug.mount \
  sys-kernel-tracing.mount systemd-pstore.service netavark-dhcp-proxy.socket \
  netavark-dhcp-proxy.service modprobe@drm.service systemd-journal-flush.service; do
  ln -sf /dev/null "$units/$unit"
done
mkdir -p "$work/root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$work/root/etc/systemd/journald.conf.d/isolate-vm.conf"
mkdir -p "$work/root/mnt/it"

mkdir -p "$work/image"
cp "$work/root/boot/$kernel" "$work/image/vmlinuz"
cp "$work/root/boot/$initrd" "$work/image/initrd.img"
log "making the ext4 image"
mkfs.ext4 -q -L isolate-vm -d "$work/root" "$work/image/root.raw" 6G
touch "$work/image/.complete"
rm -rf "$image"
mv "$work/image" "$image"
echo "$image"
