//! The plan steps of isolation (closing a stack's data, reopening it, making a share so) and
//! the facts observe gathers for them. plan.rs's `Step` wraps these; their lines print here.
use super::grants::{Access, HostGrant};
use crate::ids::IdMaps;
use crate::policy::ShareMode;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// Close a migrated data path: o-rwx on its top, `--x` there for the stack's owners inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloseData {
    pub stack: String,
    pub path: PathBuf,
    pub maps: IdMaps,
    /// Every other stack's mapping (their entries on the top are removed).
    pub others: Vec<IdMaps>,
    pub shared_gid: Option<u32>,
    /// The host uids that get `--x`, as seen now; None when the data is migrated first
    /// (apply finds them after the migration).
    pub entered_by: Option<Vec<u32>>,
}

/// Put a closed top back as it was (the policy now says `closed = false`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenData {
    pub stack: String,
    pub path: PathBuf,
}

/// Make a share's ACLs (or, in group mode, its group) what the policy grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShareStep {
    pub share: String,
    pub path: PathBuf,
    pub mode: ShareMode,
    pub grants: Vec<HostGrant>,
    /// The mappings whose ids' entries isolate owns.
    pub owned: Vec<IdMaps>,
    pub shared_group: String,
    pub shared_gid: Option<u32>,
    /// Inodes seen and inodes that will change (from observe's read-only walk).
    pub inodes: u64,
    pub changes: u64,
    /// Group mode: every user that then reaches the share through the group.
    pub group_members: Vec<String>,
}

fn uids(ids: &[u32]) -> String {
    ids.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for CloseData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "~ close {} of {}: other stacks get nothing (o-rwx on the top directory)",
            self.path.display(),
            self.stack
        )?;
        match &self.entered_by {
            Some(ids) if ids.is_empty() => Ok(()),
            Some(ids) => write!(
                f,
                ", --x there for the stack's host uids owning something inside: {}",
                uids(ids)
            ),
            None => write!(
                f,
                ", --x there for the stack's uids owning something inside once migrated"
            ),
        }
    }
}

impl fmt::Display for OpenData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "~ reopen {} of {} as it was before isolate closed it (closed = false)",
            self.path.display(),
            self.stack
        )
    }
}

impl fmt::Display for ShareStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grants = self
            .grants
            .iter()
            .map(|g| {
                format!(
                    "{} {} (host uid {})",
                    g.label(),
                    g.access.word(),
                    g.host_uid
                )
            })
            .collect::<Vec<_>>();
        let grants = if grants.is_empty() {
            "no grants".to_string()
        } else {
            grants.join(", ")
        };
        match self.mode {
            ShareMode::Acl => write!(
                f,
                "~ share {} at {}: {grants}; {} of {} inodes change (ACL entries, default ACLs, mask; closed to other stacks)",
                self.share,
                self.path.display(),
                self.changes,
                self.inodes
            ),
            ShareMode::Group => {
                let access = if self.grants.iter().any(|g| g.access == Access::Write) {
                    "read and write"
                } else {
                    "read"
                };
                write!(
                    f,
                    "~ share {} at {} in group-only mode: group {} with {access} access; {} of {} inodes change. \
                     Who then gains access: every member of {} as a host user ({}), and their containers only with --group-add keep-groups; \
                     grants to single container uids cannot be told apart",
                    self.share,
                    self.path.display(),
                    self.shared_group,
                    self.changes,
                    self.inodes,
                    self.shared_group,
                    if self.group_members.is_empty() {
                        "none".to_string()
                    } else {
                        self.group_members.join(", ")
                    }
                )
            }
        }
    }
}

/// A data path's top directory as observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopFacts {
    pub ino: u64,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub acl_access: Option<Vec<u8>>,
}

/// What observe saw of one migrated data path of a closed stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClosureFacts {
    pub top: TopFacts,
    /// Host uids of the stack's mapping owning something below the top.
    pub owners: BTreeSet<u32>,
}

/// What observe saw of one share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ShareFacts {
    /// Missing, not a directory, a symlink, or the walk failed.
    Refused(String),
    /// The filesystem keeps no POSIX ACLs (its name).
    NoAcls(String),
    Surveyed {
        inodes: u64,
        changes: u64,
    },
}
