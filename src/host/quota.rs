//! The kernel calls behind the disk budget (`quota`): which filesystem a directory is on,
//! btrfs subvolume ids and qgroup limits (ioctls on the directory; limits read from the
//! filesystem's own quota tree, not /sys/fs/btrfs, which a container does not show), and
//! whether project quotas can act on ext4/xfs (`quotactl_fd`, and the kernel's own config
//! where it offers one). Directories are opened without following a symlink at the last
//! component.
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

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

const BTRFS_IOC_TREE_SEARCH: libc::c_ulong = 0xd000_9411;
const BTRFS_QUOTA_TREE_OBJECTID: u64 = 8;
const BTRFS_QGROUP_STATUS_KEY: u32 = 240;
const BTRFS_QGROUP_INFO_KEY: u32 = 242;
const BTRFS_QGROUP_LIMIT_KEY: u32 = 244;
const BTRFS_QGROUP_STATUS_FLAG_ON: u64 = 1;

#[repr(C)]
struct SearchArgs {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: [u64; 4],
    buf: [u8; 4096 - 104],
}

/// The item of the quota tree at key (0, `kind`, `offset`), read with BTRFS_IOC_TREE_SEARCH
/// (the filesystem's own record, not sysfs, which a container may not show); None when the
/// filesystem has no quota tree (quotas off) or no such item.
fn quota_item(dir: &File, kind: u32, offset: u64) -> io::Result<Option<Vec<u8>>> {
    let mut args = SearchArgs {
        tree_id: BTRFS_QUOTA_TREE_OBJECTID,
        min_objectid: 0,
        max_objectid: 0,
        min_offset: offset,
        max_offset: offset,
        min_transid: 0,
        max_transid: u64::MAX,
        min_type: kind,
        max_type: kind,
        nr_items: 1,
        unused: 0,
        unused1: [0; 4],
        buf: [0; 4096 - 104],
    };
    // SAFETY: as above (the struct is the 4096 bytes the ioctl number encodes).
    if unsafe { libc::ioctl(dir.as_raw_fd(), BTRFS_IOC_TREE_SEARCH, &mut args) } != 0 {
        let e = io::Error::last_os_error();
        // No quota tree: quotas were never enabled, or were disabled.
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(e);
    }
    if args.nr_items == 0 {
        return Ok(None);
    }
    // One search header (transid, objectid, offset: u64; type, len: u32), then the item.
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let (found_offset, found_type, len) = (
        u64_at(&args.buf, 16),
        u32_at(&args.buf, 24),
        u32_at(&args.buf, 28) as usize,
    );
    if found_type != kind || found_offset != offset || 32 + len > args.buf.len() {
        return Ok(None);
    }
    Ok(Some(args.buf[32..32 + len].to_vec()))
}

/// What the quota tree holds of qgroup 0/SUBVOLUME.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qgroup {
    /// Qgroups are enabled on the filesystem.
    pub enabled: bool,
    /// The referenced limit (None: no limit).
    pub limit: Option<u64>,
    /// Bytes referenced (as of the last commit).
    pub referenced: u64,
}

/// Whether qgroups are enabled on the filesystem of `dir`, and the referenced limit and usage
/// of qgroup 0/`subvolume`.
pub fn btrfs_qgroup(dir: &File, subvolume: u64) -> io::Result<Qgroup> {
    let word = |item: &[u8], n: usize| {
        item.get(n * 8..n * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    };
    let Some(status) = quota_item(dir, BTRFS_QGROUP_STATUS_KEY, 0)? else {
        return Ok(Qgroup::default());
    };
    // btrfs_qgroup_status_item: version, generation, flags, rescan.
    if word(&status, 2) & BTRFS_QGROUP_STATUS_FLAG_ON == 0 {
        return Ok(Qgroup::default());
    }
    // btrfs_qgroup_limit_item: flags, max_rfer, max_excl, rsv_rfer, rsv_excl.
    let limit = quota_item(dir, BTRFS_QGROUP_LIMIT_KEY, subvolume)?
        .filter(|l| word(l, 0) & BTRFS_QGROUP_LIMIT_MAX_RFER != 0)
        .map(|l| word(&l, 1));
    // btrfs_qgroup_info_item: generation, rfer, rfer_cmpr, excl, excl_cmpr.
    let referenced = quota_item(dir, BTRFS_QGROUP_INFO_KEY, subvolume)?
        .map(|i| word(&i, 1))
        .unwrap_or(0);
    Ok(Qgroup {
        enabled: true,
        limit,
        referenced,
    })
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
