// The traversal: a parallel, fd-relative, one-filesystem walk that hands every inode once
// to an `InodeAction`. It knows nothing about owners, so share ACLs and audits can reuse it.
use super::sys::{Stat, WalkSys};
use crate::error::Error;
use indicatif::ProgressBar;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many entries of one directory are planned, journalled and applied together.
const BATCH: usize = 256;
/// How many samples of one kind a summary keeps.
pub const SAMPLES: usize = 10;

/// One inode as the traversal found it.
pub struct Entry<'a> {
    /// The directory holding it (the inode itself, with an empty name, for the data path).
    pub dir: BorrowedFd<'a>,
    /// Its name in `dir`; empty for the data path itself.
    pub name: &'a CStr,
    /// Relative path of `dir` (empty for the data path and its direct entries).
    pub parent: &'a Path,
    pub stat: Stat,
}

impl Entry<'_> {
    /// Relative to the data path; empty for the data path itself. Built on demand: most
    /// inodes never need their path.
    pub fn rel(&self) -> PathBuf {
        rel_join(self.parent, self.name)
    }
}

/// A directory's entry names, NUL-terminated in one buffer (one allocation, not one each).
#[derive(Default)]
struct Names {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Names {
    fn push(&mut self, name: &CStr) {
        self.bytes.extend_from_slice(name.to_bytes_with_nul());
        self.ends.push(self.bytes.len());
    }
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn get(&self, i: usize) -> &CStr {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        CStr::from_bytes_with_nul(&self.bytes[start..self.ends[i]]).expect("pushed as a CStr")
    }
}

/// Counts for one batch, merged into the walk's totals.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub inodes: u64,
    pub changed: u64,
    pub shift: u64,
    pub reown: u64,
    pub already: u64,
    pub outside: u64,
    pub raced: u64,
    pub journalled: u64,
    pub bytes: u64,
    pub outside_samples: Vec<PathBuf>,
    pub raced_samples: Vec<PathBuf>,
    pub mounts_skipped: Vec<PathBuf>,
}

fn push_sample(samples: &mut Vec<PathBuf>, path: PathBuf) {
    if samples.len() < SAMPLES {
        samples.push(path);
    }
}

impl Tally {
    pub fn outside_sample(&mut self, path: &Path) {
        self.outside += 1;
        push_sample(&mut self.outside_samples, path.to_path_buf());
    }

    pub fn raced_sample(&mut self, path: &Path) {
        self.raced += 1;
        push_sample(&mut self.raced_samples, path.to_path_buf());
    }

    fn merge(&mut self, other: Tally) {
        self.inodes += other.inodes;
        self.changed += other.changed;
        self.shift += other.shift;
        self.reown += other.reown;
        self.already += other.already;
        self.outside += other.outside;
        self.raced += other.raced;
        self.journalled += other.journalled;
        self.bytes += other.bytes;
        for p in other.outside_samples {
            push_sample(&mut self.outside_samples, p);
        }
        for p in other.raced_samples {
            push_sample(&mut self.raced_samples, p);
        }
        // Mount points are all listed: there are few and the operator needs every one.
        self.mounts_skipped.extend(other.mounts_skipped);
    }
}

/// A failed syscall on one inode: becomes an error naming the absolute path.
#[derive(Debug)]
pub struct Failure {
    pub op: &'static str,
    pub rel: PathBuf,
    pub errno: Errno,
}

/// Whether an errno means "the entry changed under us" (renamed, removed, swapped for a
/// symlink or a mount): the walk skips such an entry instead of failing. EOPNOTSUPP is what
/// chmod and ACL writes with AT_SYMLINK_NOFOLLOW give once a symlink replaced the entry
/// (attributes the walk writes were read from the same entry, so the filesystem has them).
pub fn is_race(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV | Errno::STALE | Errno::OPNOTSUPP
    )
}

