//! Journal replay: finishing what a crashed migration left half done, and the journal
//! phases of a rollback. Every record is applied only to the inode it was written for
//! (same inode number and creation time), pinned through a descriptor found fd-relative
//! from the data path without following a symlink or crossing a mount.
use super::journal::{self, Applied, Intent, Journal, Line, Record};
use super::rules::Rules;
use super::sys::{Stat, WalkSys};
use super::traverse::{failure_error, is_race, Failure, Samples, SAMPLES};
use super::xattr;
use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Finds journalled paths again, fd-relative from the data path, never following a symlink
/// or crossing a mount; keeps the last parent directory open (records come per directory).
struct Resolver<'a> {
    sys: &'a dyn WalkSys,
    root: BorrowedFd<'a>,
    parent: Option<(PathBuf, OwnedFd)>,
    /// The data path's mount id, once read: a pin on another mount is refused.
    root_mnt: Option<u64>,
}

impl<'a> Resolver<'a> {
    fn new(sys: &'a dyn WalkSys, root: BorrowedFd<'a>) -> Self {
        Resolver {
            sys,
            root,
            parent: None,
            root_mnt: None,
        }
    }

    /// Pins `rel` and stats the pin; Err when a component is gone or not a plain
    /// directory any more.
    fn pin(&mut self, rel: &Path) -> std::result::Result<(OwnedFd, Stat), Errno> {
        let Some(name) = rel.file_name() else {
            if !rel.as_os_str().is_empty() {
                return Err(Errno::NOENT);
            }
            let fd = self.sys.pin(self.root, c"")?;
            let st = self.sys.stat(fd.as_fd(), c"")?;
            return Ok((fd, st));
        };
        let name = CString::new(name.as_bytes()).map_err(|_| Errno::INVAL)?;
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let dir = if parent_rel.as_os_str().is_empty() {
            self.root
        } else {
            if self.parent.as_ref().map(|(p, _)| p.as_path()) != Some(parent_rel) {
                self.parent = None;
                let mut dir: Option<OwnedFd> = None;
                for component in parent_rel.components() {
                    let Component::Normal(part) = component else {
                        return Err(Errno::NOENT);
                    };
                    let part = CString::new(part.as_bytes()).map_err(|_| Errno::INVAL)?;
                    let base = dir.as_ref().map(|d| d.as_fd()).unwrap_or(self.root);
                    dir = Some(self.sys.open_subdir(base, &part)?);
                }
                self.parent = Some((parent_rel.to_path_buf(), dir.ok_or(Errno::NOENT)?));
            }
            self.parent.as_ref().expect("just opened").1.as_fd()
        };
        let fd = self.sys.pin(dir, &name)?;
        let st = self.sys.stat(fd.as_fd(), c"")?;
        let root_mnt = match self.root_mnt {
            Some(m) => m,
            None => *self.root_mnt.insert(self.sys.stat(self.root, c"")?.mnt_id),
        };
        // A pin of one name crosses a mount that sits on it: not the journalled file.
        if st.mnt_id != root_mnt {
            return Err(Errno::XDEV);
        }
        Ok((fd, st))
    }
}

/// Whether `st` is the inode `record` was written for: inode numbers are reused, so the
/// creation time must match too where the filesystem keeps one.
fn same_file(record: &Record, st: &Stat) -> bool {
    st.ino == record.ino
        && match (record.btime, st.btime) {
            (Some(a), Some(b)) => a == b,
            (None, _) => true,
            (Some(_), None) => false,
        }
}

