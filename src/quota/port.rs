//! What the disk budget asks of the kernel, as a trait so that plan and apply are tested with a
//! recording fake (`fake.rs`) and only the CLI and the root tests pass the real one
//! (`host::quota`).
use super::error::QuotaError;
use std::path::Path;

/// The filesystem a tree is on, from `statfs`'s magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filesystem {
    Btrfs,
    Ext4,
    Xfs,
    Tmpfs,
    Other(i64),
}

impl Filesystem {
    pub fn from_magic(magic: i64) -> Filesystem {
        match magic {
            0x9123_683e => Filesystem::Btrfs,
            0xef53 => Filesystem::Ext4,
            0x5846_5342 => Filesystem::Xfs,
            0x0102_1994 => Filesystem::Tmpfs,
            m => Filesystem::Other(m),
        }
    }

    pub fn name(self) -> String {
        match self {
            Filesystem::Btrfs => "btrfs".into(),
            Filesystem::Ext4 => "ext4".into(),
            Filesystem::Xfs => "xfs".into(),
            Filesystem::Tmpfs => "tmpfs".into(),
            Filesystem::Other(m) => format!("a filesystem of type {m:#x}"),
        }
    }
}

/// Whether project quotas (ext4, xfs) can act on the filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectQuota {
    /// The kernel has no quota support for the filesystem (no `quotactl`, or no quota format).
    NoKernelSupport,
    /// The kernel could, but project quota is not on for this filesystem (ext4 without the
    /// `project,quota` features, xfs not mounted with `pquota`).
    Off,
    /// Project quota accounting and enforcement are on.
    On,
}

/// What a btrfs tree offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtrfsFacts {
    /// The subvolume holding the path.
    pub subvolume: u64,
    /// The path is that subvolume's top (inode 256): its qgroup holds exactly this tree.
    pub is_subvolume_top: bool,
    /// Quotas (qgroups) are enabled on the filesystem.
    pub quota_enabled: bool,
    /// The referenced-bytes limit on the subvolume's qgroup 0/SUBVOLUME, if any.
    pub limit: Option<u64>,
    /// Bytes the subvolume references now.
    pub referenced: u64,
}

/// What one data tree's top is, for the disk budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeFacts {
    pub filesystem: Filesystem,
    pub dev: u64,
    pub ino: u64,
    /// Set on btrfs only.
    pub btrfs: Option<BtrfsFacts>,
    /// Set on ext4 and xfs only.
    pub project: Option<ProjectQuota>,
}

/// The kernel calls of the disk budget. Paths are host paths of directories; implementations
/// never follow a symlink at the last component.
pub trait QuotaPort {
    /// The facts of a directory; None when nothing is there.
    fn look(&self, path: &Path) -> Result<Option<TreeFacts>, QuotaError>;
    /// Sets (`Some`) or lifts (`None`) the referenced limit of the btrfs subvolume whose top
    /// is `path`, after checking it is still the subvolume `subvolume` on device `dev`.
    fn btrfs_limit(
        &self,
        path: &Path,
        dev: u64,
        subvolume: u64,
        bytes: Option<u64>,
    ) -> Result<(), QuotaError>;
}
