//! The traversal: a parallel, fd-relative, one-mount walk that hands every inode once to an
//! [`InodeAction`] and keeps its own counts ([`Counts`]) apart from the action's ([`Tally`]).
//! It never follows a symlink, never leaves the data path's mount (decided by mount id, so
//! overlayfs files and btrfs subvolumes are part of the tree), changes an inode only through
//! a descriptor pinned and checked against what was planned (or, in a tree whose top is
//! locked, `walk_locked`, by name relative to its directory: nobody else can reach it), and
//! never hands an action an inode with links outside the walked tree. What an action sees is in `contract`, the
//! traversal's own counts in `counts`, the overlayfs link census in `census`.
mod census;
mod contract;
mod counts;
mod deferred;
mod names;
mod run;

use super::links::{link_hash, LinkSeen, LinkTable};
use super::sys::{Stat, WalkSys};
use crate::error::Error;
use census::{Census, CensusSays, LinkStamp};
use contract::rel_join;
pub use contract::{
    failure_error, is_race, Entry, Failure, InodeAction, Pinned, Samples, Tally, SAMPLES,
};
pub use counts::{Counts, Walked};
use deferred::{Deferred, Pending};
use indicatif::ProgressBar;
use names::Names;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many entries of one directory are planned, journalled and applied together.
const BATCH: usize = 256;
/// statfs f_type of overlayfs: a copy-up splits hardlinks and never changes a lower layer.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// A plan waiting for the journal: the entry, its plan, and its pin if it has one still
/// (checked by fstat again when applied, as a new pin would be).
type Planned<'a, A> = (Entry<'a>, <A as InodeAction>::Plan, Option<OwnedFd>);

/// An entry without its opened descriptor, to be pinned again when applied.
fn unopened<'a>(dir: BorrowedFd<'a>, name: &'a CStr, parent: &'a Path, stat: Stat) -> Entry<'a> {
    Entry {
        dir,
        name,
        parent,
        stat,
        opened: None,
    }
}

struct Walk<'w, A: InodeAction> {
    sys: &'w dyn WalkSys,
    action: &'w A,
    root_path: &'w Path,
    root: Stat,
    /// A locked tree (nobody but root can reach it): every entry is stat'ed, planned and
    /// changed by name relative to its directory's descriptor, with no pin.
    by_name: bool,
    /// The action opens regular files (`OPENS_FILES`) and the tree's mount is `nodev`: no
    /// name swapped for a device node can make the walk open a device.
    opens_files: bool,
    /// overlayfs: every name of a multi-link inode is handed to the action, because a
    /// copy-up splits a lower-layer hardlink (a change through one name leaves the others).
    /// Links are still counted: a read-only action reports inodes with links outside; a
    /// changing one gets a name only if the census found every link of its inode inside.
    per_name: bool,
    /// Changing walks on overlayfs: the links a read-only pass found, by inode identity.
    census: Option<Census>,
    links: LinkTable,
    /// Per-name mode only: multi-link inodes changed through one name, so another name of
    /// the same (upper-layer) inode that no longer matches its plan is not a race.
    changed_links: Mutex<HashSet<(u64, u64)>>,
    /// Per-name mode only: (device, inode, ctime, link count) a multi-link inode had right
    /// after this walk changed it: another of its names showing that is isolate's own
    /// change, not someone else's.
    own_stamps: Mutex<HashSet<LinkStamp>>,
    counts: Mutex<Counts>,
    tally: Mutex<A::Tally>,
    /// Written-ahead plans of any directory waiting for one journal sync.
    pending: Mutex<Pending<A::Plan>>,
    abort: AtomicBool,
    first_error: Mutex<Option<Error>>,
    progress: Option<&'w ProgressBar>,
}

impl<'w, A: InodeAction> Walk<'w, A> {
    fn fail(&self, error: Error) {
        self.abort.store(true, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
    }

    fn merge(&self, counts: Counts, tally: A::Tally) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(counts);
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(tally);
    }

    fn other_mount(&self, stat: &Stat) -> bool {
        if self.root.mnt_id != 0 && stat.mnt_id != 0 {
            stat.mnt_id != self.root.mnt_id
        } else {
            stat.dev != self.root.dev
        }
    }