type Step<T> = std::result::Result<T, (&'static str, Errno)>;

fn io_error(path: &Path, record: &Record, op: &'static str, errno: Errno) -> Error {
    failure_error(
        path,
        &Failure {
            op,
            rel: record.path.clone(),
            errno,
        },
    )
}

/// The journal's privileged records (setuid/setgid bits or a capability; the first record
/// of each inode, in journal order) and, per inode, every ctime isolate itself left on it
/// (`After` lines of the migration, its crash repair and rollbacks). An inode whose ctime is
/// one of them was changed by nobody else since isolate last changed it: any write, chmod,
/// chown or link change moves ctime, and userspace cannot set it back. Memory: privileged
/// records only.
pub struct Proofs {
    records: Vec<Record>,
    /// By inode number: a parent directory renamed meanwhile (by the stack, or an attacker)
    /// moves neither the file nor its ctime; the record's identity check (inode number and
    /// creation time) comes first.
    ctimes: HashMap<u64, Proof>,
    seen: std::collections::HashSet<(PathBuf, u64)>,
    /// Where the journal's valid part ends (a torn last line is cut off before appending).
    pub valid_len: u64,
    /// A lock of the data top no unlock line followed: a walk was killed while it held it.
    pub open_lock: Option<journal::TopLock>,
}

/// What the journal says of one inode number: the creation times its privileged records
/// name, and the ctimes isolate left on it.
#[derive(Default)]
struct Proof {
    btimes: Vec<Option<(i64, u32)>>,
    ctimes: Vec<(i64, u32)>,
    /// A rollback's chowns announced from one of `ctimes` (see [`Intent`]).
    intents: Vec<Intent>,
    /// A locked migration's chowns to the stack, announced (see `Line::LockedIntent`).
    locked_intents: Vec<Intent>,
}

impl Proof {
    /// Whether `st` is the inode as isolate last left it: a ctime isolate journalled, or
    /// exactly what an announced chown back to the original owner (from a journalled ctime)
    /// leaves, for a rollback killed between that chown and its `After` line.
    fn proves(&self, st: &Stat) -> bool {
        self.ctimes.contains(&st.ctime)
            || (self.intents.iter()).any(|i| self.ctimes.contains(&i.proven_ctime) && i.left(st))
    }
}

fn key(record: &Record) -> (PathBuf, u64) {
    (record.path.clone(), record.ino)
}

impl Proofs {
    /// Reads the journal at `journal_path` (none yet: no proofs).
    pub fn read(journal_path: &Path) -> Result<Proofs> {
        let mut proofs = Proofs {
            records: Vec::new(),
            ctimes: HashMap::new(),
            seen: Default::default(),
            valid_len: 0,
            open_lock: None,
        };
        let valid_len = journal::read(journal_path, |line| {
            match line {
                Line::Before(record) if record.privileged() => {
                    let proof = proofs.ctimes.entry(record.ino).or_default();
                    if !proof.btimes.contains(&record.btime) {
                        proof.btimes.push(record.btime);
                    }
                    if proofs.seen.insert(key(&record)) {
                        proofs.records.push(record);
                    }
                }
                Line::Before(_) => {}
                Line::After(after) => {
                    if let Some(proof) = proofs.ctimes.get_mut(&after.ino) {
                        proof.ctimes.push(after.ctime);
                    }
                }
                // The first open lock holds what the top was before any locked walk.
                Line::Lock(lock) => {
                    proofs.open_lock.get_or_insert(lock);
                }
                Line::Unlock(_) => proofs.open_lock = None,
                Line::Intent(intent) => {
                    if let Some(proof) = proofs.ctimes.get_mut(&intent.ino) {
                        proof.intents.push(intent);
                    }
                }
                Line::LockedIntent(intent) => {
                    if let Some(proof) = proofs.ctimes.get_mut(&intent.ino) {
                        proof.locked_intents.push(intent);
                    }
                }
            }
            Ok(())
        });
        proofs.valid_len = valid_len
            .map_err(|e| Error::io(format!("read journal {}", journal_path.display()), e))?;
        Ok(proofs)
    }

    /// Whether `st` is the inode `record` was written for, as isolate last left it.
    fn own(&self, record: &Record, st: &Stat) -> bool {
        same_file(record, st) && self.ctimes.get(&record.ino).is_some_and(|p| p.proves(st))
    }

    /// [`Proofs::own`], or, while the tree is still locked by the run that was killed (its
    /// lock line open: nobody but root could reach the file since), exactly the state a
    /// locked migration's announced chown to the stack leaves.
    pub fn own_while_locked(&self, record: &Record, st: &Stat) -> bool {
        self.own(record, st)
            || (self.open_lock.is_some()
                && same_file(record, st)
                && self.ctimes.get(&record.ino).is_some_and(|p| {
                    p.locked_intents
                        .iter()
                        .any(|i| i.path == record.path && i.left(st))
                }))
    }

    /// Whether `st` is a privileged journalled inode as isolate last left it (whichever
    /// of its records names it).
    pub fn own_inode(&self, st: &Stat) -> bool {
        self.ctimes.get(&st.ino).is_some_and(|p| {
            p.proves(st)
                && p.btimes.iter().any(|b| match (b, st.btime) {
                    (Some(a), Some(b)) => *a == b,
                    (None, _) => true,
                    (Some(_), None) => false,
                })
        })
    }
}

/// Appends `After` lines to the journal as isolate changes journalled inodes, each right
/// after its change (not synced: kill -9 keeps what was written; a lost line only makes a
/// later run withhold that file's privileges, and say so). Opened at the first line.
pub struct AfterLines<'a> {
    path: &'a Path,
    valid_len: u64,
    journal: Option<Journal>,
}

