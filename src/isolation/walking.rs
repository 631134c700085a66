//! The per-inode actions of isolation on the migration's traversal: the share ACL action
//! (apply, or count what would change) and the owners survey of closing.
//! (Moves to `walk/action/share_acl.rs` once the walker's per-action tallies land.)
use super::share::{self, AclWrite, ShareRule};
use crate::ids::Mapping;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{Entry, Failure, InodeAction, Tally};
use crate::walk::xattr::{self, Present};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::collections::BTreeSet;
use std::ffi::CStr;
use std::sync::Mutex;

/// An inode's ACL xattrs.
#[derive(Default)]
struct Acls {
    access: Option<Vec<u8>>,
    default: Option<Vec<u8>>,
}

fn read_acls(sys: &dyn WalkSys, dir: BorrowedFd<'_>, name: &CStr) -> Result<Acls, Errno> {
    let present = Present::from_list(&sys.list_xattrs(dir, name)?);
    let mut acls = Acls::default();
    if present.acl_access {
        acls.access = sys.get_xattr(dir, name, xattr::ACL_ACCESS)?;
    }
    if present.acl_default {
        acls.default = sys.get_xattr(dir, name, xattr::ACL_DEFAULT)?;
    }
    Ok(acls)
}

/// Applies (or, `read_only`, counts in `tally.changed`... of its own) a share's rule.
pub struct ShareAcl {
    pub rule: ShareRule,
    pub read_only: bool,
    /// Inodes that would change (read-only walks).
    pub pending: Mutex<u64>,
}

impl ShareAcl {
    pub fn new(rule: ShareRule, read_only: bool) -> ShareAcl {
        ShareAcl {
            rule,
            read_only,
            pending: Mutex::new(0),
        }
    }

    fn change(&self, entry: &Entry<'_>, acls: &Acls) -> share::AclChange {
        let st = &entry.stat;
        share::change(
            &self.rule,
            &share::Inode {
                perm: st.perm(),
                gid: st.gid,
                is_dir: st.is_dir(),
                top: entry.name.is_empty() && entry.parent.as_os_str().is_empty(),
                access: acls.access.as_deref(),
                default: acls.default.as_deref(),
            },
        )
    }
}

fn write(sys: &dyn WalkSys, entry: &Entry<'_>, attr: &CStr, w: &AclWrite) -> Result<(), Failure> {
    let value: &[u8] = match w {
        AclWrite::Keep => return Ok(()),
        AclWrite::Set(v) => v,
        // An empty value removes a POSIX ACL (the kernel's set_acl with no ACL).
        AclWrite::Remove => &[],
    };
    sys.set_xattr(entry.dir, entry.name, attr, value)
        .map_err(|errno| Failure {
            op: "write the ACL of",
            rel: entry.rel(),
            errno,
        })
}

impl InodeAction for ShareAcl {
    type Plan = ();

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        _tally: &mut Tally,
    ) -> Result<Option<()>, Failure> {
        // Symbolic links carry no ACLs (and are never followed).
        if entry.stat.is_symlink() {
            return Ok(None);
        }
        let acls = read_acls(sys, entry.dir, entry.name).map_err(|errno| Failure {
            op: "read the ACLs of",
            rel: entry.rel(),
            errno,
        })?;
        if self.change(entry, &acls).is_empty() {
            return Ok(None);
        }
        if self.read_only {
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            return Ok(None);
        }
        Ok(Some(()))
    }

    fn before_apply(&self, _plans: &[()], _tally: &mut Tally) -> Result<(), crate::error::Error> {
        Ok(())
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        _plan: (),
        _tally: &mut Tally,
    ) -> Result<(), Failure> {
        // Decide again from what the inode has now: what is written is what it gets.
        let acls = read_acls(sys, entry.dir, entry.name).map_err(|errno| Failure {
            op: "read the ACLs of",
            rel: entry.rel(),
            errno,
        })?;
        let change = self.change(entry, &acls);
        write(sys, entry, xattr::ACL_ACCESS, &change.access)?;
        write(sys, entry, xattr::ACL_DEFAULT, &change.default)
    }
}

/// Read-only: the owners in `mapping` of everything below the top.
pub struct Owners {
    pub mapping: Mapping,
    pub uids: Mutex<BTreeSet<u32>>,
}

impl InodeAction for Owners {
    type Plan = ();

    fn plan(
        &self,
        _sys: &dyn WalkSys,
        entry: &Entry<'_>,
        _tally: &mut Tally,
    ) -> Result<Option<()>, Failure> {
        let top = entry.name.is_empty() && entry.parent.as_os_str().is_empty();
        if !top && self.mapping.contains_host(entry.stat.uid) {
            self.uids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(entry.stat.uid);
        }
        Ok(None)
    }

    fn before_apply(&self, _plans: &[()], _tally: &mut Tally) -> Result<(), crate::error::Error> {
        Ok(())
    }

    fn apply(
        &self,
        _sys: &dyn WalkSys,
        _entry: &Entry<'_>,
        _plan: (),
        _tally: &mut Tally,
    ) -> Result<(), Failure> {
        Ok(())
    }
}
