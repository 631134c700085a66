//! Journal replay: finishing what a crashed migration left half done, and the journal
//! phases of a rollback. Every record is applied only to the inode it was written for
//! (same inode number and creation time), pinned through a descriptor found fd-relative
//! from the data path without following a symlink or crossing a mount.
use super::journal::{self, Applied, Line, Record};
use super::rules::Rules;
use super::sys::{Stat, WalkSys};
use super::traverse::{failure_error, is_race, Failure, Samples, SAMPLES};
use super::xattr;
use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
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

fn privileged(record: &Record) -> bool {
    record.perm & 0o6000 != 0 || record.caps.is_some()
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

/// What the crash repair did, and where the journal's valid part ends.
pub struct Repaired {
    pub valid_len: u64,
    /// `After` lines for the inodes it changed (their ctime moved).
    pub after: Vec<Line>,
    pub changed: u64,
    pub missing: u64,
}

/// Finishes what a crashed run may have left half done on each journalled inode: it was
/// chowned (its owner is what the rules give) but its setuid bits or capability were not
/// put back yet.
pub fn repair_after_crash(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    rules: &Rules,
    journal_path: &Path,
) -> Result<Repaired> {
    let mut resolver = Resolver::new(sys, root);
    let mut out = Repaired {
        valid_len: 0,
        after: Vec::new(),
        changed: 0,
        missing: 0,
    };
    let mut each = |record: Record| -> Result<()> {
        let outcome: std::result::Result<Step<bool>, Errno> =
            resolver.pin(&record.path).map(|(fd, st)| {
                let fd = fd.as_fd();
                if !same_file(&record, &st) {
                    return Err(("stat", Errno::NOENT));
                }
                let owner = rules.owner(record.uid, record.gid);
                if owner == (record.uid, record.gid) || owner != (st.uid, st.gid) {
                    return Ok(false);
                }
                let mut changed = false;
                if let Some(caps) = &record.caps {
                    let expected = rules.cap(caps);
                    let current = sys
                        .get_xattr(fd, c"", xattr::CAPABILITY)
                        .map_err(|e| ("read security.capability of", e))?;
                    if current.as_deref() != Some(&expected[..]) {
                        sys.set_xattr(fd, c"", xattr::CAPABILITY, &expected)
                            .map_err(|e| ("write security.capability of", e))?;
                        changed = true;
                    }
                }
                if !st.is_symlink() && record.perm & 0o6000 != 0 && st.perm() != record.perm {
                    sys.chmod(fd, c"", record.perm).map_err(|e| ("chmod", e))?;
                    changed = true;
                }
                if changed {
                    let now = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
                    out.after.push(Line::After(Applied {
                        path: record.path.clone(),
                        ino: now.ino,
                        ctime: now.ctime,
                    }));
                    out.changed += 1;
                }
                Ok(changed)
            });
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Err(e) | Ok(Err((_, e))) if is_race(e) => {
                out.missing += 1;
                Ok(())
            }
            Err(e) => Err(io_error(path, &record, "open", e)),
            Ok(Err((op, e))) => Err(io_error(path, &record, op, e)),
        }
    };
    let mut failure = None;
    let valid_len = journal::read(journal_path, |line| {
        if let Line::Before(record) = line {
            if let Err(e) = each(record) {
                let message = e.to_string();
                failure = Some(e);
                return Err(std::io::Error::other(message));
            }
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    out.valid_len =
        valid_len.map_err(|e| Error::io(format!("read journal {}", journal_path.display()), e))?;
    Ok(out)
}

/// Records (path, inode) whose privileges a rollback gave back: proven unmodified.
pub type Proven = HashSet<(PathBuf, u64)>;

/// Rollback's first phase: every journalled file with setuid/setgid bits or a capability
/// whose ctime still equals the one journalled right after the migration changed it (so
/// nothing wrote, chmod'ed, chown'ed or relinked it since) gets its owner, mode and
/// capability back exactly, before the inverse shift (whose chowns would move ctime).
/// Memory: only privileged records wait for their `After` line.
pub fn restore_proven(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    journal_path: &Path,
) -> Result<Proven> {
    let mut resolver = Resolver::new(sys, root);
    let mut waiting: HashMap<(PathBuf, u64), Record> = HashMap::new();
    let mut proven = Proven::new();
    let mut failure = None;
    let mut restore = |record: &Record, after: &Applied| -> Step<bool> {
        let (fd, st) = match resolver.pin(&record.path) {
            Ok(x) => x,
            Err(e) if is_race(e) => return Ok(false),
            Err(e) => return Err(("open", e)),
        };
        if !same_file(record, &st) || st.ctime != after.ctime {
            return Ok(false);
        }
        let fd = fd.as_fd();
        // The owner first: from here on the stack's ids can no longer open it for writing.
        if (st.uid, st.gid) != (record.uid, record.gid) {
            sys.chown(fd, c"", record.uid, record.gid)
                .map_err(|e| ("chown", e))?;
        }
        if let Some(caps) = &record.caps {
            sys.set_xattr(fd, c"", xattr::CAPABILITY, caps)
                .map_err(|e| ("write security.capability of", e))?;
        }
        if !st.is_symlink() {
            sys.chmod(fd, c"", record.perm).map_err(|e| ("chmod", e))?;
        }
        Ok(true)
    };
    let read = journal::read(journal_path, |line| {
        match line {
            Line::Before(record) if privileged(&record) => {
                waiting.insert((record.path.clone(), record.ino), record);
            }
            Line::Before(_) => {}
            Line::After(after) => {
                let key = (after.path.clone(), after.ino);
                if let Some(record) = waiting.remove(&key) {
                    match restore(&record, &after) {
                        Ok(true) => {
                            proven.insert(key);
                        }
                        Ok(false) => {}
                        Err((op, e)) if !is_race(e) => {
                            let error = io_error(path, &record, op, e);
                            let message = error.to_string();
                            failure = Some(error);
                            return Err(std::io::Error::other(message));
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    read.map_err(|e| {
        Error::io(
            format!("roll back from journal {}", journal_path.display()),
            e,
        )
    })?;
    Ok(proven)
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
/// written for gets its owner and permission bits back; setuid/setgid bits and a
/// capability stay only where `restore_proven` gave them back, and are never added here.
pub fn restore(
    sys: &dyn WalkSys,
    root: BorrowedFd<'_>,
    path: &Path,
    journal_path: &Path,
    proven: &Proven,
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
            let ok = proven.contains(&(record.path.clone(), record.ino));
            if (st.uid, st.gid) != (record.uid, record.gid) {
                sys.chown(fd, c"", record.uid, record.gid)
                    .map_err(|e| ("chown", e))?;
                out.changed += 1;
            }
            let mut now = sys.stat(fd, c"").map_err(|e| ("stat", e))?;
            if !st.is_symlink() {
                let kept = if ok {
                    now.perm() & record.perm & 0o6000
                } else {
                    0
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
            if privileged(record) && (now.perm() & 0o6000 != record.perm & 0o6000 || !caps_back) {
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
