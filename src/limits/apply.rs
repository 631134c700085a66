//! Writing and removing a stack's slice drop-in: the precondition re-checked (the same text is
//! "already present"; a file isolate did not write is left alone and refused), the file written
//! atomically under the root, then the system manager's daemon-reload and the settings put on
//! the running slice's cgroup (which a reload alone does not do), restarting nothing. `rollback` is the undo of `rollback --stack`.
use super::dropin;
use super::error::LimitsError;
use super::observe::read_optional;
use super::plan::LimitsStep;
use crate::error::Result;
use crate::host::systemd::SystemdPort;
use crate::layout::Root;
use crate::model::Outcome;
use std::path::Path;

/// Carries out the step; `systemd` None (--no-systemd): the file changes, nothing is reloaded.
pub fn run(root: &Root, step: &LimitsStep, systemd: Option<&dyn SystemdPort>) -> Result<Outcome> {
    let on_host = root.at(&step.path);
    let found = read_optional(&on_host)?;
    if let Some(text) = &found {
        if !dropin::is_isolates(text) {
            return Err(not_isolates(&step.stack, &step.path));
        }
    }
    match &step.text {
        Some(text) if found.as_deref() == Some(text.as_str()) => {
            return Ok(Outcome::AlreadyPresent)
        }
        None if found.is_none() => return Ok(Outcome::AlreadyPresent),
        Some(text) => crate::host::files::write_atomic(&on_host, text.as_bytes(), 0o644)?,
        None => remove(&on_host)?,
    }
    if let Some(systemd) = systemd {
        systemd.daemon_reload_system()?;
        systemd.apply_slice_now(&dropin::slice(step.uid))?;
    }
    Ok(Outcome::Done)
}

fn not_isolates(stack: &str, path: &Path) -> crate::error::Error {
    LimitsError::NotIsolates {
        stack: stack.to_string(),
        path: path.to_path_buf(),
    }
    .into()
}

/// Removes the drop-in and then its directory when nothing else is left in it.
fn remove(on_host: &Path) -> Result<()> {
    std::fs::remove_file(on_host).map_err(|source| LimitsError::Remove {
        path: on_host.to_path_buf(),
        source,
    })?;
    if let Some(dir) = on_host.parent() {
        // Someone else's drop-in beside isolate's keeps the directory.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// `rollback --stack`: removes the stack's drop-in (its uid from the state file) when isolate
/// wrote it, then daemon-reloads; the lines say what went. A drop-in someone else wrote stays.
pub fn rollback(
    root: &Root,
    stack: &str,
    systemd: Option<&dyn SystemdPort>,
) -> Result<Vec<String>> {
    let state = crate::state::State::read(root)?;
    let Some(record) = state.stacks.get(stack) else {
        return Ok(Vec::new());
    };
    let path = dropin::path(record.allocation.uid);
    let on_host = root.at(&path);
    match read_optional(&on_host)? {
        Some(text) if dropin::is_isolates(&text) => {
            remove(&on_host)?;
            if let Some(systemd) = systemd {
                systemd.daemon_reload_system()?;
                systemd.apply_slice_now(&dropin::slice(record.allocation.uid))?;
            }
            Ok(vec![format!(
                "limits of stack {stack}: removed {}",
                crate::model::escape::path(&path)
            )])
        }
        _ => Ok(Vec::new()),
    }
}