impl<'a> AfterLines<'a> {
    pub fn new(path: &'a Path, valid_len: u64) -> Self {
        AfterLines {
            path,
            valid_len,
            journal: None,
        }
    }

    /// The journal, opened (and a torn last line cut off) unless a line already did: for
    /// the migration's own appends after the repair's lines.
    pub fn into_journal(self) -> std::io::Result<Journal> {
        match self.journal {
            Some(j) => Ok(j),
            None => Journal::open(self.path, self.valid_len),
        }
    }

    /// Opens the journal now, before the first change: the moment between a change and
    /// its line (a kill there leaves the file unproven) stays a stat and a write.
    pub(crate) fn open(&mut self) -> std::io::Result<&Journal> {
        if self.journal.is_none() {
            self.journal = Some(Journal::open(self.path, self.valid_len)?);
        }
        Ok(self.journal.as_ref().expect("just opened"))
    }

    /// Records the ctime `fd`'s inode has now as isolate's own.
    fn note(&mut self, sys: &dyn WalkSys, fd: BorrowedFd<'_>, path: &Path) -> Step<()> {
        let st = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
        let line = Line::After(Applied {
            path: path.to_path_buf(),
            ino: st.ino,
            ctime: st.ctime,
        });
        self.open()
            .and_then(|j| j.write(std::slice::from_ref(&line)))
            .map_err(|e| {
                (
                    "write the journal about",
                    Errno::from_io_error(&e).unwrap_or(Errno::IO),
                )
            })
    }

    /// Announces the chown of proven `st` back to `record`'s owner (see [`Intent`]).
    fn intent(&mut self, st: &Stat, record: &Record) -> Step<()> {
        let line = Line::Intent(Intent {
            path: record.path.clone(),
            ino: st.ino,
            proven_ctime: st.ctime,
            uid: record.uid,
            gid: record.gid,
            perm: st.perm(),
            mtime: st.mtime,
            size: st.size,
            nlink: st.nlink,
        });
        self.open()
            .and_then(|j| j.write(std::slice::from_ref(&line)))
            .map_err(|e| {
                (
                    "write the journal about",
                    Errno::from_io_error(&e).unwrap_or(Errno::IO),
                )
            })
    }

    /// [`AfterLines::open`] when `proofs` has records to act on.
    fn open_for(&mut self, proofs: &Proofs, journal_path: &Path) -> Result<()> {
        if proofs.records.is_empty() {
            return Ok(());
        }
        self.open()
            .map(drop)
            .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))
    }
}

/// What the crash repair did.
pub struct Repaired {
    pub changed: u64,
    pub missing: u64,
    /// Chowned by the crashed run, but not provably left alone since: their setuid/setgid
    /// bits or capability are not put back.
    pub withheld: Samples,
}

