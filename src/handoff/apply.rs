//! Carries out hand-off steps: records what a step changes in the state file before it
//! changes it, re-checks the precondition so a re-run converges, and undoes it all on rollback.
use super::env_files::{self, EnvFileFacts, EnvFileRecord};
use super::images::Stores;
use super::{HandoffRecord, HandoffStep};
use crate::apply::Outcome;
use crate::error::{Error, Result};
use crate::state::State;
use std::path::Path;

/// Runs one hand-off step.
pub fn run(root: &Path, step: &HandoffStep, stores: Option<&dyn Stores>) -> Result<Outcome> {
    match step {
        HandoffStep::CopyImage {
            image,
            from_user,
            from_uid,
            to_user,
            to_uid,
            ..
        } => copy_image(stores, image, (from_user, *from_uid), (to_user, *to_uid)),
        HandoffStep::EnvFile {
            stack, path, to, ..
        } => {
            let now = match env_files::observe(root, path)? {
                EnvFileFacts::File(f) => f,
                other => {
                    return Err(Error::Failed(format!(
                        "env file {} changed since the plan: {other:?}",
                        path.display()
                    )))
                }
            };
            if env_files::is_handed(&now, to.uid, to.gid) {
                return Ok(Outcome::AlreadyPresent);
            }
            // The original owner is on disk before the file changes; a re-run after a crash
            // keeps the first record (the file may already be half changed).
            let mut state = State::read(root)?;
            let rec = state.handoff.entry(stack.clone()).or_default();
            if !rec.env_files.iter().any(|r| &r.path == path) {
                rec.env_files.push(EnvFileRecord {
                    path: path.clone(),
                    was: now,
                });
                state.write(root)?;
            }
            env_files::set_owner(root, path, *to)?;
            Ok(Outcome::Done)
        }
    }
}

/// What rollback did for one stack's hand-off, one line each.
pub type RollbackLines = Vec<String>;

/// Undoes the stack's hand-off: env files get their recorded owner and mode back. Each record
/// leaves the state file only once its undo is done, so a killed rollback resumes.
pub fn rollback(root: &Path, stack: &str) -> Result<RollbackLines> {
    let mut lines = Vec::new();
    let state = State::read(root)?;
    let Some(rec) = state.handoff.get(stack).cloned() else {
        return Ok(lines);
    };
    for e in rec.env_files.iter().rev() {
        let back = env_files::restored(e.was);
        match env_files::observe(root, &e.path)? {
            EnvFileFacts::File(_) => env_files::set_owner(root, &e.path, back)?,
            EnvFileFacts::Missing => {
                lines.push(format!(
                    "env file {} is gone; nothing to give back",
                    e.path.display()
                ));
                forget_env_file(root, stack, &e.path)?;
                continue;
            }
            other => {
                return Err(Error::Failed(format!(
                    "env file {} is no longer a regular file ({other:?}); left as is",
                    e.path.display()
                )))
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

fn forget_env_file(root: &Path, stack: &str, path: &Path) -> Result<()> {
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
    stores: Option<&dyn Stores>,
    image: &str,
    from: (&str, u32),
    to: (&str, u32),
) -> Result<Outcome> {
    let stores = stores.ok_or_else(|| {
        Error::Failed(
            "copying images needs the podman sockets, but apply runs with --no-systemd".into(),
        )
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
        got => Err(Error::Failed(format!(
            "image {image} in {}'s store has ID {}, not {want} as in {}'s",
            to.0,
            got.as_deref()
                .unwrap_or("(none: the load named no such image)"),
            from.0
        ))),
    }
}
