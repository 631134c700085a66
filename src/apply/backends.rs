//! What apply changes the host through: one trait per effect family, so tests pass recording
//! fakes and only the CLI builds the real ones.
use crate::data::Migrator;
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

/// The real engine in `walk`, on the real kernel.
#[derive(Default)]
pub struct Walker {
    pub sys: crate::walk::sys::RealSys,
}

impl Walker {
    pub fn new() -> Self {
        Self::default()
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
        Ok(crate::walk::migrate(
            &self.sys, path, spec, journal, &progress,
        )?)
    }
    fn rollback(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: Progress,
    ) -> Result<Summary> {
        Ok(crate::walk::rollback(
            &self.sys, path, spec, journal, &progress,
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
