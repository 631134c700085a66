//! The disk budget's records in the state file: per stack, each tree whose limit isolate set,
//! with the limit that was there before, so removing the key or rolling back puts that back
//! (and a killed apply is finished by the next one).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One btrfs subvolume isolate limited, recorded before the limit is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtrfsLimitRecord {
    /// The data path (as the policy names it).
    pub path: PathBuf,
    pub dev: u64,
    pub subvolume: u64,
    /// The limit isolate set, in bytes referenced.
    pub bytes: u64,
    /// The limit found before isolate's first one (None: none), put back on removal.
    pub was: Option<u64>,
}

/// What the disk budget changed for one stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub btrfs: Vec<BtrfsLimitRecord>,
}

impl QuotaRecord {
    pub fn is_empty(&self) -> bool {
        self.btrfs.is_empty()
    }
}
