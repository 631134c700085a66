//! What apply changes the host through: one trait per effect family, so tests pass recording
//! fakes and only the CLI builds the real ones.
use crate::data::Migrator;
use crate::error::Result;
use crate::host::accounts::AccountTools;
use crate::migration::MigrationSpec;
use crate::walk::{Progress, Summary};
use std::path::Path;

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
    /// The users' systemd managers and podman stores (`host::session`). None with
    /// --no-systemd: the plan then holds no systemd steps and copies no images.
    pub session: Option<crate::host::session::Session<'a>>,
    pub migrator: &'a dyn Migrator,
    /// The filesystem calls of closing data and sharing (the walk's).
    pub walk_sys: &'a dyn crate::walk::sys::WalkSys,
    pub acl_probe: &'a dyn crate::isolation::fs::AclProbe,
}
