//! Why writing a stack's reach override or the host-port record failed on its own terms: a
//! directory isolate does not own in the way, a record that is not isolate's, a port taken
//! since the plan. The core error wraps them as the source.
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
}

impl From<ReachError> for crate::error::Error {
    fn from(e: ReachError) -> Self {
        crate::error::Error::failed(e)
    }
}
