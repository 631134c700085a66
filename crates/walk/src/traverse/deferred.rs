//! Written-ahead plans of any directory, gathered by any walk thread until one journal sync
//! can cover many of them (a sync per small directory was most of a journalled walk), and
//! the walk applying them.
use super::{unopened, Counts, InodeAction, Walk};
use crate::error::Error;
use crate::sys::Stat;
use rustix::fd::{AsFd, OwnedFd};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Written-ahead plans wait, gathered from any directory by any thread, until this many
/// are waiting; then one journal sync covers them all (on ext4 each sync commits every
/// inode changed so far, so a sync per small directory cost most of a journalled walk).
const DEFERRED_PLANS: usize = 1024;
/// ... or until the plans waiting and those being applied hold this many directory
/// descriptors open between them (well under the usual limit of 1024 open files, with
/// the walk threads' own): once they do, each batch's plans are synced on their own.
const DEFERRED_DIRS: usize = 256;

/// A written-ahead plan waiting, with others, for one journal sync: its entry is pinned
/// again (and checked against `stat`) when it is applied.
pub(super) struct Deferred<P> {
    pub dir: Arc<OwnedFd>,
    pub name: CString,
    /// Relative path of `dir`.
    pub parent: PathBuf,
    pub stat: Stat,
    pub plan: P,
}

/// Written-ahead plans taken to be synced and applied, and the directory descriptors
/// they hold (counted each time the directory differs from the previous plan's).
pub(super) struct Group<P> {
    pub plans: Vec<Deferred<P>>,
    pub dirs: usize,
}

/// The written-ahead plans waiting for a sync, and the directories held by the groups
/// being applied.
pub(super) struct Pending<P> {
    waiting: Group<P>,
    dirs_applying: usize,
}

impl<P> Default for Pending<P> {
    fn default() -> Self {
        Pending {
            waiting: Group {
                plans: Vec::new(),
                dirs: 0,
            },
            dirs_applying: 0,
        }
    }
}

impl<P> Pending<P> {
    /// Adds a batch's plans; returns every waiting plan once there are enough to sync.
    pub fn add(&mut self, plans: Vec<Deferred<P>>) -> Option<Group<P>> {
        let waiting = &mut self.waiting;
        for d in plans {
            if waiting
                .plans
                .last()
                .is_none_or(|last| !Arc::ptr_eq(&last.dir, &d.dir))
            {
                waiting.dirs += 1;
            }
            waiting.plans.push(d);
        }
        (waiting.plans.len() >= DEFERRED_PLANS
            || waiting.dirs + self.dirs_applying >= DEFERRED_DIRS)
            .then(|| self.take())
    }

    /// Every waiting plan, counted as being applied until `applied`.
    pub fn take(&mut self) -> Group<P> {
        let group = std::mem::replace(
            &mut self.waiting,
            Group {
                plans: Vec::new(),
                dirs: 0,
            },
        );
        self.dirs_applying += group.dirs;
        group
    }

    pub fn applied(&mut self, dirs: usize) {
        self.dirs_applying -= dirs;
    }
}

impl<A: InodeAction> Walk<'_, A> {
    /// Journals waiting written-ahead plans with one sync, then pins each again, checks
    /// it is still the inode planned, unchanged, and applies it. Once the walk stopped on
    /// an error they are dropped: nothing of theirs was journalled or changed.
    pub(super) fn apply_deferred(&self, group: Group<A::Plan>) -> Result<(), Error> {
        let dirs = group.dirs;
        let applied = self.apply_group(group.plans);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied(dirs);
        applied
    }

    /// [`Walk::apply_deferred`] of the plans themselves.
    fn apply_group(&self, waiting: Vec<Deferred<A::Plan>>) -> Result<(), Error> {
        if waiting.is_empty() || self.abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut counts = Counts::default();
        let mut tally = A::Tally::default();
        let (entries, plans): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .map(|d| ((d.dir, d.name, d.parent, d.stat), d.plan))
            .unzip();
        let planned = entries
            .iter()
            .zip(plans)
            .map(|((dir, name, parent, stat), plan)| {
                (unopened(dir.as_fd(), name, parent, *stat), plan, None)
            })
            .collect();
        self.apply_planned(planned, &mut counts, &mut tally)?;
        self.action.after_batch(&mut tally)?;
        self.merge(counts, tally);
        Ok(())
    }

    /// Applies the written-ahead plans still waiting when every directory was walked.
    pub(super) fn apply_pending(&self) -> Result<(), Error> {
        let waiting = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.apply_deferred(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{RealSys, WalkSys};

    fn waiting(dir: &Arc<OwnedFd>, stat: Stat) -> Vec<Deferred<()>> {
        vec![Deferred {
            dir: Arc::clone(dir),
            name: c"x".to_owned(),
            parent: PathBuf::new(),
            stat,
            plan: (),
        }]
    }

    /// Plans of one directory are synced a group of DEFERRED_PLANS at a time; plans of many
    /// once the directories held, waiting and being applied together, reach DEFERRED_DIRS.
    #[test]
    fn waiting_plans_are_synced_together_until_their_count_or_directories_reach_the_bounds() {
        let sys = RealSys::new();
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<Arc<OwnedFd>> = (0..DEFERRED_DIRS)
            .map(|_| Arc::new(sys.open_root(tmp.path()).unwrap()))
            .collect();
        let stat = sys.stat(dirs[0].as_fd(), c"").unwrap();
        let mut pending = Pending::default();
        for _ in 1..DEFERRED_PLANS {
            assert!(pending.add(waiting(&dirs[0], stat)).is_none());
        }
        let first = pending.add(waiting(&dirs[0], stat)).expect("a full group");
        assert_eq!((first.plans.len(), first.dirs), (DEFERRED_PLANS, 1));
        // The first group, still being applied, holds one directory.
        for dir in &dirs[1..DEFERRED_DIRS - 1] {
            assert!(pending.add(waiting(dir, stat)).is_none());
        }
        let second = pending
            .add(waiting(&dirs[DEFERRED_DIRS - 1], stat))
            .expect("the directory budget reached");
        assert_eq!(second.dirs, DEFERRED_DIRS - 1);
        pending.applied(first.dirs);
        pending.applied(second.dirs);
        assert_eq!(pending.dirs_applying, 0);
        assert!(pending.take().plans.is_empty());
    }
}
