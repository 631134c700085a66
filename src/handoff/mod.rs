//! The stack moves whole: after its data, apply hands the stack user its env files (secrets),
//! copies its images into its own store, moves its named volumes and installs the service that
//! runs its compose project. This module holds those steps, their facts and their records.
pub mod apply;
pub mod env_files;
pub mod observe;
pub mod plan;
pub mod policy;

use env_files::{EnvFileFacts, EnvFileRecord, FileOwner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// What observation found for one stack's hand-off (plain data; tests build it by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackFacts {
    pub env_files: BTreeMap<PathBuf, EnvFileFacts>,
}

/// What isolate changed for a stack's hand-off, in the state file, so rollback can undo it
/// and a killed apply can resume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// Env files as they were before apply first changed them (the first record is kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<EnvFileRecord>,
}

impl HandoffRecord {
    pub fn is_empty(&self) -> bool {
        self.env_files.is_empty()
    }
}

/// One hand-off step of a stack (a `Step::Handoff` of the plan).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "handoff", rename_all = "snake_case")]
pub enum HandoffStep {
    /// The env file becomes the stack user's, mode 0400.
    EnvFile {
        stack: String,
        user: String,
        path: PathBuf,
        was: FileOwner,
        to: FileOwner,
    },
}

impl HandoffStep {
    pub fn stack(&self) -> &str {
        match self {
            HandoffStep::EnvFile { stack, .. } => stack,
        }
    }
}

impl fmt::Display for HandoffStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoffStep::EnvFile {
                stack,
                user,
                path,
                was,
                to,
            } => write!(
                f,
                "~ env file {} of {stack}: owner {user} ({}:{}), mode {:04o} (was {}:{} mode {:04o})",
                path.display(),
                to.uid,
                to.gid,
                to.mode,
                was.uid,
                was.gid,
                was.mode
            ),
        }
    }
}
