//! The stack moves whole: after its data, apply hands the stack user its env files (secrets),
//! copies its images into its own store, moves its named volumes and installs the service that
//! runs its compose project. This module holds those steps, their facts and their records.
pub mod apply;
pub mod compose;
pub mod copies;
pub mod env_files;
pub mod error;
pub mod observe;
pub mod plan;
pub mod service;
pub mod status;
pub mod volumes;

use crate::host::podman::store::ProjectContainer;
use compose::ComposeFacts;
use env_files::{EnvFileFacts, FileId, FileOwner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use crate::state::handoff::HandoffRecord;

/// What observation found for one stack's hand-off (plain data; tests build it by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackFacts {
    pub env_files: BTreeMap<PathBuf, EnvFileFacts>,
    /// The stack's compose files, read and interpolated.
    pub compose: ComposeFacts,
    /// Why the compose files could not be read (plan refuses).
    pub compose_error: Option<String>,
    /// The legacy user's store, when its API socket was listening (plan never starts it).
    pub legacy: Option<LegacyStore>,
    /// Image name -> ID in the stack user's store; empty when its socket is not listening.
    pub stack_images: BTreeMap<String, Option<String>>,
    /// The project's named volumes, as the two stores show them.
    pub volumes: Vec<VolumeFacts>,
    /// The compose service, when the policy asks for one.
    pub service: Option<ServiceFacts>,
}

/// The stack's compose service as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceFacts {
    /// The unit file's text (None: no such file).
    pub text: Option<String>,
    pub enabled: bool,
    pub active: bool,
    /// Whether the project's containers run in the stack user's store: the service's truth
    /// (a oneshot unit stays active when compose exits 0 while every container failed).
    pub project: service::ProjectRuns,
    /// The compose and env files the service runs: originals and isolate's copies.
    pub copies: Vec<copies::CopyFacts>,
}

/// One named volume of the project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VolumeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Its data directory in the legacy store (computed by isolate), when that store has the
    /// volume.
    pub legacy: Option<PathBuf>,
    /// Whether that directory exists.
    pub legacy_data: bool,
    /// Its identity, when it exists and isolate may move it.
    pub legacy_id: Option<volumes::DirId>,
    /// Why isolate must not move it (a link, a mount, a foreign owner, a store that places it
    /// elsewhere); plan refuses.
    pub refused: Vec<String>,
    /// Its data directory in the stack's store (computed by isolate), when that store has the
    /// volume.
    pub stack: Option<PathBuf>,
    /// The stack's directory exists and holds something.
    pub stack_data: bool,
    /// Running containers (any user) that have the legacy directory mounted.
    pub holders: Vec<String>,
}

/// The legacy user's side of a stack, as its podman API socket showed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LegacyStore {
    pub user: String,
    pub uid: u32,
    /// Its containers of the stack's compose project (running or not).
    pub containers: Vec<ProjectContainer>,
    /// Image name -> ID (None: not in its store).
    pub images: BTreeMap<String, Option<String>>,
}

/// The images a stack needs in its own store, in order: its compose files' images, the
/// policy's `images`, then those of the legacy user's containers of the project.
pub fn wanted_images(
    s: &crate::policy::StackPolicy,
    compose: &ComposeFacts,
    containers: &[ProjectContainer],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = compose
        .images
        .iter()
        .cloned()
        .chain(s.handoff.images.iter().map(|i| i.value.clone()))
        .chain(containers.iter().map(|c| c.image.clone()));
    for i in all {
        if !i.is_empty() && !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// One hand-off step of a stack (a `Step::Handoff` of the plan).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "handoff", rename_all = "snake_case")]
pub enum HandoffStep {
    /// The env file becomes the stack user's, mode 0400: only the inode plan saw (`id`), still
    /// the legacy user's (`was.uid`) and with one name.
    EnvFile {
        stack: String,
        user: String,
        path: PathBuf,
        was: FileOwner,
        id: FileId,
        to: FileOwner,
    },
    /// The image is copied from the legacy user's store into the stack user's, then its ID
    /// is checked.
    CopyImage {
        stack: String,
        image: String,
        from_user: String,
        from_uid: u32,
        to_user: String,
        to_uid: u32,
    },
    /// The named volume is created in the stack's store with the same name and labels, its
    /// data moved there and its owners shifted like a data path.
    MoveVolume {
        stack: String,
        name: String,
        labels: BTreeMap<String, String>,
        from_user: String,
        /// Its data directory in the legacy store, as isolate computes it (never as a socket
        /// reports it): `HOME/.local/share/containers/storage/volumes/NAME/_data`.
        from: PathBuf,
        /// That directory's identity when the plan looked (apply moves only that one).
        /// (None when resuming: the record holds it.)
        from_id: Option<volumes::DirId>,
        to_user: String,
        /// Its data directory in the stack's store, computed the same way.
        to: PathBuf,
        to_uid: u32,
        mode: crate::migration::MigrateMode,
        shift: crate::ids::Shift,
        target_uid: u32,
        target_gid: u32,
        resume: bool,
    },
    /// The user unit that runs the compose project is written, enabled and (re)started in the
    /// stack user's manager, then proven by the project's containers running.
    InstallService {
        stack: String,
        user: String,
        uid: u32,
        gid: u32,
        project: String,
        unit: String,
        path: PathBuf,
        home: PathBuf,
        text: String,
        /// isolate's copies of the compose and env files, which the unit runs.
        copies: Vec<copies::CopyStep>,
        /// On NixOS: the unit the configuration declares (`export nixos`); apply writes no
        /// unit of its own then, only the copies, and starts the declared one.
        #[serde(skip_serializing_if = "Option::is_none")]
        declared: Option<PathBuf>,
    },
}

impl HandoffStep {
    pub fn stack(&self) -> &str {
        match self {
            HandoffStep::EnvFile { stack, .. }
            | HandoffStep::CopyImage { stack, .. }
            | HandoffStep::MoveVolume { stack, .. }
            | HandoffStep::InstallService { stack, .. } => stack,
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
                ..
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
            HandoffStep::CopyImage {
                stack,
                image,
                from_user,
                to_user,
                ..
            } => write!(
                f,
                "+ image {image} for {stack}: copy from {from_user}'s podman store into {to_user}'s, check its ID"
            ),
            HandoffStep::MoveVolume {
                stack,
                name,
                from_user,
                from,
                to_user,
                resume,
                ..
            } => write!(
                f,
                "~ volume {name} for {stack}: move {} from {from_user}'s store to {to_user}'s and shift its owners{}",
                from.display(),
                if *resume { " (resuming an interrupted run)" } else { "" }
            ),
            HandoffStep::InstallService {
                stack,
                user,
                unit,
                declared: Some(_),
                ..
            } => write!(
                f,
                "+ service {unit} for {stack}: declared by NixOS (export nixos): not installed; isolate's copies of its files written, the declared unit started in {user}'s manager, proven by its containers"
            ),
            HandoffStep::InstallService {
                stack,
                user,
                project,
                unit,
                path,
                ..
            } => write!(
                f,
                "+ service {unit} for {stack}: runs compose project {project} in {user}'s manager ({}), enabled, started, proven by its containers",
                path.display()
            ),
        }
    }
}
