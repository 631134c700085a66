//! Carries out hand-off steps: records what a step changes in the state file before it
//! changes it, re-checks the precondition so a re-run converges, and undoes it all on rollback.
use super::env_files::{self, EnvFileFacts, EnvFileRecord};
use super::error::HandoffError;
use super::service::ServiceRecord;
use super::volumes::{self, Place, VolumePhase, VolumeRecord};
use super::{HandoffRecord, HandoffStep};
use crate::data::Migrator;
use crate::error::{Error, Result};
use crate::host::session::Session;
use crate::ids::Shift;
use crate::layout::Root;
use crate::migration::MigrationSpec;
use crate::model::Outcome;
use crate::state::State;
use crate::walk::{Progress, Summary};
use std::path::{Path, PathBuf};

mod service;
mod volume;
use service::install_service;
pub use service::{pause_service, stop_service, PausedService};
pub use volume::staging_of;
use volume::{move_volume, rollback_volume};

/// Runs one hand-off step.
pub fn run(
    root: &Root,
    step: &HandoffStep,
    stores: Option<&Session<'_>>,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<(Outcome, Option<Summary>)> {
    match step {
        HandoffStep::MoveVolume { .. } => {
            let stores = stores.ok_or_else(|| {
                Error::from(HandoffError::NoSystemd {
                    what: "moving volumes needs the podman sockets",
                })
            })?;
            move_volume(root, step, stores, migrator, progress)
        }
        HandoffStep::InstallService { .. } => {
            let stores = stores.ok_or_else(|| {
                Error::from(HandoffError::NoSystemd {
                    what: "the compose service needs the user's manager",
                })
            })?;
            install_service(root, step, stores).map(|o| (o, None))
        }
        other => run_simple(root, other, stores).map(|o| (o, None)),
    }
}

fn run_simple(root: &Root, step: &HandoffStep, stores: Option<&Session<'_>>) -> Result<Outcome> {
    match step {
        HandoffStep::MoveVolume { .. } | HandoffStep::InstallService { .. } => {
            unreachable!("handled by run")
        }
        HandoffStep::CopyImage {
            image,
            from_user,
            from_uid,
            to_user,
            to_uid,
            ..
        } => copy_image(stores, image, (from_user, *from_uid), (to_user, *to_uid)),
        HandoffStep::EnvFile {
            stack,
            path,
            was,
            id,
            to,
            ..
        } => {
            let now = match env_files::observe(root, path)? {
                EnvFileFacts::File(f) => f,
                other => {
                    return Err(HandoffError::EnvFileChangedSincePlan {
                        path: path.clone(),
                        now: format!("{other:?}"),
                    }
                    .into())
                }
            };
            if now.id == *id && now.links == 1 && env_files::is_handed(&now.owner, to.uid, to.gid) {
                return Ok(Outcome::AlreadyPresent);
            }
            let expected = env_files::Expected {
                uid: was.uid,
                id: Some(*id),
            };
            // The original owner is on disk before the file changes; a re-run after a crash
            // keeps the first record of the same inode (it may already be half changed); a
            // file replaced since is another file, with its own record.
            let mut state = State::read(root)?;
            let rec = state.handoff.entry(stack.clone()).or_default();
            let same = |r: &EnvFileRecord| &r.path == path && r.id.is_none_or(|r| r == *id);
            if !rec.env_files.iter().any(same) {
                rec.env_files.retain(|r| &r.path != path);
                rec.env_files.push(EnvFileRecord {
                    path: path.clone(),
                    was: now.owner,
                    id: Some(*id),
                });
                state.write(root)?;
            }
            env_files::set_owner(root, path, &expected, *to)?;
            Ok(Outcome::Done)
        }
    }
}

/// What rollback did for one stack's hand-off, one line each.
pub type RollbackLines = Vec<String>;

