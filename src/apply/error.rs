//! Why an apply step failed on its own terms (the host's answers keep their own errors): what
//! changed on the host since the plan, what needs systemd under `--no-systemd`, a rollback
//! that is not done. The core error wraps them as the source.
use crate::ids::SubidRange;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no free system gid (101-999) left for the group {group}")]
    NoFreeGid { group: String },
    #[error(
        "stack `{stack}` was recorded meanwhile with uid {uid} and range {subids}; run plan again"
    )]
    RecordedMeanwhile {
        stack: String,
        uid: u32,
        subids: SubidRange,
    },
    #[error("group {group} exists with gid {found}, not {wanted}")]
    GroupHasOtherGid {
        group: String,
        found: u32,
        wanted: u32,
    },
    #[error("user {user} exists with uid {found}, not {wanted}")]
    UserHasOtherUid {
        user: String,
        found: u32,
        wanted: u32,
    },
    /// `what`: "linger", "podman.socket".
    #[error("{what} needs systemd, but apply runs with --no-systemd")]
    NoSystemd { what: &'static str },
    #[error("an isolation step reached the stack step runner")]
    IsolationStepMisrouted,
    #[error("stack `{stack}` has no recorded allocation; cannot migrate")]
    NoAllocation { stack: String },
    #[error("rollback of {} is not done: {}", path.display(), problems.join("; "))]
    RollbackNotDone {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl From<ApplyError> for crate::error::Error {
    fn from(e: ApplyError) -> Self {
        crate::error::Error::failed(e)
    }
}
