//! What apply changes the host through: one trait per effect family, so tests pass recording
//! fakes and only the CLI builds the real ones.
use crate::error::Result;
use crate::host::accounts::AccountTools;
use crate::migration::MigrationSpec;
use crate::walk::{Progress, Summary};
use std::path::Path;

/// The systemd side of a stack, as apply needs it. The real one speaks D-Bus; tests record.
pub trait StackManager {
    /// logind SetUserLinger, then wait (bounded) for user@UID.service and its manager.
    fn enable_linger(&self, uid: u32) -> Result<()>;
    /// Enable and start podman.socket in the user's manager, then prove it: GET /_ping == OK.
    fn start_podman_socket(&self, uid: u32) -> Result<()>;
}

/// The ownership migration engine, as apply needs it.
pub trait Migrator {
    fn migrate(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: Progress,
    ) -> Result<Summary>;
    fn rollback(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: Progress,
    ) -> Result<Summary>;
    /// Creates a new data path owned by `uid:gid`, mode 0750.
    fn create_data_dir(&self, path: &Path, uid: u32, gid: u32) -> Result<()>;
    /// Refuses (exit 2) a path or spec the walk would refuse, before anything is recorded.
    fn check(&self, _path: &Path, _spec: &MigrationSpec) -> Result<()> {
        Ok(())
    }
}

/// The real engine in `walk`, on the real kernel.
#[derive(Default)]
pub struct Walker {
    pub sys: crate::walk::sys::RealSys,
    /// Lock the data top and refuse while a process is inside (the walk then goes by name);
    /// false: the pinned path (`--force`, and callers that checked nothing).
    pub lock: bool,
}

impl Walker {
    /// The pinned path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locked unless `force` (which keeps the pinned path, whoever is inside).
    pub fn locking(force: bool) -> Self {
        Walker {
            lock: !force,
            ..Self::default()
        }
    }

    fn locking_mode(&self) -> crate::walk::Locking<'_> {
        if self.lock {
            crate::walk::Locking::Locked(&crate::host::procs::RealProcs)
        } else {
            crate::walk::Locking::Pinned
        }
    }
}

impl Migrator for Walker {
    fn migrate(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: Progress,
    ) -> Result<Summary> {
        Ok(crate::walk::migrate_with(
            &self.sys,
            path,
            spec,
            journal,
            &progress,
            self.locking_mode(),
        )?)
    }
    fn rollback(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: Progress,
    ) -> Result<Summary> {
        Ok(crate::walk::rollback_with(
            &self.sys,
            path,
            spec,
            journal,
            &progress,
            self.locking_mode(),
        )?)
    }
    fn create_data_dir(&self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        Ok(crate::walk::create_data_dir(&self.sys, path, uid, gid)?)
    }
    fn check(&self, path: &Path, spec: &MigrationSpec) -> Result<()> {
        crate::walk::check_spec(spec)?;
        Ok(crate::walk::check_data_path(&self.sys, path)?)
    }
}

pub struct Backends<'a> {
    pub accounts: &'a dyn AccountTools,
    /// None with --no-systemd: the plan then holds no systemd steps.
    pub manager: Option<&'a dyn StackManager>,
    pub migrator: &'a dyn Migrator,
    /// The users' podman stores (None with --no-systemd: the plan then copies no images).
    pub stores: Option<&'a dyn crate::handoff::stores::Stores>,
    /// The filesystem calls of closing data and sharing (the walk's).
    pub walk_sys: &'a dyn crate::walk::sys::WalkSys,
    pub acl_probe: &'a dyn crate::isolation::fs::AclProbe,
}