/// Finishes what a crashed run may have left half done on each privileged journalled inode:
/// it was chowned (its owner is what the rules give) but its setuid bits or capability were
/// not put back yet. Only on an inode whose ctime is one isolate left on it (so the stack,
/// which owns it since the chown, did not change it): each step is journalled as isolate's
/// own. Others keep what they have and are reported.
pub fn repair_after_crash(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    rules: &Rules,
    proofs: &Proofs,
    journal: &mut AfterLines<'_>,
) -> Result<Repaired> {
    journal.open_for(proofs, journal.path)?;
    let mut resolver = Resolver::new(sys, root);
    let mut out = Repaired {
        changed: 0,
        missing: 0,
        withheld: Samples::default(),
    };
    for record in &proofs.records {
        let outcome: std::result::Result<Step<()>, Errno> =
            resolver.pin(&record.path).map(|(fd, st)| {
                let fd = fd.as_fd();
                if !same_file(record, &st) {
                    return Err(("stat", Errno::NOENT));
                }
                let owner = rules.owner(record.uid, record.gid);
                if owner == (record.uid, record.gid) || owner != (st.uid, st.gid) {
                    return Ok(());
                }
                let expected_caps = record.caps.as_ref().map(|caps| rules.cap(caps));
                let caps_now = match &expected_caps {
                    None => None,
                    Some(_) => sys
                        .get_xattr(fd, c"", xattr::CAPABILITY)
                        .map_err(|e| ("read security.capability of", e))?,
                };
                let fix_caps = expected_caps.is_some() && caps_now != expected_caps;
                let fix_perm =
                    !st.is_symlink() && record.perm & 0o6000 != 0 && st.perm() != record.perm;
                if !fix_caps && !fix_perm {
                    return Ok(());
                }
                if !proofs.own_while_locked(record, &st) {
                    out.withheld.add(record.path.clone());
                    return Ok(());
                }
                if let (true, Some(caps)) = (fix_caps, &expected_caps) {
                    sys.set_xattr(fd, c"", xattr::CAPABILITY, caps)
                        .map_err(|e| ("write security.capability of", e))?;
                    journal.note(sys, fd, &record.path)?;
                }
                if fix_perm {
                    sys.chmod(fd, c"", record.perm).map_err(|e| ("chmod", e))?;
                    journal.note(sys, fd, &record.path)?;
                }
                out.changed += 1;
                Ok(())
            });
        match outcome {
            Ok(Ok(())) => {}
            Err(e) | Ok(Err((_, e))) if is_race(e) => out.missing += 1,
            Err(e) => return Err(io_error(path, record, "open", e)),
            Ok(Err((op, e))) => return Err(io_error(path, record, op, e)),
        }
    }
    Ok(out)
}

/// Rollback's first phase: every journalled file with setuid/setgid bits or a capability
/// whose ctime is one isolate left on it (after the migration's change, or after an
/// interrupted rollback's own steps: so nothing else wrote, chmod'ed, chown'ed or relinked
/// it since) gets its owner, mode and capability back exactly, before the inverse shift
/// (whose chowns would move ctime). Each step is journalled as isolate's own, so a rollback
/// killed between them is recognised by the next one.
pub fn restore_proven(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    proofs: &Proofs,
    journal: &mut AfterLines<'_>,
) -> Result<u64> {
    journal.open_for(proofs, journal.path)?;
    let mut resolver = Resolver::new(sys, root);
    let mut proven = 0;
    for record in &proofs.records {
        let mut restore = || -> Step<bool> {
            let (fd, st) = match resolver.pin(&record.path) {
                Ok(x) => x,
                Err(e) if is_race(e) => return Ok(false),
                Err(e) => return Err(("open", e)),
            };
            if !proofs.own(record, &st) {
                return Ok(false);
            }
            give_back(sys, fd.as_fd(), &st, record, journal)?;
            Ok(true)
        };
        match restore() {
            Ok(true) => proven += 1,
            Ok(false) => {}
            Err((_, e)) if is_race(e) => {}
            Err((op, e)) => return Err(io_error(path, record, op, e)),
        }
    }
    Ok(proven)
}

