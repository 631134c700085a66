//! Carrying out isolation's steps on the host: close a data path's top (recording it first),
//! reopen it exactly, make a share's ACLs what the policy grants, and take isolate's entries
//! out of a share again. Every walk is the migration's traversal with another action.
use super::acl::Acl;
use super::closed::{self, Closing, Top};
use super::error::IsolationError;
use super::fs::{self, AclProbe};
use super::grants::{self, OwnedIds};
use super::journal;
use super::record::{hex, journal_path, unhex, ClosedTop, Record, ShareTree};
use super::share::ShareRule;
use super::steps::{CloseData, ShareStep};
use crate::error::{Error, Result};
use crate::ids::{IdMaps, Mapping};
use crate::isolation::share_acl::ShareTally;
use crate::isolation::share_acl::{Owners, Run, ShareAcl};
use crate::layout::Root;
use crate::policy::ShareMode;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{self, Counts};
use crate::walk::xattr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod shares;
pub use shares::{apply_rule, rollback_share, share, survey_share, ShareRollback};

/// What one isolation step did, for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Done {
    pub inodes: u64,
    pub changed: u64,
    pub raced: u64,
    pub failed: u64,
    pub failures: Vec<String>,
    pub mounts_skipped: Vec<PathBuf>,
    /// Inodes with links outside the tree: never changed.
    pub outside_links: Vec<PathBuf>,
    /// Host uids given `--x` on a closed top.
    pub entered_by: Vec<u32>,
    /// A share whose path changed: the path isolate's entries were first taken off (its
    /// inodes back as they were, its top with its recorded bits), and how many changed there.
    pub moved_from: Option<PathBuf>,
    pub moved_changed: u64,
    /// The old path no longer existed: nothing to take off, forgotten.
    pub moved_gone: bool,
    /// Share changes journalled first (apply), or inodes put back from the journal (rollback).
    pub journalled: u64,
    /// Rollback: journalled inodes someone changed since isolate did (isolate's entries
    /// taken out, the rest left as found).
    pub changed_since: Vec<PathBuf>,
    pub changed_since_count: u64,
    /// Rollback: the tree no longer exists (forgotten, nothing changed).
    pub gone: bool,
}

impl Done {
    fn from_counts(c: Counts) -> Done {
        Done {
            inodes: c.inodes,
            changed: c.changed,
            raced: c.raced.count,
            failed: c.failed.count,
            failures: c.failure_messages,
            mounts_skipped: c.mounts_skipped,
            outside_links: c.outside_links.samples,
            ..Done::default()
        }
    }

    fn from_share_walk(walked: traverse::Walked<ShareTally>) -> Done {
        Done {
            journalled: walked.tally.journalled,
            changed_since: walked.tally.changed_since.samples,
            changed_since_count: walked.tally.changed_since.count,
            ..Done::from_counts(walked.counts)
        }
    }

    /// Notes the old tree a moved share was taken off first.
    fn moved(&mut self, moved: Option<(PathBuf, Done)>) {
        if let Some((from, undone)) = moved {
            self.moved_from = Some(from);
            self.moved_changed = undone.changed;
            self.moved_gone = undone.gone;
        }
    }

