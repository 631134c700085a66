//! The audit's read-only action: every inode of a data path or share, once, to the audit's
//! inspector (owner counts and per-inode findings). It plans no change, so the traversal
//! never pins or writes anything; what the traversal counts itself (links reaching outside,
//! mount points, unreadable entries) comes back beside the audit's tally.
use crate::audit::inspect::{Attributes, AuditTally, Hits, Inspector};
use crate::error::{Error, Result};
use crate::walk::action::Attrs;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{self, Entry, Failure, InodeAction, Pinned, Samples, Tally};
use std::path::{Path, PathBuf};

impl Tally for AuditTally {
    fn merge(&mut self, other: AuditTally) {
        AuditTally::merge(self, other);
    }
}

/// Hands each inode to `inspector`; never returns a plan.
pub struct AuditAction<'a> {
    pub inspector: &'a Inspector,
}

impl InodeAction for AuditAction<'_> {
    type Plan = ();
    type Tally = AuditTally;
    const READ_ONLY: bool = true;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut AuditTally,
    ) -> std::result::Result<Option<()>, Failure> {
        let rel = || entry.rel();
        // Attributes that cannot be read: the inode still counts by owner, and the failure
        // goes to the traversal's counts (the `unreadable` finding).
        let (attrs, failed) = match Attrs::read(sys, entry) {
            Ok(a) => (a, None),
            Err(f) => (Attrs::default(), Some(f)),
        };
        let attributes = Attributes {
            acl_access: attrs.acl_access,
            acl_default: attrs.acl_default,
            capability: attrs.caps.is_some(),
        };
        self.inspector
            .inspect(&entry.stat, &attributes, tally, &rel);
        match failed {
            Some(f) => Err(f),
            None => Ok(None),
        }
    }

    fn apply(
        &self,
        _: &dyn WalkSys,
        _: &Pinned<'_>,
        _: (),
        _: &mut AuditTally,
    ) -> std::result::Result<(), Failure> {
        Ok(())
    }
}

/// What the audit of one tree found.
#[derive(Debug, Default)]
pub struct TreeAudit {
    pub tally: AuditTally,
    /// Inodes seen (inodes with links outside included) and bytes of regular files.
    pub inodes: u64,
    pub bytes: u64,
    /// Hardlinked inodes whose link count is larger than the links found in the tree.
    pub outside_links: Hits,
    /// Entries that could not be read (a syscall failed) or changed under the walk.
    pub unreadable: Hits,
    pub unreadable_messages: Vec<String>,
    pub mounts_skipped: Vec<PathBuf>,
}

fn hits(s: Samples) -> Hits {
    Hits {
        count: s.count,
        samples: s.samples,
    }
}

/// Walks `path` (absolute, on the audited host) read-only with the audit action.
pub fn walk_tree(sys: &dyn WalkSys, path: &Path, inspector: &Inspector) -> Result<TreeAudit> {
    let root = sys
        .open_root(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))?;
    let walked = traverse::walk(sys, path, root, &AuditAction { inspector }, None)?;
    let counts = walked.counts;
    let mut unreadable = counts.failed;
    unreadable.merge(counts.raced);
    Ok(TreeAudit {
        tally: walked.tally,
        inodes: counts.inodes,
        bytes: counts.bytes,
        outside_links: hits(counts.outside_links),
        unreadable: hits(unreadable),
        unreadable_messages: counts.failure_messages,
        mounts_skipped: counts.mounts_skipped,
    })
}
