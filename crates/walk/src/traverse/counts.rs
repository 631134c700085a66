//! What the traversal counts itself, whatever the action: inodes, bytes, changes, races,
//! mounts not crossed, links reaching outside, failures with their first messages.
use super::{failure_error, is_race, Failure, Samples, SAMPLES};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The traversal's own counts, the same whatever the action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Inodes seen (each hardlinked inode once; mount points not counted).
    pub inodes: u64,
    /// Bytes in regular files seen.
    pub bytes: u64,
    /// Inodes the action changed.
    pub changed: u64,
    /// Entries that changed under the walk (removed, renamed, swapped, or not the inode
    /// planned once pinned): not touched.
    pub raced: Samples,
    /// Mount points inside the data path (relative paths), not crossed. All are listed.
    pub mounts_skipped: Vec<PathBuf>,
    /// Inodes with more links than the walk found inside the data path: never changed.
    pub outside_links: Samples,
    /// Inodes a syscall failed on (EPERM on an immutable file, EROFS, EIO, ...).
    pub failed: Samples,
    /// "path: what failed: why" for the first failures.
    pub failure_messages: Vec<String>,
}

impl Counts {
    pub(super) fn merge(&mut self, other: Counts) {
        self.inodes += other.inodes;
        self.bytes += other.bytes;
        self.changed += other.changed;
        self.raced.merge(other.raced);
        self.mounts_skipped.extend(other.mounts_skipped);
        self.outside_links.merge(other.outside_links);
        self.failed.merge(other.failed);
        let room = SAMPLES.saturating_sub(self.failure_messages.len());
        self.failure_messages
            .extend(other.failure_messages.into_iter().take(room));
    }

    pub(super) fn failure(&mut self, root_path: &Path, f: Failure) {
        let message = failure_error(root_path, &f).to_string();
        self.failed.add(f.rel);
        if self.failure_messages.len() < SAMPLES {
            self.failure_messages.push(message);
        }
    }

    pub(super) fn outcome(&mut self, root_path: &Path, f: Failure) {
        if is_race(f.errno) {
            self.raced.add(f.rel);
        } else {
            self.failure(root_path, f);
        }
    }
}

/// What a walk found: the traversal's counts and the action's.
#[derive(Debug, Default)]
pub struct Walked<T> {
    pub counts: Counts,
    pub tally: T,
}
