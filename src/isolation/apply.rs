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
use crate::layout::Root;
use crate::policy::ShareMode;
use crate::walk::action::share_acl::ShareTally;
use crate::walk::action::share_acl::{Owners, Run, ShareAcl};
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{self, Counts};
use crate::walk::xattr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    crate::walk::open_trusted(sys, path, what)
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

/// Opens a share's top and refuses a filesystem without POSIX ACLs.
fn open_share(
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    path: &Path,
    shared_group: &str,
) -> Result<OwnedFd> {
    let fd = open_dir(sys, path, "share")?;
    let fs_type = sys
        .fs_type(fd.as_fd())
        .map_err(|e| io(format!("statfs {}", path.display()), e))?;
    if let Some(fs) = fs::missing_acls(fs_type, probe, fd.as_fd())
        .map_err(|e| io(format!("read the ACL of {}", path.display()), e))?
    {
        return Err(Error::Refused(fs::refusal(name, path, &fs, shared_group)));
    }
    Ok(fd)
}

/// The rule apply uses for a share step.
pub fn apply_rule(
    owned: &[IdMaps],
    grants: &[grants::HostGrant],
    shared_gid: Option<u32>,
) -> ShareRule {
    ShareRule {
        owned: OwnedIds::new(owned),
        grants: grants::by_uid(grants),
        top_other: Some(0),
        top_group_obj: Some(0),
        shared_gid,
    }
}

/// Counts what a share walk would change (plan), changing nothing.
pub fn survey_share(
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    path: &Path,
    shared_group: &str,
    rule: ShareRule,
) -> Result<(u64, u64)> {
    let fd = open_share(sys, probe, name, path, shared_group)?;
    let action = ShareAcl {
        rule,
        run: Run::Survey,
    };
    let walked = traverse::walk(sys, path, fd, &action, None)?;
    Ok((walked.counts.inodes, walked.tally.pending.count))
}

/// Makes a share what the step grants. The share's new top is opened (and refused) before
/// anything changes; a tree recorded for this share at another path (the policy moved it)
/// is rolled back first; the tree is recorded (name, path, top inode) before the walk, and
/// every change a rollback could not undo by taking isolate's entries out is journalled
/// before it is made.
pub fn share(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    step: &ShareStep,
) -> Result<Done> {
    let on_host = root.at(&step.path);
    let opened = match step.mode {
        ShareMode::Group => None,
        ShareMode::Acl => {
            let fd = open_share(sys, probe, &step.share, &on_host, &step.shared_group)?;
            let top = read_top(sys, fd.as_fd(), &on_host)?;
            Some((fd, top))
        }
    };
    let mut moved: Option<(PathBuf, Done)> = None;
    let elsewhere: Vec<ShareTree> = Record::read(root)?
        .shares_named(&step.share)
        .filter(|t| t.path != step.path || step.mode == ShareMode::Group)
        .cloned()
        .collect();
    for old in elsewhere {
        let undone = rollback_tree(
            root,
            sys,
            probe,
            &old,
            &step.owned,
            &step.shared_group,
            step.shared_gid,
        )?;
        moved = Some((old.path.clone(), undone));
    }
    let Some((fd, top)) = opened else {
        let mut done = group_only(root, sys, step)?;
        done.moved(moved);
        return Ok(done);
    };

    let mut record = Record::read(root)?;
    let tree = match record.share_tree(&step.share, &step.path) {
        Some(t) if t.ino == top.ino => t.clone(),
        found => {
            if let Some(old) = found {
                // Another directory stands at the path now: what was journalled of the one
                // isolate changed says nothing about this one.
                tracing::warn!(
                    "share `{}`: {} is another directory than the one isolate changed (inode {} now, {} then); its journal starts again",
                    step.share,
                    on_host.display(),
                    top.ino,
                    old.ino
                );
                let stale = journal_path(root, old);
                std::fs::remove_file(&stale)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| Error::io(format!("removing {}", stale.display()), e))?;
                record.forget_share_tree(&step.share, &step.path);
            }
            let fresh = ShareTree::new(&step.share, &step.path, top.ino);
            record.share_trees.push(fresh.clone());
            record.write(root)?;
            fresh
        }
    };
    let jpath = journal_path(root, &tree);
    let journalled =
        journal::read(&jpath).map_err(|e| Error::io(format!("reading {}", jpath.display()), e))?;
    let writer = journal::Writer::open(&jpath)
        .map_err(|e| Error::io(format!("opening {}", jpath.display()), e))?;
    let action = ShareAcl {
        rule: apply_rule(&step.owned, &step.grants, step.shared_gid),
        run: Run::Apply {
            journal: &writer,
            journalled: &journalled,
        },
    };
    let mut done = Done::from_share_walk(traverse::walk(sys, &on_host, fd, &action, None)?);
    done.moved(moved);
    if done.failed > 0 {
        return Err(IsolationError::ShareNotChanged {
            share: step.share.clone(),
            failed: done.failed,
            failures: done.failures,
        }
        .into());
    }
    Ok(done)
}