    /// Counts one link of a multi-link inode; `last` once every link was seen inside, with
    /// no link change (which moves ctime) since the first was counted.
    fn link_seen(&self, dir_ino: u64, name: &CStr, rel: &Path, stat: &Stat) -> LinkSeen {
        self.links.seen(
            (stat.dev, stat.ino),
            link_hash(dir_ino, name.to_bytes()),
            stat.nlink,
            stat.ctime,
            || rel_join(rel, name),
        )
    }

    /// Whether a changing walk on overlayfs may hand this name of a multi-link inode over:
    /// the census found all its links inside and it still has the links and ctime the
    /// census saw, or those this walk's own change left.
    fn census_says(&self, census: &Census, stat: &Stat) -> CensusSays {
        let key = (stat.dev, stat.ino);
        if census.outside.contains(&key) {
            return CensusSays::Outside;
        }
        let own = || {
            self.own_stamps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(stat.dev, stat.ino, stat.ctime, stat.nlink))
        };
        match census.inside.get(&key) {
            Some(seen) if *seen == (stat.ctime, stat.nlink) || own() => CensusSays::Inside,
            _ => CensusSays::Changed,
        }
    }

    fn changed_through_another_name(&self, planned: &Stat) -> bool {
        self.per_name
            && planned.nlink > 1
            && self
                .changed_links
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(planned.dev, planned.ino))
    }

    /// Plans, journals and applies one batch of entries of `dir`; returns the
    /// subdirectories to descend into (name and inode number).
    fn batch(
        &self,
        dir_fd: &Arc<OwnedFd>,
        dir_ino: u64,
        rel: &Path,
        names: &Names,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<(CString, u64)>, Error> {
        let dir = dir_fd.as_fd();
        let mut counts = Counts::default();
        let mut tally = A::Tally::default();
        let count = range.len() as u64;
        let mut planned = Vec::new();
        let mut deferred = Vec::new();
        let mut subdirs = Vec::new();
        for (name, listed) in range.map(|i| (names.get(i), names.listed(i))) {
            let (stat, pin) = match self.stat_entry(dir, name, listed) {
                Ok(found) => found,
                Err((op, errno)) => {
                    counts.outcome(
                        self.root_path,
                        Failure {
                            op,
                            rel: rel_join(rel, name),
                            errno,
                        },
                    );
                    continue;
                }
            };
            if self.other_mount(&stat) {
                counts.mounts_skipped.push(rel_join(rel, name));
                continue;
            }
            if stat.is_dir() {
                subdirs.push((name.to_owned(), stat.ino));
            } else if stat.nlink > 1 {
                match &self.census {
                    Some(census) => match self.census_says(census, &stat) {
                        CensusSays::Inside => {}
                        // Counted once, from the census, when the walk ends.
                        CensusSays::Outside => continue,
                        CensusSays::Changed => {
                            counts.raced.add(rel_join(rel, name));
                            continue;
                        }
                    },
                    None => {
                        let seen = self.link_seen(dir_ino, name, rel, &stat);
                        let handed =
                            self.per_name || if A::READ_ONLY { seen.first } else { seen.last };
                        if !handed {
                            continue;
                        }
                    }
                }
            }
            counts.inodes += 1;
            if stat.file_type() == FileType::RegularFile {
                counts.bytes += stat.size;
            }
            let opened = pin
                .as_ref()
                .filter(|_| self.opens_files && listed == FileType::RegularFile);
            let entry = Entry {
                dir,
                name,
                parent: rel,
                stat,
                opened: opened.map(|fd| fd.as_fd()),
            };
            match self.action.plan(self.sys, &entry, &mut tally) {
                Ok(Some(plan)) if self.action.written_ahead(&plan) => {
                    // Waits for a sync with others (its pin closed meanwhile: it is pinned
                    // again and checked then).
                    drop(pin);
                    deferred.push(Deferred {
                        dir: Arc::clone(dir_fd),
                        name: name.to_owned(),
                        parent: rel.to_path_buf(),
                        stat,
                        plan,
                    });
                }
                Ok(Some(plan)) => match &pin {
                    Some(fd) => {
                        let target = Pinned {
                            fd: fd.as_fd(),
                            name: c"",
                            entry: &entry,
                        };
                        self.apply_one(&target, plan, &mut counts, &mut tally);
                    }
                    None if self.by_name => {
                        let target = Pinned {
                            fd: dir,
                            name,
                            entry: &entry,
                        };
                        self.apply_one(&target, plan, &mut counts, &mut tally);
                    }
                    None => planned.push((unopened(dir, name, rel, stat), plan, None)),
                },
                Ok(None) => {}
                Err(f) => counts.outcome(self.root_path, f),
            }
        }
        self.apply_planned(planned, &mut counts, &mut tally)?;
        self.action.after_batch(&mut tally)?;
        if let Some(bar) = self.progress {
            bar.inc(count);
        }
        self.merge(counts, tally);
        if !deferred.is_empty() {
            let ready = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(deferred);
            if let Some(group) = ready {
                self.apply_deferred(group)?;
            }
        }
        Ok(subdirs)
    }

    /// The stat of one entry: for a changing action through a pin (returned with it, so
    /// the change goes to the inode the plan was made for); by name for the others. A pin
    /// crosses a mount on the name: the caller's mount-id check skips it as a mount point.
    fn stat_entry(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        listed: FileType,
    ) -> Result<(Stat, Option<OwnedFd>), (&'static str, Errno)> {
        if !A::CHANGES || self.by_name {
            return self
                .sys
                .stat(dir, name)
                .map(|stat| (stat, None))
                .map_err(|errno| ("stat", errno));
        }
        let fd = self
            .pin(dir, name, listed)
            .map_err(|errno| ("open", errno))?;
        let stat = self
            .sys
            .stat(fd.as_fd(), c"")
            .map_err(|errno| ("stat", errno))?;
        Ok((stat, Some(fd)))
    }

    /// Pins one entry: a regular file (as listed) opened for real if the action asks for it
    /// (`OPENS_FILES`) and the mount opens no devices, anything else `O_PATH`.
    fn pin(&self, dir: BorrowedFd<'_>, name: &CStr, listed: FileType) -> Result<OwnedFd, Errno> {
        if self.opens_files && listed == FileType::RegularFile {
            self.sys.open_file(dir, name)
        } else {
            self.sys.pin(dir, name)
        }
    }

    /// Applies one plan to its pinned inode and counts the outcome.
    fn apply_one(
        &self,
        target: &Pinned<'_>,
        plan: A::Plan,
        counts: &mut Counts,
        tally: &mut A::Tally,
    ) {
        let entry = target.entry;
        match self.action.apply(self.sys, target, plan, tally) {
            Ok(()) => {
                counts.changed += 1;
                if self.per_name && entry.stat.nlink > 1 && !entry.stat.is_dir() {
                    self.changed_links
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((entry.stat.dev, entry.stat.ino));
                    if let Ok(now) = self.sys.stat(target.fd, target.name) {
                        self.own_stamps
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert((now.dev, now.ino, now.ctime, now.nlink));
                    }
                }
            }
            Err(f) => counts.outcome(self.root_path, f),
        }
    }

    /// Journals the written-ahead plans, then pins each again, checks it is still the
    /// inode planned, unchanged, and applies it.
    fn apply_planned(
        &self,
        planned: Vec<Planned<'_, A>>,
        counts: &mut Counts,
        tally: &mut A::Tally,
    ) -> Result<(), Error> {
        if planned.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(planned.len());
        let mut plans = Vec::with_capacity(planned.len());
        let mut pins = Vec::with_capacity(planned.len());
        for (entry, plan, pin) in planned {
            entries.push(entry);
            plans.push(plan);
            pins.push(pin);
        }
        self.action.before_apply(&plans, tally)?;
        for ((entry, plan), kept) in entries.iter().zip(plans).zip(pins) {
            if self.by_name {
                // Locked: the name still names the inode the plan was made from.
                let target = Pinned {
                    fd: entry.dir,
                    name: entry.name,
                    entry,
                };
                self.apply_one(&target, plan, counts, tally);
                continue;
            }
            let pinned = match kept.map_or_else(
                || self.pin(entry.dir, entry.name, entry.stat.file_type()),
                Ok,
            ) {
                Ok(fd) => fd,
                Err(errno) => {
                    counts.outcome(self.root_path, Failure::new("open", entry, errno));
                    continue;
                }
            };
            match self.sys.stat(pinned.as_fd(), c"") {
                Ok(now) if now.unchanged(&entry.stat) => {}
                // Swapped, relinked or changed since it was planned: not what was planned.
                Ok(_) => {
                    if !self.changed_through_another_name(&entry.stat) {
                        counts.raced.add(entry.rel());
                    }
                    continue;
                }
                Err(errno) => {
                    counts.outcome(self.root_path, Failure::new("stat", entry, errno));
                    continue;
                }
            }
            let target = Pinned {
                fd: pinned.as_fd(),
                name: c"",
                entry,
            };
            self.apply_one(&target, plan, counts, tally);
        }
        Ok(())
    }

    /// The data path itself, as a batch of one with an empty name.
    fn top(&self, root_fd: BorrowedFd<'_>, root: Stat) -> Result<(), Error> {
        let mut counts = Counts {
            inodes: 1,
            ..Counts::default()
        };
        let mut tally = A::Tally::default();
        let entry = Entry {
            dir: root_fd,
            name: c"",
            parent: Path::new(""),
            stat: root,
            opened: None,
        };
        match self.action.plan(self.sys, &entry, &mut tally) {
            Ok(Some(plan)) => {
                self.apply_planned(vec![(entry, plan, None)], &mut counts, &mut tally)?;
                self.action.after_batch(&mut tally)?;
            }
            Ok(None) => {}
            Err(f) => counts.outcome(self.root_path, f),
        }
        self.merge(counts, tally);
        Ok(())
    }

    /// Reads one directory and works through its entries; subdirectories become tasks
    /// that hold this directory's fd only until they have opened themselves.
    fn directory<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        fd: Arc<OwnedFd>,
        dir_ino: u64,
        rel: PathBuf,
    ) where
        'w: 's,
    {
        if self.abort.load(Ordering::Relaxed) {
            return;
        }
        let mut names = Names::default();
        if let Err(errno) = self
            .sys
            .read_dir(fd.as_fd(), &mut |name, listed| names.push(name, listed))
        {
            let mut counts = Counts::default();
            counts.outcome(
                self.root_path,
                Failure {
                    op: "read directory",
                    rel,
                    errno,
                },
            );
            self.merge(counts, A::Tally::default());
            return;
        }
        let total = names.len();
        let result = if total > BATCH {
            use rayon::prelude::*;
            (0..total.div_ceil(BATCH))
                .into_par_iter()
                .map(|c| {
                    let range = c * BATCH..((c + 1) * BATCH).min(total);
                    self.batch(&fd, dir_ino, &rel, &names, range)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.into_iter().flatten().collect())
        } else {
            self.batch(&fd, dir_ino, &rel, &names, 0..total)
        };
        drop(names);
        let subdirs = match result {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        for (name, ino) in subdirs {
            let parent = Arc::clone(&fd);
            let child_rel = rel_join(&rel, &name);
            scope.spawn(move |scope| {
                if self.abort.load(Ordering::Relaxed) {
                    return;
                }
                // open_subdir refuses symlinks and mount points, so what opens is a plain
                // directory on this mount (maybe another one renamed here: still inside).
                let opened = self.sys.open_subdir(parent.as_fd(), &name);
                drop(parent);
                match opened {
                    Ok(child) => self.directory(scope, Arc::new(child), ino, child_rel),
                    Err(errno) => {
                        let mut counts = Counts::default();
                        counts.outcome(
                            self.root_path,
                            Failure {
                                op: "open directory",
                                rel: child_rel,
                                errno,
                            },
                        );
                        self.merge(counts, A::Tally::default());
                    }
                }
            });
        }
    }
}

/// Walks the tree under `root_fd` (the already opened data path), giving every inode on its
/// mount, the data path included, once to `action`. Per-inode failures and races are
/// counted; only a failure of the action's own bookkeeping (the journal) stops the walk.
pub fn walk<A: InodeAction>(
    sys: &dyn WalkSys,
    root_path: &Path,
    root_fd: OwnedFd,
    action: &A,
    progress: Option<&ProgressBar>,
) -> Result<Walked<A::Tally>, Error> {
    run::run(sys, root_path, root_fd, action, progress, None)
}

/// Called once everything below the locked top was walked (or the walk stopped), with the
/// top's descriptor: gives the top its previous owner and mode back.
pub type Unlock<'u> = &'u mut dyn FnMut(BorrowedFd<'_>) -> Result<(), Error>;

/// [`walk`] for a tree whose top is locked (root's alone, and nobody was found inside): every
/// entry below is changed by name, with no pin; then `unlock` runs (also when the walk
/// stops on an error), and the top itself is planned and changed last, as it then is.
pub fn walk_locked<A: InodeAction>(
    sys: &dyn WalkSys,
    root_path: &Path,
    root_fd: OwnedFd,
    action: &A,
    progress: Option<&ProgressBar>,
    unlock: Unlock<'_>,
) -> Result<Walked<A::Tally>, Error> {
    run::run(sys, root_path, root_fd, action, progress, Some(unlock))
}