/// The per-inode work the traversal carries. `plan` only reads; `before_apply` sees a whole
/// batch's plans before any is applied (for a write-ahead journal); `apply` changes the inode.
pub trait InodeAction: Sync {
    type Plan: Send;
    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut Tally,
    ) -> Result<Option<Self::Plan>, Failure>;
    fn before_apply(&self, plans: &[Self::Plan], tally: &mut Tally) -> Result<(), Error>;
    fn apply(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        plan: Self::Plan,
        tally: &mut Tally,
    ) -> Result<(), Failure>;
}

struct Walk<'w, A: InodeAction> {
    sys: &'w dyn WalkSys,
    action: &'w A,
    root_path: &'w Path,
    root: Stat,
    hardlinks: Mutex<HashSet<u64>>,
    totals: Mutex<Tally>,
    abort: AtomicBool,
    first_error: Mutex<Option<Error>>,
    progress: Option<&'w ProgressBar>,
}

fn rel_join(rel: &Path, name: &CStr) -> PathBuf {
    if name.is_empty() {
        return rel.to_path_buf();
    }
    rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()))
}

/// Turns a failure into the crate's error with the absolute path in its message.
pub fn failure_error(root_path: &Path, failure: Failure) -> Error {
    let path = if failure.rel.as_os_str().is_empty() {
        root_path.to_path_buf()
    } else {
        root_path.join(&failure.rel)
    };
    Error::io(
        format!("{} {}", failure.op, path.display()),
        std::io::Error::from_raw_os_error(failure.errno.raw_os_error()),
    )
}

