//! The kernel calls behind the disk budget (`quota`): which filesystem a directory is on,
//! btrfs subvolume ids and qgroup limits (ioctls on the directory, limits read from
//! /sys/fs/btrfs/FSID/qgroups), and whether project quotas can act on ext4/xfs (`quotactl_fd`,
//! and the kernel's own config where it offers one). Directories are opened without following
//! a symlink at the last component.
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A btrfs subvolume's top is always this inode (BTRFS_FIRST_FREE_OBJECTID).
pub const BTRFS_SUBVOLUME_TOP_INO: u64 = 256;

const BTRFS_IOC_INO_LOOKUP: libc::c_ulong = 0xd000_9412;
const BTRFS_IOC_FS_INFO: libc::c_ulong = 0x8400_941f;
const BTRFS_IOC_QGROUP_LIMIT: libc::c_ulong = 0x8030_942b;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1;
/// What `btrfs qgroup limit none` sends: the kernel clears the limit.
const BTRFS_QGROUP_LIMIT_CLEAR: u64 = u64::MAX;

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 1024 - 32],
}

#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

/// A directory opened for the calls below (never through a symlink at its last component);
/// None when nothing is there.
pub fn open_dir(path: &Path) -> io::Result<Option<File>> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Device and inode of an open file.
pub fn identity(dir: &File) -> io::Result<(u64, u64)> {
    let m = dir.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// `statfs`'s magic number of the filesystem holding `dir`.
pub fn filesystem_magic(dir: &File) -> io::Result<i64> {
    // SAFETY: fstatfs writes into the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64)
}

/// The id of the btrfs subvolume holding `dir`.
pub fn btrfs_subvolume(dir: &File) -> io::Result<u64> {
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: BTRFS_SUBVOLUME_TOP_INO,
        name: [0; 4080],
    };
    // SAFETY: the ioctl reads and writes the struct we own, of the size its number encodes.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_INO_LOOKUP, &mut args) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(args.treeid)
}

/// The id (fsid) of the btrfs filesystem holding `dir`.
pub fn btrfs_fsid(dir: &File) -> io::Result<[u8; 16]> {
    let mut args = FsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        rest: [0; 1024 - 32],
    };
    // SAFETY: as above.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_FS_INFO, &mut args) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(args.fsid)
}

/// The sysfs directory of the btrfs filesystem holding `dir`.
fn btrfs_sysfs(dir: &File) -> io::Result<PathBuf> {
    let h: String = btrfs_fsid(dir)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    Ok(PathBuf::from("/sys/fs/btrfs").join(uuid))
}

/// What sysfs shows of qgroup 0/SUBVOLUME.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qgroup {
    /// Qgroups are enabled on the filesystem.
    pub enabled: bool,
    /// The referenced limit (None: no limit).
    pub limit: Option<u64>,
    /// Bytes referenced now.
    pub referenced: u64,
}

/// Whether qgroups are enabled on the filesystem of `dir`, and the referenced limit and usage
/// of qgroup 0/`subvolume`.
pub fn btrfs_qgroup(dir: &File, subvolume: u64) -> io::Result<Qgroup> {
    let qgroups = btrfs_sysfs(dir)?.join("qgroups");
    if !qgroups.is_dir() {
        return Ok(Qgroup::default());
    }
    let group = qgroups.join(format!("0_{subvolume}"));
    let read = |name: &str| -> io::Result<u64> {
        let p = group.join(name);
        let text = std::fs::read_to_string(&p)?;
        let t = text.trim();
        let n = match t.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse(),
        };
        n.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display())))
    };
    let enabled = Qgroup {
        enabled: true,
        ..Qgroup::default()
    };
    match read("limit_flags") {
        Ok(flags) => Ok(Qgroup {
            limit: (flags & BTRFS_QGROUP_LIMIT_MAX_RFER != 0)
                .then(|| read("max_referenced"))
                .transpose()?,
            referenced: read("referenced")?,
            ..enabled
        }),
        // A subvolume whose qgroup is not there (yet): no limit.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(enabled),
        Err(e) => Err(e),
    }
}

/// Sets (`Some`) or clears (`None`) the referenced limit of qgroup 0/`subvolume` on the
/// filesystem holding `dir`. Through a descriptor inside that subvolume the kernel refuses
/// any change (even lifting it) with EDQUOT once the subvolume is over its limit; through one
/// in another subvolume of the filesystem it does not.
pub fn btrfs_set_limit(dir: &File, subvolume: u64, bytes: Option<u64>) -> io::Result<()> {
    let mut args = QgroupLimitArgs {
        qgroupid: subvolume,
        flags: BTRFS_QGROUP_LIMIT_MAX_RFER,
        max_rfer: bytes.unwrap_or(BTRFS_QGROUP_LIMIT_CLEAR),
        max_excl: 0,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_QGROUP_LIMIT, &mut args) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What `quotactl_fd(Q_GETINFO, PRJQUOTA)` says of the filesystem holding `dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectQuotaCall {
    /// The call worked: project quota is on.
    On,
    /// No quota call for this filesystem in this kernel (ENOSYS, EOPNOTSUPP).
    NoCall,
    /// The kernel has the call, project quota is not on (ESRCH and the like).
    NotOn,
}

pub fn project_quota(dir: &File) -> io::Result<ProjectQuotaCall> {
    const Q_GETINFO: u32 = 0x80_0005;
    const PRJQUOTA: u32 = 2;
    let mut info = [0u64; 3];
    // SAFETY: quotactl_fd writes a struct if_dqinfo (24 bytes) into the buffer we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            dir.as_raw_fd(),
            (Q_GETINFO << 8) | PRJQUOTA,
            0,
            info.as_mut_ptr(),
        )
    };
    if rc == 0 {
        return Ok(ProjectQuotaCall::On);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(ProjectQuotaCall::NoCall),
        Some(libc::ESRCH) | Some(libc::ENOENT) | Some(libc::EINVAL) => Ok(ProjectQuotaCall::NotOn),
        _ => Err(e),
    }
}

/// Whether the running kernel's own config (/proc/config.gz, where it offers one) says it has
/// no quota format for ext4 (`CONFIG_QFMT_V2` not set); false when it cannot tell.
pub fn kernel_lacks_ext4_quota_format() -> bool {
    let Ok(out) = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
    else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "# CONFIG_QFMT_V2 is not set")
}
