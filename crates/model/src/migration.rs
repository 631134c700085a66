//! The migration domain: how a stack's data changes owner (mode, mappings, target) and what
//! the operator accepts. Shared by the policy, the state file, plan, apply and the walk.
use crate::ids::Shift;
use serde::{Deserialize, Serialize};

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

impl MigrateMode {
    /// The word the policy and the plan use.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrateMode::Shift => "shift",
            MigrateMode::Reown => "reown",
            MigrateMode::Auto => "auto",
        }
    }
}

impl std::fmt::Display for MigrateMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a migration does with an inode that also has links outside the data path (a
/// container could have hardlinked another stack's or root's file into its data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OutsideLinks {
    /// Never changed; the migration step fails until the operator removes the links.
    #[default]
    Refuse,
    /// Never changed; reported, and the migration still counts as done.
    Skip,
}

impl OutsideLinks {
    pub fn as_str(self) -> &'static str {
        match self {
            OutsideLinks::Refuse => "refuse",
            OutsideLinks::Skip => "skip",
        }
    }
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
    /// Inodes with links outside the data path: never changed either way.
    #[serde(default)]
    pub outside_links: OutsideLinks,
}
