//! The per-stack disk budget (`disk_max`, issue 22): a stack's files belong to its 65536
//! subordinate ids, so per-user quotas miss them; what holds them is a limit on the tree
//! itself, set by root: a btrfs qgroup limit on each data path that is a subvolume of its own.
//! Everywhere else (a directory inside a larger subvolume, btrfs without quotas, tmpfs, ext4
//! and xfs, whose project quotas are detected but not set yet) the key is refused, naming the
//! path, the filesystem and what would make it possible.
pub mod apply;
pub mod error;
pub mod observe;
pub mod plan;
pub mod port;
pub mod real;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// What a quota step changes on one data tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum QuotaStep {
    /// Limit the btrfs subvolume that is the data path (its level-0 qgroup `0/SUBVOLUME`) to
    /// `bytes` referenced; `was` is the limit found (None: none).
    SetBtrfs {
        stack: String,
        path: PathBuf,
        subvolume: u64,
        dev: u64,
        bytes: u64,
        was: Option<u64>,
    },
    /// Take back the limit isolate set on that subvolume (the key is gone, or rollback):
    /// put back the limit found before (`to`; None: no limit).
    RestoreBtrfs {
        stack: String,
        path: PathBuf,
        subvolume: u64,
        dev: u64,
        bytes: u64,
        to: Option<u64>,
    },
}

impl QuotaStep {
    pub fn stack(&self) -> &str {
        match self {
            QuotaStep::SetBtrfs { stack, .. } | QuotaStep::RestoreBtrfs { stack, .. } => stack,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            QuotaStep::SetBtrfs { path, .. } | QuotaStep::RestoreBtrfs { path, .. } => path,
        }
    }
}

impl fmt::Display for QuotaStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaStep::SetBtrfs {
                stack,
                path,
                subvolume,
                bytes,
                was: None,
                ..
            } => write!(
                f,
                "+ disk_max {} for {stack}: btrfs qgroup 0/{subvolume} of {} limited to {bytes} bytes referenced",
                size(*bytes),
                path.display()
            ),
            QuotaStep::SetBtrfs {
                stack,
                path,
                subvolume,
                bytes,
                was: Some(was),
                ..
            } => write!(
                f,
                "~ disk_max {} for {stack}: btrfs qgroup 0/{subvolume} of {} limited to {bytes} bytes referenced (was {was})",
                size(*bytes),
                path.display()
            ),
            QuotaStep::RestoreBtrfs {
                stack,
                path,
                subvolume,
                bytes,
                to,
                ..
            } => {
                write!(
                    f,
                    "- disk_max {} for {stack}: btrfs qgroup 0/{subvolume} of {} ",
                    size(*bytes),
                    path.display()
                )?;
                match to {
                    None => write!(f, "no longer limited"),
                    Some(was) => write!(f, "back to its limit before isolate ({was} bytes)"),
                }
            }
        }
    }
}

/// A byte count as the policy would write it when it is a whole number of a binary unit
/// (`200G`), else the bytes.
pub fn size(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}
