//! Why a hand-off step failed on its own terms: what changed since the plan, what a store or a
//! directory holds that isolate will not touch, a move or copy that broke off. Each keeps what
//! it names; the core error wraps them as the source.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// `what`: "moving volumes needs the podman sockets", ...
    #[error("{what}, but apply runs with --no-systemd")]
    NoSystemd { what: &'static str },
    #[error("env file {} changed since the plan: {now}", path.display())]
    EnvFileChangedSincePlan {
        path: PathBuf,
        /// What it is now, as isolate shows facts (`{:?}`).
        now: String,
    },
    #[error("env file {} changed since it was checked: {why}; left as is", path.display())]
    EnvFileChanged { path: PathBuf, why: String },
    #[error("env file {} is no longer a regular file ({now}); left as is", path.display())]
    EnvFileNotRegular { path: PathBuf, now: String },
    #[error("env file {} is reached through a symbolic link; isolate never follows one", path.display())]
    EnvFileThroughLink { path: PathBuf },
    #[error("{} cannot be copied: {why}", path.display())]
    CopyUnreadable { path: PathBuf, why: String },
    #[error("{} changed since the plan; run `isolate plan` to see the change, then apply again", path.display())]
    CopyChangedSincePlan { path: PathBuf },
    #[error("{} (owner uid {uid}, mode {mode:04o}) is not root's alone; isolate keeps a stack's copies only below directories nobody else can write", path.display())]
    NotRootsAlone { path: PathBuf, uid: u32, mode: u32 },
    #[error("{} names no file", path.display())]
    NamesNoFile { path: PathBuf },
    #[error("{unit} is active, but project {project} does not run as {user}: {why}")]
    ProjectNotRunning {
        unit: String,
        project: String,
        user: String,
        why: String,
    },
    #[error("{unit} runs in uid {uid}'s manager, which cannot be reached here")]
    ManagerUnreachable { unit: String, uid: u32 },
    #[error("stack `{stack}` has no recorded allocation")]
    NoAllocation { stack: String },
    #[error("image {image} in {to_user}'s store has ID {}, not {want} as in {from_user}'s", got.as_deref().unwrap_or("(none: the load named no such image)"))]
    ImageIdDiffers {
        image: String,
        to_user: String,
        got: Option<String>,
        want: String,
        from_user: String,
    },
    #[error("the volume directory of {} does not exist", path.display())]
    VolumeDirMissing { path: PathBuf },
    #[error("{} no longer exists", path.display())]
    NoLongerExists { path: PathBuf },
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{user}'s podman reports its volume {name} at {}, not at {} where isolate puts the data; nothing moved", reported.display(), expected.display())]
    VolumeElsewhere {
        user: String,
        name: String,
        reported: PathBuf,
        expected: PathBuf,
    },
    #[error("a rollback of volume {name} was interrupted; finish it with `isolate rollback --stack {stack}`")]
    RollbackInterrupted { name: String, stack: String },
    #[error("neither {} nor {} exists: the volume's data is gone", first.display(), second.display())]
    DataGone { first: PathBuf, second: PathBuf },
    /// A walk over a volume's data left problems (`what`: "volume NAME", "rollback of ...").
    #[error("{what} is not done: {}", problems.join("; "))]
    NotDone { what: String, problems: Vec<String> },
    #[error("{} already holds data; isolate never mixes two volumes' data", path.display())]
    TargetHoldsData { path: PathBuf },
    #[error("rm -rf {}: {stderr}", path.display())]
    RemoveFailed { path: PathBuf, stderr: String },
    #[error("cp -a {} {}: {stderr}", from.display(), to.display())]
    CopyFailed {
        from: PathBuf,
        to: PathBuf,
        stderr: String,
    },
    #[error("{} is not the copy isolate made (its directory was changed meanwhile); the original {} is kept", copy.display(), original.display())]
    NotOurCopy { copy: PathBuf, original: PathBuf },
}

impl From<HandoffError> for crate::error::Error {
    fn from(e: HandoffError) -> Self {
        crate::error::Error::failed(e)
    }
}
