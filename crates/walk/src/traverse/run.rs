//! The body of a walk: opens nothing itself, builds the shared walk state (overlayfs census
//! included), runs the parallel traversal, unlocks and walks a locked top last, and turns
//! what was counted into [`Walked`].
use super::census::census;
use super::{
    failure_error, Counts, Failure, InodeAction, Unlock, Walk, Walked, OVERLAYFS_SUPER_MAGIC,
    SAMPLES,
};
use crate::error::Error;
use crate::links::LinkTable;
use crate::sys::{Stat, WalkSys};
use indicatif::ProgressBar;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

fn stat_root(sys: &dyn WalkSys, root_path: &Path, root_fd: BorrowedFd<'_>) -> Result<Stat, Error> {
    sys.stat(root_fd, c"").map_err(|errno| {
        failure_error(
            root_path,
            &Failure {
                op: "stat",
                rel: PathBuf::new(),
                errno,
            },
        )
    })
}

pub(super) fn run<A: InodeAction>(
    sys: &dyn WalkSys,
    root_path: &Path,
    root_fd: OwnedFd,
    action: &A,
    progress: Option<&ProgressBar>,
    mut unlock: Option<Unlock<'_>>,
) -> Result<Walked<A::Tally>, Error> {
    let root = stat_root(sys, root_path, root_fd.as_fd())?;
    let per_name = sys
        .fs_type(root_fd.as_fd())
        .is_ok_and(|t| t == OVERLAYFS_SUPER_MAGIC);
    let census = if per_name && A::CHANGES {
        // Its own open file description: a dup would share the directory offset.
        let again = sys.open_subdir(root_fd.as_fd(), c".").map_err(|errno| {
            failure_error(
                root_path,
                &Failure {
                    op: "open",
                    rel: PathBuf::new(),
                    errno,
                },
            )
        })?;
        Some(census(sys, root_path, again)?)
    } else {
        None
    };
    let mut walk = Walk {
        sys,
        action,
        root_path,
        root,
        by_name: unlock.is_some() && A::CHANGES,
        opens_files: A::OPENS_FILES && sys.devices_open(root_fd.as_fd()) == Ok(false),
        per_name,
        census,
        links: LinkTable::default(),
        changed_links: Mutex::new(HashSet::new()),
        own_stamps: Mutex::new(HashSet::new()),
        counts: Mutex::new(Counts::default()),
        tally: Mutex::new(A::Tally::default()),
        pending: Mutex::new(Default::default()),
        abort: AtomicBool::new(false),
        first_error: Mutex::new(None),
        progress,
    };
    let root_fd = Arc::new(root_fd);
    if unlock.is_none() {
        walk.top(root_fd.as_fd(), root)?;
    }
    rayon::scope(|scope| walk.directory(scope, Arc::clone(&root_fd), root.ino, PathBuf::new()));
    // Before the top is unlocked: in a locked tree they are applied by name.
    if let Err(e) = walk.apply_pending() {
        walk.fail(e);
    }
    if let Some(unlock) = unlock.as_mut() {
        // The top last, as unlocking left it: the walk of it is by its own descriptor.
        unlock(root_fd.as_fd())?;
        walk.by_name = false;
        let now = stat_root(sys, root_path, root_fd.as_fd())?;
        if walk
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            walk.top(root_fd.as_fd(), now)?;
        }
    }
    if let Some(error) = walk
        .first_error
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        return Err(error);
    }
    let mut counts = walk.counts.into_inner().unwrap_or_else(|e| e.into_inner());
    // What is still counting links has links the walk did not find: never handed over
    // (but to a read-only action, which saw and counted them at their first link).
    let (mut open, mut samples) = walk.links.into_open();
    if let Some(census) = walk.census {
        open += census.outside.len() as u64;
        samples.extend(census.samples);
        samples.sort();
    }
    if !A::READ_ONLY {
        counts.inodes += open;
    }
    counts.outside_links.count += open;
    counts.outside_links.samples = samples.into_iter().take(SAMPLES).collect();
    counts.mounts_skipped.sort();
    Ok(Walked {
        counts,
        tally: walk.tally.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}
