//! Why closing, sharing or giving back a share failed on its own terms: inodes the walk could
//! not change, a share's top that is another directory now, a group-only share that is not so
//! yet. The core error wraps them as the source.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("share `{share}`: {failed} inodes could not be changed: {}", failures.join("; "))]
    ShareNotChanged {
        share: String,
        failed: u64,
        failures: Vec<String>,
    },
    /// Group-only mode: the share's top is not yet the group's alone; `w` is "w" for writers.
    #[error(
        "share `{share}` (group-only mode): {p} is not yet group {g}'s with no access for others; \
         on the file server run: chgrp -R {g} {p} && chmod -R g+rX{w},o-rwx {p} && \
         find {p} -type d -exec chmod g+s {{}} +",
        p = path.display(),
        g = group
    )]
    GroupOnlyNotReady {
        share: String,
        path: PathBuf,
        group: String,
        w: &'static str,
    },
    #[error(
        "share `{share}`: {} is another directory than the one isolate changed (inode {now} now, {then} \
         then), so isolate's entries cannot be taken off it: mount or move that directory \
         back and run again; if it is gone for good, move the directory standing there now \
         aside and run again (the share is then forgotten)",
        path.display()
    )]
    ShareTopReplaced {
        share: String,
        path: PathBuf,
        now: u64,
        then: u64,
    },
    #[error(
        "share `{share}` at {}: {failed} inodes could not be changed back and {raced} changed under the walk; \
         it stays recorded, run the rollback again: {}",
        path.display(),
        failures.join("; ")
    )]
    ShareRollbackNotDone {
        share: String,
        path: PathBuf,
        failed: u64,
        raced: u64,
        failures: Vec<String>,
    },
}

impl From<IsolationError> for crate::error::Error {
    fn from(e: IsolationError) -> Self {
        crate::error::Error::failed(e)
    }
}
