//! The walk engine's error kinds, typed so the caller (isolate's `Error`, which wraps this
//! one and keeps it as the cause) maps each to its exit code: a refusal or bad usage changed
//! nothing; a failure or an I/O error is the host's.
use thiserror::Error as ThisError;

#[derive(Debug, ThisError)]
pub enum Error {
    /// A precondition that makes the walk refuse before changing anything.
    #[error("{0}")]
    Refused(String),

    /// An argument the walk cannot take (a thread count out of range).
    #[error("{0}")]
    Usage(String),

    /// Something the walk found on the host that stops it (not an I/O error of its own).
    #[error("{0}")]
    Failed(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
