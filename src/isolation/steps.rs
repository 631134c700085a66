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
    /// Trees isolate changed for this share at another path (the policy moved it), or in
    /// ACL mode at any path (group mode now): taken off first, each inode back as recorded.
    #[serde(default)]
    pub moves_from: Vec<PathBuf>,
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
        if !self.moves_from.is_empty() {
            write!(
                f,
                "~ share {} moves from {} to {}: isolate's entries leave {} first (each inode \
                 back as recorded, masks and the top's mode and ACL too); then ",
                self.share,
                self.moves_from
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                self.path.display(),
                if self.moves_from.len() == 1 {
                    "it"
                } else {
                    "them"
                },
            )?;
        }
        let lead = if self.moves_from.is_empty() { "~ " } else { "" };
        match self.mode {
            ShareMode::Acl => write!(
                f,
                "{lead}share {} at {}: {grants}; {} of {} inodes change (ACL entries, default ACLs, mask; \
                 never more for another user's entry than it had; closed to other stacks)",
                self.share,
                self.path.display(),
                self.changes,
                self.inodes
            ),
            ShareMode::Group => write!(
                f,
                "{lead}share {} at {} in group-only mode: {}, with {} for the group and nothing for others \
                 (set on the file server; apply checks it and prints the commands). {}",
                self.share,
                self.path.display(),
                self.group_owner_text(),
                self.group_access().1,
                self.who_gains()
            ),
        }
    }
}

impl ShareStep {
    fn group_owner_text(&self) -> String {
        format!("group {} must own it", self.shared_group)
    }

    /// Group-only mode: the group bits needed (dirs) and their words.
    pub fn group_access(&self) -> (u32, &'static str) {
        if self.grants.iter().any(|g| g.access == Access::Write) {
            (0o070, "read and write")
        } else {
            (0o050, "read")
        }
    }

    /// Group-only mode: exactly who reaches the share.
    pub fn who_gains(&self) -> String {
        format!(
            "Who then gains access: every member of {} as a host user ({}), and their containers \
             only when run with --group-add keep-groups; no grant can tell container uids apart",
            self.shared_group,
            if self.group_members.is_empty() {
                "none".to_string()
            } else {
                self.group_members.join(", ")
            }
        )
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
    /// Not a directory, a symlink, or the walk failed.
    Refused(String),
    /// Its parent is trusted and has no entry of its name: plan names the command that
    /// creates it (isolate does not: see `isolation::fs::missing_share`).
    Missing,
    /// The filesystem keeps no POSIX ACLs (its name).
    NoAcls(String),
    Surveyed {
        inodes: u64,
        changes: u64,
    },
    /// Group-only mode: whether the top already belongs to the shared group, with the
    /// granted access for the group and none for others (set on the file server).
    GroupOnly {
        ready: bool,
    },
}
