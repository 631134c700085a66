//! The per-inode action of shares: makes each inode's access ACL (and a directory's default
//! ACL) what `isolation::share::change` says, over the same traversal as the migration.
//! Read-only, it counts the inodes that would change (for `plan`). Also the read-only action
//! that finds which of a stack's uids own something in its data (for closing it).
use super::Attrs;
use crate::ids::Mapping;
use crate::isolation::share::{self, AclWrite, ShareRule};
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{Entry, Failure, InodeAction, Pinned, Samples, Tally};
use crate::walk::xattr;
use std::collections::BTreeSet;

/// What a share walk counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareTally {
    /// Inodes whose ACLs are (read-only: would be) rewritten.
    pub pending: Samples,
}

impl Tally for ShareTally {
    fn merge(&mut self, other: ShareTally) {
        self.pending.merge(other.pending);
    }
}

/// Applies (or, `read_only`, counts) a share's rule on every inode.
pub struct ShareAcl {
    pub rule: ShareRule,
    pub read_only: bool,
}

impl ShareAcl {
    fn change(&self, entry: &Entry<'_>, attrs: &Attrs, top: bool) -> share::AclChange {
        let st = &entry.stat;
        share::change(
            &self.rule,
            &share::Inode {
                perm: st.perm(),
                gid: st.gid,
                is_dir: st.is_dir(),
                top,
                access: attrs.acl_access.as_deref(),
                default: attrs.acl_default.as_deref(),
            },
        )
    }
}

fn write(
    sys: &dyn WalkSys,
    target: &Pinned<'_>,
    attr: &std::ffi::CStr,
    w: &AclWrite,
) -> Result<(), Failure> {
    let value: &[u8] = match w {
        AclWrite::Keep => return Ok(()),
        AclWrite::Set(v) => v,
        // An empty value removes a POSIX ACL (the kernel's set_acl with no ACL).
        AclWrite::Remove => &[],
    };
    sys.set_xattr(target.fd, c"", attr, value)
        .map_err(|e| Failure::new("write ACL of", target.entry, e))
}

impl InodeAction for ShareAcl {
    /// Whether the inode is the share's top directory.
    type Plan = bool;
    type Tally = ShareTally;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut ShareTally,
    ) -> Result<Option<bool>, Failure> {
        // Symbolic links carry no ACLs (and are never followed).
        if entry.stat.is_symlink() {
            return Ok(None);
        }
        let top = entry.name.is_empty() && entry.parent.as_os_str().is_empty();
        let attrs = Attrs::read(sys, entry)?;
        if self.change(entry, &attrs, top).is_empty() {
            return Ok(None);
        }
        if self.read_only {
            tally.pending.add(entry.rel());
            return Ok(None);
        }
        Ok(Some(top))
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        top: bool,
        tally: &mut ShareTally,
    ) -> Result<(), Failure> {
        // Decide again from the pinned inode's attributes: what is written is what it has.
        let attrs = Attrs::read_at(sys, target.fd, c"")
            .map_err(|(op, e)| Failure::new(op, target.entry, e))?;
        let change = self.change(target.entry, &attrs, top);
        write(sys, target, xattr::ACL_ACCESS, &change.access)?;
        write(sys, target, xattr::ACL_DEFAULT, &change.default)?;
        tally.pending.add(target.entry.rel());
        Ok(())
    }
}

/// The uids of one mapping that own inodes (below the top, which is excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnersTally {
    pub uids: BTreeSet<u32>,
}

impl Tally for OwnersTally {
    fn merge(&mut self, other: OwnersTally) {
        self.uids.extend(other.uids);
    }
}

/// Read-only: collects the owners in `mapping` of everything below the top.
pub struct Owners {
    pub mapping: Mapping,
}

impl InodeAction for Owners {
    type Plan = ();
    type Tally = OwnersTally;
    const CHANGES: bool = false;

    fn plan(
        &self,
        _sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut OwnersTally,
    ) -> Result<Option<()>, Failure> {
        let top = entry.name.is_empty() && entry.parent.as_os_str().is_empty();
        if !top && self.mapping.contains_host(entry.stat.uid) {
            tally.uids.insert(entry.stat.uid);
        }
        Ok(None)
    }

    fn apply(
        &self,
        _sys: &dyn WalkSys,
        _target: &Pinned<'_>,
        _plan: (),
        _tally: &mut OwnersTally,
    ) -> Result<(), Failure> {
        Ok(())
    }
}