/// Group-only mode, for filesystems where a local root cannot set ACLs or owners (NFS with
/// root squashing, CIFS): isolate checks the share's top and, when it is not so yet, says
/// what to run on the file server. It changes nothing itself.
fn group_only(root: &Root, sys: &dyn WalkSys, step: &ShareStep) -> Result<Done> {
    let on_host = root.at(&step.path);
    let fd = open_dir(sys, &on_host, "share")?;
    let st = sys
        .stat(fd.as_fd(), c"")
        .map_err(|e| io(format!("stat {}", on_host.display()), e))?;
    let (bits, _) = step.group_access();
    let ready =
        Some(st.gid) == step.shared_gid && st.perm() & 0o007 == 0 && st.perm() & bits == bits;
    if ready {
        return Ok(Done {
            inodes: 1,
            ..Done::default()
        });
    }
    Err(IsolationError::GroupOnlyNotReady {
        share: step.share.clone(),
        path: step.path.clone(),
        group: step.shared_group.clone(),
        w: if bits == 0o070 { "w" } else { "" },
    }
    .into())
}

/// Rolls one recorded share tree back: every entry of an id of a stack's mapping out of
/// it (access and default ACLs, masks recomputed), every journalled inode still as isolate
/// left it back exactly as it was (mask, other users' entries, the top's bits); then forgets
/// the tree and its journal. A tree that no longer exists is forgotten with a warning; any
/// inode that could not be changed (or changed under the walk) keeps the tree recorded.
fn rollback_tree(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    tree: &ShareTree,
    owned: &[IdMaps],
    shared_group: &str,
    shared_gid: Option<u32>,
) -> Result<Done> {
    let on_host = root.at(&tree.path);
    let jpath = journal_path(root, tree);
    let forget = || -> Result<()> {
        let mut record = Record::read(root)?;
        record.forget_share_tree(&tree.name, &tree.path);
        record.write(root)?;
        match std::fs::remove_file(&jpath) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", jpath.display()), e))
            }
            _ => Ok(()),
        }
    };
    // Nothing stands at the path at all (not even an empty mount point): the tree is gone,
    // and with it every entry isolate made there.
    if let Err(e) = std::fs::symlink_metadata(&on_host) {
        if e.kind() == std::io::ErrorKind::NotFound {
            tracing::warn!(
                "share `{}`: {} no longer exists; nothing of it to roll back",
                tree.name,
                on_host.display()
            );
            forget()?;
            return Ok(Done {
                gone: true,
                ..Done::default()
            });
        }
    }
    let fd = open_share(sys, probe, &tree.name, &on_host, shared_group)?;
    let top = read_top(sys, fd.as_fd(), &on_host)?;
    if top.ino != tree.ino {
        return Err(IsolationError::ShareTopReplaced {
            share: tree.name.clone(),
            path: tree.path.clone(),
            now: top.ino,
            then: tree.ino,
        }
        .into());
    }
    let journalled =
        journal::read(&jpath).map_err(|e| Error::io(format!("reading {}", jpath.display()), e))?;
    let action = ShareAcl {
        rule: ShareRule {
            owned: OwnedIds::new(owned),
            grants: Default::default(),
            top_other: None,
            top_group_obj: None,
            shared_gid,
        },
        run: Run::Rollback {
            journalled: &journalled,
        },
    };
    let done = Done::from_share_walk(traverse::walk(sys, &on_host, fd, &action, None)?);
    if done.failed > 0 || done.raced > 0 {
        return Err(IsolationError::ShareRollbackNotDone {
            share: tree.name.clone(),
            path: tree.path.clone(),
            failed: done.failed,
            raced: done.raced,
            failures: done.failures,
        }
        .into());
    }
    forget()?;
    Ok(done)
}