    /// "N inodes seen, M changed ..." for the text report.
    pub fn line(&self) -> String {
        let mut text = String::new();
        if self.gone {
            return "the share's directory no longer exists: nothing to roll back, forgotten"
                .to_string();
        }
        if let Some(from) = self.moved_from.as_ref().filter(|_| self.moved_gone) {
            text.push_str(&format!(
                "{} (the share's old path) no longer exists: nothing to take off there; then ",
                from.display()
            ));
        } else if let Some(from) = &self.moved_from {
            text.push_str(&format!(
                "isolate's entries taken off {} first ({} inodes changed back), then ",
                from.display(),
                self.moved_changed
            ));
        }
        text.push_str(&format!(
            "{} inodes seen, {} changed",
            self.inodes, self.changed
        ));
        if self.changed_since_count > 0 {
            text.push_str(&format!(
                ", {} changed by someone else since isolate did (its entries taken out, the rest left as found): {}",
                self.changed_since_count,
                self.changed_since
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.raced > 0 {
            text.push_str(&format!(
                ", {} changed under the walk (skipped)",
                self.raced
            ));
        }
        if !self.outside_links.is_empty() {
            text.push_str(&format!(
                ", left as they are (linked from outside): {}",
                self.outside_links
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.mounts_skipped.is_empty() {
            text.push_str(&format!(
                ", mount points not crossed: {}",
                self.mounts_skipped
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        text
    }
}

fn io(what: String, e: rustix::io::Errno) -> Error {
    Error::io(what, e.into())
}

/// The top directory's facts, read through its fd.
pub fn read_top(
    sys: &dyn WalkSys,
    fd: BorrowedFd<'_>,
    path: &Path,
) -> Result<super::steps::TopFacts> {
    let st = sys
        .stat(fd, c"")
        .map_err(|e| io(format!("stat {}", path.display()), e))?;
    let acl_access = sys
        .get_xattr(fd, c"", xattr::ACL_ACCESS)
        .map_err(|e| io(format!("read the ACL of {}", path.display()), e))?;
    Ok(super::steps::TopFacts {
        ino: st.ino,
        perm: st.perm(),
        uid: st.uid,
        gid: st.gid,
        acl_access,
    })
}

/// The uids of `mapping` owning something below `path` (a read-only walk).
pub fn owners_below(
    sys: &dyn WalkSys,
    path: &Path,
    fd: OwnedFd,
    mapping: &Mapping,
) -> Result<BTreeSet<u32>> {
    let action = Owners {
        mapping: mapping.clone(),
    };
    Ok(traverse::walk(sys, path, fd, &action, None)?.tally.uids)
}

/// Opens a data path or share without following a symlink, refusing one below a directory
/// anyone but root could write (the walk's own check).
pub fn open_dir(sys: &dyn WalkSys, path: &Path, what: &str) -> Result<OwnedFd> {
    Ok(crate::walk::open_trusted(sys, path, what)?)
}

fn open_data(sys: &dyn WalkSys, path: &Path) -> Result<OwnedFd> {
    open_dir(sys, path, "data path")
}

/// Closes one data path: finds the stack's owners below, records the top as it is (once),
/// then writes the closed access ACL.
pub fn close(root: &Root, sys: &dyn WalkSys, step: &CloseData) -> Result<Option<Done>> {
    let on_host = root.at(&step.path);
    let fd = open_data(sys, &on_host)?;
    let walk_fd = fd
        .try_clone()
        .map_err(|e| Error::io("duplicate the data path fd", e))?;
    let owners = owners_below(sys, &on_host, walk_fd, &step.maps.uid)?;
    let top = read_top(sys, fd.as_fd(), &on_host)?;
    let others = OwnedIds::new(&step.others);
    let closing = Closing {
        stack: &step.maps,
        others: &others,
        owners: &owners,
        shared_gid: step.shared_gid,
    };
    let entered_by = closed::entered_by(&closing, top.uid);
    let Some(acl) = closed::closed_top(
        &closing,
        &Top {
            perm: top.perm,
            uid: top.uid,
            gid: top.gid,
            access: top.acl_access.as_deref(),
        },
    ) else {
        return Ok(None);
    };
    let mut record = Record::read(root)?;
    let tops = record.closed.entry(step.stack.clone()).or_default();
    let fresh = ClosedTop {
        path: step.path.clone(),
        ino: top.ino,
        perm: top.perm,
        acl_access: top.acl_access.as_deref().map(hex),
    };
    match tops.iter_mut().find(|t| t.path == step.path) {
        // Closed before (and changed since, e.g. a new owner inside): the original stays.
        Some(t) if t.ino == top.ino => {}
        Some(t) => *t = fresh,
        None => tops.push(fresh),
    }
    record.write(root)?;
    sys.set_xattr(fd.as_fd(), c"", xattr::ACL_ACCESS, &acl.encode())
        .map_err(|e| io(format!("write the ACL of {}", on_host.display()), e))?;
    Ok(Some(Done {
        inodes: 1,
        changed: 1,
        entered_by,
        ..Done::default()
    }))
}

/// Puts a closed top back exactly as recorded (permission bits and access ACL) and forgets
/// it. False when nothing was recorded. A different inode standing there now is left alone.
pub fn reopen(root: &Root, sys: &dyn WalkSys, stack: &str, path: &Path) -> Result<bool> {
    let mut record = Record::read(root)?;
    let Some(rec) = record.closed_top(stack, path).cloned() else {
        return Ok(false);
    };
    let on_host = root.at(path);
    let fd = open_data(sys, &on_host)?;
    let top = read_top(sys, fd.as_fd(), &on_host)?;
    if top.ino == rec.ino {
        let value = match &rec.acl_access {
            Some(h) => unhex(h).ok_or_else(|| {
                Error::HostState(vec![format!(
                    "{}: the recorded ACL of {} is not hex",
                    super::record::record_path(root).display(),
                    path.display()
                )])
            })?,
            // A minimal ACL: the kernel drops the xattr and sets the mode from it.
            None => Acl::from_mode(rec.perm).encode(),
        };
        sys.set_xattr(fd.as_fd(), c"", xattr::ACL_ACCESS, &value)
            .map_err(|e| io(format!("write the ACL of {}", on_host.display()), e))?;
        sys.chmod(fd.as_fd(), c"", rec.perm)
            .map_err(|e| io(format!("chmod {}", on_host.display()), e))?;
    } else {
        tracing::warn!(
            "{} is another directory than the one isolate closed (inode {} now, {} then): left as it is",
            on_host.display(),
            top.ino,
            rec.ino
        );
    }
    if let Some(tops) = record.closed.get_mut(stack) {
        tops.retain(|t| t.path != path);
        if tops.is_empty() {
            record.closed.remove(stack);
        }
    }
    record.write(root)?;
    Ok(true)
}

/// Before a stack's migrations are rolled back: every closed top of it back as it was.
pub fn reopen_stack(root: &Root, sys: &dyn WalkSys, stack: &str) -> Result<Vec<PathBuf>> {
    let record = Record::read(root)?;
    let paths: Vec<PathBuf> = record
        .closed
        .get(stack)
        .map(|tops| tops.iter().map(|t| t.path.clone()).collect())
        .unwrap_or_default();
    for p in &paths {
        reopen(root, sys, stack, p)?;
    }
    Ok(paths)
}
