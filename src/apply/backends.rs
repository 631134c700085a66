//! What apply changes the host through: one trait per effect family, so tests pass recording
//! fakes and only the CLI builds the real ones.
use crate::data::Migrator;
use crate::error::Result;
use crate::host::accounts::AccountTools;
use crate::ids::Mapping;
use crate::migration::MigrationSpec;
use crate::walk::{Progress, Summary};
use std::path::Path;

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
            crate::walk::Locking::Locked(&ProcHolders)
        } else {
            crate::walk::Locking::Pinned
        }
    }
}

impl Migrator for Walker {
    fn walk_sys(&self) -> &dyn crate::walk::sys::WalkSys {
        &self.sys
    }
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

/// Who holds something inside a data path, as /proc shows it (host::procs), for the walk.
pub struct ProcHolders;

/// What the walk asks once it locked a data top: one line per place (pid, command, uid, how).
impl crate::walk::Holders for ProcHolders {
    fn inside(&self, path: &Path, stack: &Mapping) -> std::result::Result<Vec<String>, String> {
        let found =
            crate::host::procs::holders_inside(&[path.to_path_buf()]).map_err(|e| e.to_string())?;
        let binds = crate::host::mounts::own_binds_inside(path).map_err(|e| e.to_string())?;
        // As plan counts them: the stack's own processes do not, nor root's own places.
        let counts = |h: &&crate::host::procs::Holder| {
            !h.uids.all().iter().all(|u| stack.contains_host(*u))
                && (matches!(h.how, crate::host::procs::How::Mount { .. })
                    || h.uids.all() != [0; 4])
        };
        Ok(found
            .iter()
            .filter(counts)
            .map(|h| {
                format!(
                    "  pid {} ({}, uid {}): {}",
                    h.pid,
                    isolate_model::escape::text(&h.comm),
                    h.uid,
                    h.how
                )
            })
            .chain(binds.iter().map(|at| {
                format!(
                    "  bind mount at {} in this (the host's) mount namespace",
                    isolate_model::escape::path(at)
                )
            }))
            .collect())
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
    /// Runs compose as the legacy user (src/reach/legacy_run.rs; None with --no-systemd).
    pub compose: Option<&'a dyn crate::reach::legacy_run::ComposeRunner>,
}