/// Gives a proven inode (`st`, pinned as `fd`) everything `record` says it had: owner,
/// capability, mode; each step journalled as isolate's own. Returns whether it changed.
fn give_back(
    sys: &dyn WalkSys,
    fd: BorrowedFd<'_>,
    st: &Stat,
    record: &Record,
    journal: &mut AfterLines<'_>,
) -> Step<bool> {
    let mut changed = false;
    // The owner first: from here on the stack's ids can no longer open it for writing.
    if (st.uid, st.gid) != (record.uid, record.gid) {
        // Only when the owner changes: the original one is then never one of the stack's
        // uids (the migration leaves those), and the one losing the file could set mtime.
        if st.uid != record.uid {
            journal.intent(st, record)?;
        }
        sys.chown(fd, c"", record.uid, record.gid)
            .map_err(|e| ("chown", e))?;
        journal.note(sys, fd, &record.path)?;
        changed = true;
    }
    if let Some(caps) = &record.caps {
        let now = sys
            .get_xattr(fd, c"", xattr::CAPABILITY)
            .map_err(|e| ("read security.capability of", e))?;
        if now.as_deref() != Some(&caps[..]) {
            sys.set_xattr(fd, c"", xattr::CAPABILITY, caps)
                .map_err(|e| ("write security.capability of", e))?;
            journal.note(sys, fd, &record.path)?;
            changed = true;
        }
    }
    if !st.is_symlink() {
        let now = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
        if now.perm() != record.perm {
            sys.chmod(fd, c"", record.perm).map_err(|e| ("chmod", e))?;
            journal.note(sys, fd, &record.path)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// What rollback's journal phase did.
#[derive(Default)]
pub struct Restored {
    pub restored: u64,
    pub missing: u64,
    pub changed: u64,
    /// Records that had privileges the file did not get back (not proven unmodified).
    pub withheld: Samples,
    pub failed: Samples,
    pub failure_messages: Vec<String>,
}

/// Rollback's last phase: every journalled inode that is still the file its record was
/// written for gets its owner and permission bits back. setuid/setgid bits and a capability
/// are never added to a file here: it keeps those it has when its owner is already the
/// original one (given back by `restore_proven`, or by hand), and loses them when this phase
/// chowns it. A directory gets its bits back as recorded. What a privileged record's file
/// lacks afterwards is reported as withheld.
pub fn restore(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    journal_path: &Path,
    proofs: &Proofs,
    after: &mut AfterLines<'_>,
) -> Result<Restored> {
    let mut resolver = Resolver::new(sys, root);
    let mut out = Restored::default();
    let mut each =
        |record: &Record, out: &mut Restored| -> std::result::Result<(), (&'static str, Errno)> {
            let (fd, st) = resolver.pin(&record.path).map_err(|e| ("open", e))?;
            if !same_file(record, &st) {
                return Err(("stat", Errno::NOENT));
            }
            let fd = fd.as_fd();
            if record.privileged() && proofs.own(record, &st) {
                // Missed by the first phase (its path raced) and left alone by the walk.
                if give_back(sys, fd, &st, record, after)? {
                    out.changed += 1;
                }
                out.restored += 1;
                return Ok(());
            }
            let chowned = (st.uid, st.gid) != (record.uid, record.gid);
            if chowned {
                sys.chown(fd, c"", record.uid, record.gid)
                    .map_err(|e| ("chown", e))?;
                out.changed += 1;
            }
            let mut now = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
            if !st.is_symlink() {
                let kept = if st.is_dir() {
                    // On a directory the bits grant nobody anything (setgid: new entries
                    // take its group), and chown keeps them: back as they were.
                    record.perm & 0o6000
                } else if chowned {
                    // The chown just dropped them (the file was not proven above).
                    0
                } else {
                    // Its owner is already the original one: bits it has now were given by
                    // root or that owner (proven above, or put back by hand), never by the
                    // stack, whose chown to this owner would have dropped them.
                    now.perm() & record.perm & 0o6000
                };
                let want = (record.perm & !0o6000) | kept;
                if now.perm() != want {
                    sys.chmod(fd, c"", want).map_err(|e| ("chmod", e))?;
                    now = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
                }
            }
            let caps_back = match &record.caps {
                None => true,
                Some(caps) => {
                    sys.get_xattr(fd, c"", xattr::CAPABILITY)
                        .map_err(|e| ("read security.capability of", e))?
                        .as_deref()
                        == Some(&caps[..])
                }
            };
            if record.privileged() && (now.perm() & 0o6000 != record.perm & 0o6000 || !caps_back) {
                out.withheld.add(record.path.clone());
            }
            out.restored += 1;
            Ok(())
        };
    let read = journal::read(journal_path, |line| {
        if let Line::Before(record) = line {
            match each(&record, &mut out) {
                Ok(()) => {}
                Err((_, e)) if is_race(e) => out.missing += 1,
                Err((op, e)) => {
                    let message = io_error(path, &record, op, e).to_string();
                    out.failed.add(record.path.clone());
                    if out.failure_messages.len() < SAMPLES {
                        out.failure_messages.push(message);
                    }
                }
            }
        }
        Ok(())
    });
    read.map_err(|e| {
        Error::io(
            format!("roll back from journal {}", journal_path.display()),
            e,
        )
    })?;
    Ok(out)
}
