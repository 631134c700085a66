//! `Migrator`: the ownership migration engine as its callers need it (apply's data steps, the
//! hand-off's volumes, rollback). The walk is the real one; tests pass recording fakes.
use crate::error::Result;
use crate::migration::MigrationSpec;
use crate::walk::{Progress, Summary};
use std::path::Path;

/// The ownership migration engine, as its callers need it.
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
    /// The syscalls the walk goes through, for the read-only checks its callers make first
    /// (the hand-off's tree check of a volume).
    fn walk_sys(&self) -> &dyn crate::walk::sys::WalkSys;
    /// Refuses (exit 2) a path or spec the walk would refuse, before anything is recorded.
    fn check(&self, _path: &Path, _spec: &MigrationSpec) -> Result<()> {
        Ok(())
    }
}
