// Ownership migration over a stack's data: a symlink-proof, one-filesystem, parallel walk
// (traversal) with the per-inode work (shift, reown, rollback, survey) kept separate.
// OWNED BY THE WALK HELPER: the entry points below are what plan/apply call.
use crate::ids::{IdMaps, Shift};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a stack's data changes owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MigrateMode {
    /// Ids in the legacy mapping move to the same container id in the stack's mapping.
    Shift,
    /// Everything becomes the stack user (container root); original owners are journalled.
    Reown,
    /// Shift what is in the legacy mapping, reown the rest.
    Auto,
}

/// What one migration of one data path does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSpec {
    pub mode: MigrateMode,
    /// legacy mapping -> stack mapping
    pub shift: Shift,
    /// Stack user's uid/gid: the reown target (container root).
    pub target_uid: u32,
    pub target_gid: u32,
}

/// Read-only counts for `plan`: what a migration would do per rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    pub inodes: u64,
    pub shift: u64,
    pub reown: u64,
    pub already: u64,
    pub outside: u64,
    pub outside_samples: Vec<PathBuf>,
    pub mounts_skipped: Vec<PathBuf>,
}

/// Summary printed after a migration or rollback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub inodes: u64,
    pub changed: u64,
    pub skipped_already: u64,
    pub skipped_outside: u64,
    pub outside_samples: Vec<PathBuf>,
    pub mounts_skipped: Vec<PathBuf>,
    pub bytes: u64,
    pub seconds: f64,
}

/// Refuses paths the walk must not touch: missing, not a directory, network/FUSE filesystems.
pub fn check_data_path(_path: &Path) -> crate::error::Result<()> {
    unimplemented!("walk helper")
}

pub fn survey(_path: &Path, _spec: &MigrationSpec) -> crate::error::Result<Survey> {
    unimplemented!("walk helper")
}

pub fn migrate(
    _path: &Path,
    _spec: &MigrationSpec,
    _journal: &Path,
    _progress: bool,
) -> crate::error::Result<Summary> {
    unimplemented!("walk helper")
}

pub fn rollback(
    _path: &Path,
    _spec: &MigrationSpec,
    _journal: &Path,
    _progress: bool,
) -> crate::error::Result<Summary> {
    unimplemented!("walk helper")
}

#[allow(dead_code)]
fn _uses(_: IdMaps) {}
