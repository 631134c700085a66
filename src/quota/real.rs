//! The quota port on the real kernel (`host::quota`): what the CLI and the root tests pass.
use super::error::QuotaError;
use super::port::{BtrfsFacts, Filesystem, ProjectQuota, QuotaPort, TreeFacts};
use crate::host::quota as sys;
use std::path::Path;

pub struct RealQuota;

fn sys_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> QuotaError + 'a {
    move |source| QuotaError::Sys {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl QuotaPort for RealQuota {
    fn look(&self, path: &Path) -> Result<Option<TreeFacts>, QuotaError> {
        let Some(dir) = sys::open_dir(path).map_err(sys_err("opening", path))? else {
            return Ok(None);
        };
        let (dev, ino) = sys::identity(&dir).map_err(sys_err("stat of", path))?;
        let magic = sys::filesystem_magic(&dir).map_err(sys_err("statfs of", path))?;
        let filesystem = Filesystem::from_magic(magic);
        let mut facts = TreeFacts {
            filesystem,
            dev,
            ino,
            btrfs: None,
            project: None,
        };
        match filesystem {
            Filesystem::Btrfs => {
                let subvolume =
                    sys::btrfs_subvolume(&dir).map_err(sys_err("btrfs subvolume of", path))?;
                let q =
                    sys::btrfs_qgroup(&dir, subvolume).map_err(sys_err("btrfs qgroup of", path))?;
                facts.btrfs = Some(BtrfsFacts {
                    subvolume,
                    is_subvolume_top: ino == sys::BTRFS_SUBVOLUME_TOP_INO,
                    quota_enabled: q.enabled,
                    limit: q.limit,
                    referenced: q.referenced,
                });
            }
            Filesystem::Ext4 | Filesystem::Xfs => {
                let call = sys::project_quota(&dir).map_err(sys_err("project quota of", path))?;
                facts.project = Some(match call {
                    sys::ProjectQuotaCall::On => ProjectQuota::On,
                    sys::ProjectQuotaCall::NoCall => ProjectQuota::NoKernelSupport,
                    sys::ProjectQuotaCall::NotOn
                        if filesystem == Filesystem::Ext4
                            && sys::kernel_lacks_ext4_quota_format() =>
                    {
                        ProjectQuota::NoKernelSupport
                    }
                    sys::ProjectQuotaCall::NotOn => ProjectQuota::Off,
                });
            }
            _ => {}
        }
        Ok(Some(facts))
    }

    fn btrfs_limit(
        &self,
        path: &Path,
        dev: u64,
        subvolume: u64,
        bytes: Option<u64>,
    ) -> Result<(), QuotaError> {
        let moved = || QuotaError::Moved {
            path: path.to_path_buf(),
            dev,
            subvolume,
        };
        let dir = sys::open_dir(path)
            .map_err(sys_err("opening", path))?
            .ok_or_else(moved)?;
        let (d, ino) = sys::identity(&dir).map_err(sys_err("stat of", path))?;
        let id = sys::btrfs_subvolume(&dir).map_err(sys_err("btrfs subvolume of", path))?;
        if d != dev || ino != sys::BTRFS_SUBVOLUME_TOP_INO || id != subvolume {
            return Err(moved());
        }
        // The kernel refuses a change through the subvolume itself once it is over its limit:
        // the call goes through the parent directory when that is on the same filesystem.
        let fsid = sys::btrfs_fsid(&dir).map_err(sys_err("btrfs filesystem of", path))?;
        let parent = path
            .parent()
            .map(sys::open_dir)
            .transpose()
            .map_err(sys_err("opening the parent of", path))?
            .flatten()
            .filter(|p| sys::btrfs_fsid(p).is_ok_and(|f| f == fsid));
        sys::btrfs_set_limit(parent.as_ref().unwrap_or(&dir), subvolume, bytes)
            .map_err(sys_err("btrfs qgroup limit of", path))
    }
}