impl<'w, A: InodeAction> Walk<'w, A> {
    fn fail(&self, error: Error) {
        self.abort.store(true, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
    }

    fn fail_at(&self, failure: Failure) {
        self.fail(failure_error(self.root_path, failure));
    }

    fn other_mount(&self, stat: &Stat) -> bool {
        stat.dev != self.root.dev || stat.mnt_id != self.root.mnt_id
    }

    /// Plans, journals and applies one batch of entries of `dir`; returns the
    /// subdirectories to descend into (name and inode number seen).
    fn batch(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        names: &Names,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<CString>, Error> {
        let mut tally = Tally::default();
        let count = range.len() as u64;
        let mut planned = Vec::with_capacity(range.len());
        let mut subdirs = Vec::new();
        for name in range.map(|i| names.get(i)) {
            let stat = match self.sys.stat(dir, name) {
                Ok(s) => s,
                Err(e) if is_race(e) => {
                    tally.raced_sample(&rel_join(rel, name));
                    continue;
                }
                Err(errno) => {
                    return Err(failure_error(
                        self.root_path,
                        Failure {
                            op: "stat",
                            rel: rel_join(rel, name),
                            errno,
                        },
                    ))
                }
            };
            if self.other_mount(&stat) {
                tally.mounts_skipped.push(rel_join(rel, name));
                continue;
            }
            if stat.is_dir() {
                subdirs.push(name.to_owned());
            } else if stat.nlink > 1 {
                let first = self
                    .hardlinks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(stat.ino);
                if !first {
                    continue;
                }
            }
            tally.inodes += 1;
            if stat.file_type() == FileType::RegularFile {
                tally.bytes += stat.size;
            }
            let entry = Entry {
                dir,
                name,
                parent: rel,
                stat,
            };
            match self.action.plan(self.sys, &entry, &mut tally) {
                Ok(Some(plan)) => planned.push((entry, plan)),
                Ok(None) => {}
                Err(f) if is_race(f.errno) => tally.raced_sample(&f.rel),
                Err(f) => return Err(failure_error(self.root_path, f)),
            }
        }
        let (entries, plans): (Vec<_>, Vec<_>) = planned.into_iter().unzip();
        self.action.before_apply(&plans, &mut tally)?;
        for (entry, plan) in entries.iter().zip(plans) {
            match self.action.apply(self.sys, entry, plan, &mut tally) {
                Ok(()) => tally.changed += 1,
                Err(f) if is_race(f.errno) => tally.raced_sample(&f.rel),
                Err(f) => return Err(failure_error(self.root_path, f)),
            }
        }
        if let Some(bar) = self.progress {
            bar.inc(count);
        }
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(tally);
        Ok(subdirs)
    }

    /// Reads one directory and works through its entries; subdirectories become tasks
    /// that hold this directory's fd only until they have opened themselves.
    fn directory<'s>(&'s self, scope: &rayon::Scope<'s>, fd: Arc<OwnedFd>, rel: PathBuf)
    where
        'w: 's,
    {
        if self.abort.load(Ordering::Relaxed) {
            return;
        }
        let mut names = Names::default();
        if let Err(errno) = self
            .sys
            .read_dir(fd.as_fd(), &mut |name, _| names.push(name))
        {
            if is_race(errno) {
                let mut tally = Tally::default();
                tally.raced_sample(&rel);
                self.totals.lock().unwrap().merge(tally);
            } else {
                self.fail_at(Failure {
                    op: "read directory",
                    rel,
                    errno,
                });
            }
            return;
        }
        let total = names.len();
        let result = if total > BATCH {
            use rayon::prelude::*;
            (0..total.div_ceil(BATCH))
                .into_par_iter()
                .map(|c| {
                    let range = c * BATCH..((c + 1) * BATCH).min(total);
                    self.batch(fd.as_fd(), &rel, &names, range)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.into_iter().flatten().collect())
        } else {
            self.batch(fd.as_fd(), &rel, &names, 0..total)
        };
        drop(names);
        let subdirs = match result {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        for name in subdirs {
            let parent = Arc::clone(&fd);
            let child_rel = rel_join(&rel, &name);
            scope.spawn(move |scope| {
                if self.abort.load(Ordering::Relaxed) {
                    return;
                }
                // open_subdir refuses symlinks and mount points, so what opens is a plain
                // directory on this filesystem (maybe another one renamed here: still inside).
                let opened = self.sys.open_subdir(parent.as_fd(), &name);
                drop(parent);
                match opened {
                    Ok(child) => self.directory(scope, Arc::new(child), child_rel),
                    Err(errno) if is_race(errno) => {
                        let mut tally = Tally::default();
                        tally.raced_sample(&child_rel);
                        self.totals.lock().unwrap().merge(tally);
                    }
                    Err(errno) => self.fail_at(Failure {
                        op: "open directory",
                        rel: child_rel,
                        errno,
                    }),
                }
            });
        }
    }
}

/// Walks the tree under `root_fd` (the already opened data path), giving every inode on its
/// filesystem, the data path included, once to `action`.
pub fn walk<A: InodeAction>(
    sys: &dyn WalkSys,
    root_path: &Path,
    root_fd: OwnedFd,
    action: &A,
    progress: Option<&ProgressBar>,
) -> Result<Tally, Error> {
    let root = sys.stat(root_fd.as_fd(), c"").map_err(|errno| {
        failure_error(
            root_path,
            Failure {
                op: "stat",
                rel: PathBuf::new(),
                errno,
            },
        )
    })?;
    let walk = Walk {
        sys,
        action,
        root_path,
        root,
        hardlinks: Mutex::new(HashSet::new()),
        totals: Mutex::new(Tally::default()),
        abort: AtomicBool::new(false),
        first_error: Mutex::new(None),
        progress,
    };
    // The data path itself, as a batch of one with an empty name.
    {
        let mut tally = Tally {
            inodes: 1,
            ..Tally::default()
        };
        let entry = Entry {
            dir: root_fd.as_fd(),
            name: c"",
            parent: Path::new(""),
            stat: root,
        };
        let plan = action
            .plan(sys, &entry, &mut tally)
            .map_err(|f| failure_error(root_path, f))?;
        if let Some(plan) = plan {
            action.before_apply(std::slice::from_ref(&plan), &mut tally)?;
            action
                .apply(sys, &entry, plan, &mut tally)
                .map_err(|f| failure_error(root_path, f))?;
            tally.changed += 1;
        }
        walk.totals.lock().unwrap().merge(tally);
    }
    let root_fd = Arc::new(root_fd);
    rayon::scope(|scope| walk.directory(scope, root_fd, PathBuf::new()));
    if let Some(error) = walk
        .first_error
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        return Err(error);
    }
    Ok(walk.totals.into_inner().unwrap_or_else(|e| e.into_inner()))
}
