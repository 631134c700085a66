//! Why writing a stack's reach override or the host-port record failed on its own terms: a
//! directory isolate does not own in the way, a record that is not isolate's, a port taken
//! since the plan; and why the legacy user's compose run (legacy_run.rs) did not happen or
//! failed. The core error wraps them as the source.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("{} is not root's alone (uid {uid}, mode {mode:04o}); isolate writes overrides only into its own directories", path.display())]
    NotRootsAlone { path: PathBuf, uid: u32, mode: u32 },
    #[error("{} (mode {mode:04o}) does not let the stack user through to its reach override; give it o+x", path.display())]
    NoWayThrough { path: PathBuf, mode: u32 },
    #[error("{} is not a directory (a link?); isolate never follows one", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is not isolate's: {source}", path.display())]
    NotIsolates {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("host port {port} for {target} was given to {other} since the plan; plan again")]
    PortTaken {
        port: u16,
        target: String,
        other: String,
    },
    #[error("serializing the port record: {source}")]
    Serialize {
        #[source]
        source: serde_json::Error,
    },
    #[error("{} has no parent", path.display())]
    NoParent { path: PathBuf },
    #[error("running compose as {user} needs the host itself (--root {})", root.display())]
    NotOnHost { user: String, root: PathBuf },
    #[error("no user {user} in /etc/passwd")]
    NoSuchUser { user: String },
    #[error(
        "{user} is uid 0; isolate runs the legacy user's compose only as an unprivileged user"
    )]
    Uid0 { user: String },
    #[error("an empty compose command")]
    EmptyCommand,
    #[error("{} holds a NUL byte", path.display())]
    NulByte { path: PathBuf },
    #[error("`{shown}` as {user} exited with {status}:\n{tail}")]
    ComposeFailed {
        shown: String,
        user: String,
        status: std::process::ExitStatus,
        tail: String,
    },
    #[error("`{shown}` as {user} did not finish in {secs} s (killed):\n{tail}")]
    ComposeTimedOut {
        shown: String,
        user: String,
        secs: u64,
        tail: String,
    },
    #[error("serializing the legacy publish record: {source}")]
    SerializeLegacy {
        #[source]
        source: serde_json::Error,
    },
    #[error("{} (uid {uid}, mode {mode:04o}) is not root's with o+x alone; the legacy user's compose reads isolate's file below it", path.display())]
    LegacyDirNotOpen { path: PathBuf, uid: u32, mode: u32 },
    #[error("compose cannot be run as the legacy user here (--no-systemd)")]
    NoComposeRunner,
}

impl From<ReachError> for crate::error::Error {
    fn from(e: ReachError) -> Self {
        crate::error::Error::failed(e)
    }
}
