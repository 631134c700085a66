//! Why a stack's slice drop-in could not be written or removed on isolate's terms. The core
//! error wraps it as the source.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("{} exists and was not written by isolate (no `# Written by isolate` header); move it away or fold its settings into [stacks.{stack}.limits]", path.display())]
    NotIsolates { stack: String, path: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<LimitsError> for crate::error::Error {
    fn from(e: LimitsError) -> Self {
        crate::error::Error::failed(e)
    }
}
