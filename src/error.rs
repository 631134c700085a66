//! The core's error kinds. Each kind maps to an exit code and a stable JSON code, so that
//! scripts and monitoring can tell "your input is wrong" from "the host failed us".
use crate::model::Refusals;
use isolate_walk::error::Error as WalkError;
use std::path::PathBuf;

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status when something on the host failed (a command, a syscall, a timeout).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for bad input: policy, arguments, or a host state isolate refuses to touch.
/// Nothing on the host was changed.
pub const EXIT_BAD_INPUT: i32 = 2;

/// Every exit status with its meaning, as the README and isolate(8) print them.
pub const EXIT_STATUS: &[(i32, &str)] = &[
    (EXIT_OK, "success (including \"nothing to do\")"),
    (
        EXIT_FAILURE,
        "something on the host failed (a tool, a syscall, a timeout); the failed stack's later steps were skipped, other stacks went on. For `audit`: a finding at or above `--fail-on` (default `error`); the output was written",
    ),
    (
        EXIT_BAD_INPUT,
        "bad input: a policy problem, an unknown `--stack`, broken or overlapping host files, a refused data path, missing privileges, the lock held, on NixOS accounts the configuration does not declare yet. **Nothing was changed.**",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every problem found in the policy, each already formatted with file:line:column.
    #[error("{}", .0.join("\n"))]
    Policy(Vec<String>),

    #[error("{0}")]
    Usage(String),

    /// The host's own files are in a state isolate will not build on (overlapping subuid lines, ...).
    #[error("{}", .0.join("\n"))]
    HostState(Vec<String>),

    /// Every refusal found before changing anything: typed, one line each.
    #[error("{0}")]
    Refused(Refusals),

    #[error("missing privilege: {0}")]
    Privilege(String),

    /// Another run holds the lock on this root directory.
    #[error("another isolate run holds the lock on {}", .0.display())]
    Locked(PathBuf),

    /// A step failed: the failing module's own typed error (handoff, apply, isolation, reach,
    /// ...) is the source, shown as it is.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync + 'static>),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A host tool (shadow-utils) ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },

    /// The walk engine refused or failed (its own kinds, kept as the cause).
    #[error(transparent)]
    Walk(#[from] isolate_walk::error::Error),

    /// An adapter to the host failed (logind or a systemd manager over D-Bus, a podman API
    /// socket): its own typed error is the source, shown as it is.
    #[error(transparent)]
    Host(Box<dyn std::error::Error + Send + Sync + 'static>),

    /// A wait on a unit failed (`cause`), with the unit's last journal lines after it.
    #[error("{cause}\n{journal}")]
    WithJournal {
        #[source]
        cause: Box<Error>,
        journal: String,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Policy(_)
            | Error::Usage(_)
            | Error::HostState(_)
            | Error::Refused(_)
            | Error::Privilege(_)
            | Error::Locked(_) => EXIT_BAD_INPUT,
            Error::Walk(e) => match e {
                WalkError::Refused(_) | WalkError::Usage(_) => EXIT_BAD_INPUT,
                WalkError::Failed(_) | WalkError::Io { .. } => EXIT_FAILURE,
            },
            Error::Failed(_) | Error::Io { .. } | Error::Tool { .. } | Error::Host(_) => {
                EXIT_FAILURE
            }
            Error::WithJournal { cause, .. } => cause.exit_code(),
        }
    }

    /// A stable machine-readable name for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Policy(_) => "policy",
            Error::Usage(_) => "usage",
            Error::HostState(_) => "host_state",
            Error::Refused(_) => "refused",
            Error::Privilege(_) => "privilege",
            Error::Locked(_) => "locked",
            Error::Failed(_) | Error::Tool { .. } | Error::Host(_) => "failed",
            Error::Io { .. } => "io",
            Error::Walk(e) => match e {
                WalkError::Refused(_) => "refused",
                WalkError::Usage(_) => "usage",
                WalkError::Failed(_) => "failed",
                WalkError::Io { .. } => "io",
            },
            Error::WithJournal { cause, .. } => cause.code(),
        }
    }

    /// A refusal of one: `kind` refused, `text` says what is wrong and what to do.
    pub fn refused(kind: crate::model::RefusalKind, text: impl Into<String>) -> Self {
        Error::Refused(Refusals::one(kind, text))
    }

    /// Wraps a module's own typed error of a failed step, keeping it as the source.
    pub fn failed(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Failed(Box::new(source))
    }

    /// Wraps an adapter's own error, keeping it as the source.
    pub fn host(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Host(Box::new(source))
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl Refusals {
    /// A refusal is bad input: nothing was changed (exit 2); no refusals, success.
    pub fn exit_code(&self) -> i32 {
        if self.is_empty() {
            EXIT_OK
        } else {
            EXIT_BAD_INPUT
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