/// `isolate rollback --share NAME`: rolls back every tree recorded for the share (one; two
/// when a move of its path did not finish), then forgets it.
pub fn rollback_share(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    owned: &[IdMaps],
    shared_group: &str,
    shared_gid: Option<u32>,
) -> Result<Done> {
    let trees: Vec<ShareTree> = Record::read(root)?.shares_named(name).cloned().collect();
    if trees.is_empty() {
        return Err(Error::Usage(format!(
            "share `{name}` has nothing recorded in {}",
            super::record::record_path(root).display()
        )));
    }
    let mut total = Done::default();
    for tree in &trees {
        let d = rollback_tree(root, sys, probe, tree, owned, shared_group, shared_gid)?;
        total.inodes += d.inodes;
        total.changed += d.changed;
        total.journalled += d.journalled;
        total.changed_since_count += d.changed_since_count;
        total.changed_since.extend(d.changed_since);
        total.mounts_skipped.extend(d.mounts_skipped);
        total.outside_links.extend(d.outside_links);
    }
    Ok(total)
}

/// Runs an isolation step; None for any other step.
pub fn run_step(
    root: &Root,
    step: &crate::plan::Step,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
) -> Option<Result<(crate::apply::Outcome, Option<Done>)>> {
    use crate::apply::Outcome;
    use crate::plan::Step;
    let outcome = |changed: bool| {
        if changed {
            Outcome::Done
        } else {
            Outcome::AlreadyPresent
        }
    };
    Some(match step {
        Step::CloseData(c) => close(root, sys, c).map(|d| (outcome(d.is_some()), d)),
        Step::OpenData(o) => reopen(root, sys, &o.stack, &o.path).map(|r| (outcome(r), None)),
        Step::Share(s) => share(root, sys, probe, s).map(|d| (outcome(d.changed > 0), Some(d))),
        _ => return None,
    })
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

/// `isolate rollback --share NAME` on the real kernel: the mappings of every recorded stack
/// are isolate's ids; the shared group comes from the policy (when there is one).
pub fn rollback_share_of(
    root: &Root,
    policy: Option<&crate::policy::Policy>,
    name: &str,
) -> Result<ShareRollback> {
    let state = crate::state::State::read(root)?;
    let accounts = crate::host::accounts::Accounts::read(root)?;
    let owned: Vec<IdMaps> = super::facts::known_maps(&state, &Default::default())
        .into_values()
        .collect();
    let group = policy.map_or_else(
        || "stk-shared".to_string(),
        |p| p.shared_group.value.clone(),
    );
    let gid = accounts.group(&group).map(|g| g.gid);
    let done = rollback_share(
        root,
        &crate::walk::sys::RealSys::new(),
        &fs::RealAclProbe,
        name,
        &owned,
        &group,
        gid,
    )?;
    Ok(ShareRollback {
        share: name.to_string(),
        done,
    })
}

/// What `rollback --share` did.
#[derive(Clone, Debug, Serialize)]
pub struct ShareRollback {
    pub share: String,
    #[serde(flatten)]
    pub done: Done,
}
