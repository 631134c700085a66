//! The hand-off's records in the state file: what isolate changed for a stack's hand-off (env
//! files, volumes, the compose service), so rollback can undo it and a killed apply resume.
use crate::ids::IdMaps;
use crate::migration::MigrateMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which inode a file is: what apply checks on its pinned descriptor before it changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(st: &rustix::fs::Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// Owner, group and permission bits (with setuid/setgid/sticky) of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// An env file as it was before isolate handed it to the stack (in the state file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileRecord {
    pub path: PathBuf,
    pub was: FileOwner,
    /// The inode that was handed over: rollback gives back only that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FileId>,
}

/// A directory's identity: what plan saw is what apply moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirId {
    pub dev: u64,
    pub ino: u64,
}

impl DirId {
    pub fn of(st: &rustix::fs::Stat) -> DirId {
        DirId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// Where a volume's hand-off stands (in the state file, written before each phase starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumePhase {
    /// The data is on its way from the legacy store to the staging directory.
    Moving,
    /// In staging; its owners are being shifted (the walk's journal records it).
    Shifting,
    /// Shifted; on its way into the stack's store.
    Placing,
    Done,
    /// Rollback: on its way from the stack's store back to staging.
    Unplacing,
    /// Rollback: owners going back.
    Unshifting,
    /// Rollback: the data on its way back to the legacy store.
    MovingBack,
}

/// One named volume handed to a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    /// The legacy store's data directory (`.../volumes/NAME/_data`).
    pub from: PathBuf,
    /// The stack store's data directory.
    pub to: PathBuf,
    /// Where the owners are shifted, below isolate's root-owned state directory.
    pub staging: PathBuf,
    pub phase: VolumePhase,
    pub mode: MigrateMode,
    pub from_maps: IdMaps,
    pub to_maps: IdMaps,
    /// The walk's journal (relative to the root).
    pub journal: PathBuf,
    /// The legacy data directory as the plan saw it (None in records of an older isolate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<DirId>,
}

/// The service as installed (in the state file): rollback stops, disables and removes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub unit: String,
    pub path: PathBuf,
}

/// What isolate changed for a stack's hand-off, in the state file, so rollback can undo it
/// and a killed apply can resume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// Env files as they were before apply first changed them (the first record is kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<EnvFileRecord>,
    /// Named volumes moved into the stack's store (kept until rolled back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeRecord>,
    /// The compose service isolate installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRecord>,
}

impl HandoffRecord {
    pub fn is_empty(&self) -> bool {
        self.env_files.is_empty() && self.volumes.is_empty() && self.service.is_none()
    }
}
