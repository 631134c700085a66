//! Locking the data top for a walk: the walk's safety once per tree instead of once per inode.
//! A process can only swap entries of a directory it can reach. The top is made root's alone
//! (0:0, mode 0700; what it was is journalled, synced, first), THEN the caller's [`Holders`]
//! looks for processes that entered before (working directory, root, descriptors, mounts of
//! any namespace): nothing can enter after the lock. If none is inside, every name below keeps
//! naming the inode it was stat'ed as, and the walk changes entries by name, with no pin and no
//! verification pass. The top gets its previous owner and mode back last (ACL entries are
//! never touched by the lock: chmod back to the previous bits restores the ACL mask); a
//! kill -9 leaves it locked with an open lock line, and the next migrate or rollback gives it
//! back first ([`converge`]).
use crate::error::{Error, Result};
use crate::journal::{Applied, Journal, Line, TopLock};
use crate::replay::Proofs;
use crate::sys::WalkSys;
use crate::traverse::{self, InodeAction, Walked};
use indicatif::ProgressBar;
use isolate_model::ids::Mapping;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Who, outside isolate and the stack, holds something inside the data path: one line per
/// place naming pid and command. Asked once the top is locked. `stack` is the stack's uid
/// mapping: a process whose every uid is in it is the stack's own and does not count.
pub trait Holders: Sync {
    fn inside(&self, path: &Path, stack: &Mapping) -> std::result::Result<Vec<String>, String>;
}

/// How a migration or rollback walks: the pinned path (every inode pinned, checked and
/// verified afterwards: for `--force`, or a tree that cannot be locked), or locked first.
#[derive(Clone, Copy)]
pub enum Locking<'a> {
    Pinned,
    Locked(&'a dyn Holders),
}

fn io(path: &Path, what: &str, e: rustix::io::Errno) -> Error {
    Error::io(
        format!("{what} {}", path.display()),
        std::io::Error::from_raw_os_error(e.raw_os_error()),
    )
}

fn journal_io(e: std::io::Error) -> Error {
    Error::io("write the migration journal", e)
}

/// Journals what the top is (unless an open lock line already holds what it was before an
/// earlier, killed walk locked it), then makes it root's alone.
fn lock(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    journal: &Journal,
) -> Result<TopLock> {
    let st = sys.stat(root, c"").map_err(|e| io(path, "stat", e))?;
    let top = TopLock {
        ino: st.ino,
        uid: st.uid,
        gid: st.gid,
        perm: st.perm(),
        ctime: st.ctime,
    };
    journal
        .append(std::slice::from_ref(&Line::Lock(top)))
        .map_err(journal_io)?;
    // Owner first: once it is root's, its previous owner can no longer chmod it back.
    sys.chown(root, c"", 0, 0)
        .map_err(|e| io(path, "lock (chown 0:0)", e))?;
    sys.chmod(root, c"", 0o700)
        .map_err(|e| io(path, "lock (chmod 0700)", e))?;
    Ok(top)
}

/// Gives the top what `top` says it was, journals the ctime that left as isolate's own if
/// the state before the lock was one (the top's privilege proofs carry over: nobody but root
/// could change it while locked), then the unlock line.
fn unlock(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    top: &TopLock,
    proofs: &Proofs,
    journal: &Journal,
) -> Result<()> {
    sys.chown(root, c"", top.uid, top.gid)
        .map_err(|e| io(path, "unlock (chown)", e))?;
    sys.chmod(root, c"", top.perm)
        .map_err(|e| io(path, "unlock (chmod)", e))?;
    let now = sys.stat(root, c"").map_err(|e| io(path, "stat", e))?;
    let mut lines = Vec::with_capacity(2);
    let before = crate::sys::Stat {
        ctime: top.ctime,
        ..now
    };
    if proofs.own_inode(&before) {
        lines.push(Line::After(Applied {
            path: PathBuf::new(),
            ino: now.ino,
            ctime: now.ctime,
        }));
    }
    lines.push(Line::Unlock(top.ino));
    journal.append(&lines).map_err(journal_io)
}

/// A walk killed while the top was locked left an open lock line: gives the top back what it
/// was before. Returns the proofs read again (the journal grew), or `proofs` when nothing
/// was open.
pub(crate) fn converge(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    journal_path: &Path,
    proofs: Proofs,
) -> Result<Proofs> {
    if proofs.open_lock.is_none() {
        return Ok(proofs);
    }
    let journal = Journal::open(journal_path, proofs.valid_len)
        .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))?;
    converge_into(sys, root, path, &proofs, &journal)?;
    drop(journal);
    Proofs::read(journal_path)
}

/// `locking`, or the pinned path where the top cannot be locked: chattr +i/+a on it makes
/// chown fail even for root (the walk then reports the top as immutable, as it always did).
pub(crate) fn lockable<'a>(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    locking: Locking<'a>,
) -> Locking<'a> {
    match sys.stat(root, c"") {
        Ok(st) if !st.immutable() => locking,
        _ => Locking::Pinned,
    }
}

/// [`converge`] for a caller that has the journal open already (migrate, after its crash
/// repair ran while the tree was still locked).
pub(crate) fn converge_into(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    proofs: &Proofs,
    journal: &Journal,
) -> Result<()> {
    let Some(top) = proofs.open_lock else {
        return Ok(());
    };
    let st = sys.stat(root, c"").map_err(|e| io(path, "stat", e))?;
    if st.ino == top.ino {
        unlock(sys, root, path, &top, proofs, journal)
    } else {
        journal
            .append(std::slice::from_ref(&Line::Unlock(top.ino)))
            .map_err(journal_io)
    }
}

/// What a locked walk needs besides the walk's own: who to ask, the journal and its proofs.
pub(crate) struct LockWith<'a> {
    pub holders: &'a dyn Holders,
    /// The stack's uid mapping (its own processes do not count).
    pub stack: &'a Mapping,
    pub journal: &'a Journal,
    pub proofs: &'a Proofs,
}

/// Locks the top, asks `with.holders`, and walks by name (or gives the top back and refuses,
/// naming who is inside); the top is unlocked after the walk, then walked itself.
pub(crate) fn walk_locked<A: InodeAction>(
    sys: &dyn WalkSys,
    path: &Path,
    root: OwnedFd,
    action: &A,
    progress: Option<&ProgressBar>,
    with: LockWith<'_>,
) -> Result<Walked<A::Tally>> {
    let LockWith {
        holders,
        stack,
        journal,
        proofs,
    } = with;
    let top = lock(sys, root.as_fd(), path, journal)?;
    let inside = holders.inside(path, stack);
    if !matches!(&inside, Ok(found) if found.is_empty()) {
        unlock(sys, root.as_fd(), path, &top, proofs, journal)?;
        return Err(Error::Refused(match inside {
            Err(why) => format!(
                "cannot look for processes inside {}: {why} (or pass --force)",
                path.display()
            ),
            Ok(found) => format!(
                "processes outside the stack hold a place inside {} (found after its top was \
                 locked); end them or move them out, then run again (or pass --force):\n{}",
                path.display(),
                found.join("\n")
            ),
        }));
    }
    traverse::walk_locked(sys, path, root, action, progress, &mut |fd| {
        unlock(sys, fd, path, &top, proofs, journal)
    })
}