/// Undoes the stack's hand-off: env files get their recorded owner and mode back. Each record
/// leaves the state file only once its undo is done, so a killed rollback resumes.
pub fn rollback(
    root: &Root,
    stack: &str,
    stores: Option<&Session<'_>>,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<RollbackLines> {
    let mut lines = Vec::new();
    let state = State::read(root)?;
    let Some(rec) = state.handoff.get(stack).cloned() else {
        return Ok(lines);
    };
    let target = state
        .stacks
        .get(stack)
        .map(|r| (r.allocation.uid, r.allocation.gid))
        .ok_or_else(|| HandoffError::NoAllocation {
            stack: stack.to_string(),
        })?;
    if let Some(line) = stop_service(root, stack, stores)? {
        lines.push(line);
    }
    for v in rec.volumes.iter().rev() {
        lines.push(rollback_volume(
            root,
            stack,
            v.clone(),
            target,
            migrator,
            progress,
        )?);
    }
    for e in rec.env_files.iter().rev() {
        let back = env_files::restored(e.was);
        match env_files::observe(root, &e.path)? {
            // Only the inode handed over, still the stack's with one name, goes back.
            EnvFileFacts::File(f)
                if f.owner.uid == target.0 && f.links == 1 && e.id.is_none_or(|id| id == f.id) =>
            {
                let expected = env_files::Expected {
                    uid: target.0,
                    id: Some(f.id),
                };
                env_files::set_owner(root, &e.path, &expected, back)?
            }
            EnvFileFacts::File(f) => {
                lines.push(format!(
                    "env file {} is no longer the file handed over (owner uid {}, {} names); left as is",
                    e.path.display(),
                    f.owner.uid,
                    f.links
                ));
                forget_env_file(root, stack, &e.path)?;
                continue;
            }
            EnvFileFacts::Missing => {
                lines.push(format!(
                    "env file {} is gone; nothing to give back",
                    e.path.display()
                ));
                forget_env_file(root, stack, &e.path)?;
                continue;
            }
            other => {
                return Err(HandoffError::EnvFileNotRegular {
                    path: e.path.clone(),
                    now: format!("{other:?}"),
                }
                .into())
            }
        }
        forget_env_file(root, stack, &e.path)?;
        lines.push(format!(
            "env file {}: owner {}:{}, mode {:04o} again",
            e.path.display(),
            back.uid,
            back.gid,
            back.mode
        ));
    }
    Ok(lines)
}

fn forget_env_file(root: &Root, stack: &str, path: &Path) -> Result<()> {
    let mut state = State::read(root)?;
    if let Some(rec) = state.handoff.get_mut(stack) {
        rec.env_files.retain(|r| r.path != path);
        if rec.is_empty() {
            state.handoff.remove(stack);
        }
    }
    state.write(root)
}

/// Whether the stack has hand-off changes a rollback would undo.
pub fn has_rollback(state: &State, stack: &str) -> bool {
    state
        .handoff
        .get(stack)
        .is_some_and(|r| !HandoffRecord::is_empty(r))
}

/// Copies one image and proves it by ID; an image the legacy store lacks is reported.
fn copy_image(
    stores: Option<&Session<'_>>,
    image: &str,
    from: (&str, u32),
    to: (&str, u32),
) -> Result<Outcome> {
    let stores = stores.ok_or_else(|| {
        Error::from(HandoffError::NoSystemd {
            what: "copying images needs the podman sockets",
        })
    })?;
    stores.ensure_socket(from.1)?;
    let Some(want) = stores.image_id(from.1, image)? else {
        return Ok(Outcome::NotFound {
            detail: format!("{} has no image {image} in its podman store", from.0),
        });
    };
    stores.ensure_socket(to.1)?;
    if stores.image_id(to.1, image)?.as_deref() == Some(want.as_str()) {
        return Ok(Outcome::AlreadyPresent);
    }
    stores.copy_image(from.1, to.1, image)?;
    match stores.image_id(to.1, image)? {
        Some(got) if got == want => Ok(Outcome::Done),
        got => Err(HandoffError::ImageIdDiffers {
            image: image.to_string(),
            to_user: to.0.to_string(),
            got,
            want,
            from_user: from.0.to_string(),
        }
        .into()),
    }
}
