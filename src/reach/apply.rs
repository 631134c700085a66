//! Carries out a reach step: records the host ports given now (before anything uses them),
//! then writes the stack's override, root-owned and readable by the stack user, in isolate's
//! own state directory (never in the admin's compose tree).
use super::error::ReachError;
use super::plan::ReachStep;
use super::PortRecord;
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::model::Outcome;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A directory of isolate's own: created root's with mode 0755 (the stack user reads the
/// override below it; a directory of the stack's group, root:GID with g+x as the hand-off's
/// copies make it, lets it through too); anything else in its place is refused, never followed.
fn own_dir(path: &Path, gid: u32) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {
            use std::os::unix::fs::MetadataExt;
            if m.uid() != 0 || m.mode() & 0o022 != 0 {
                return Err(ReachError::NotRootsAlone {
                    path: path.to_path_buf(),
                    uid: m.uid(),
                    mode: m.mode() & 0o7777,
                }
                .into());
            }
            // The stack user's compose reads the override below it.
            let by_group = m.gid() == gid && m.mode() & 0o010 != 0;
            if m.mode() & 0o001 == 0 && !by_group {
                return Err(ReachError::NoWayThrough {
                    path: path.to_path_buf(),
                    mode: m.mode() & 0o7777,
                }
                .into());
            }
            Ok(())
        }
        Ok(_) => Err(ReachError::NotADirectory {
            path: path.to_path_buf(),
        }
        .into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
        }
        Err(e) => Err(Error::io(format!("looking at {}", path.display()), e)),
    }
}

pub fn run(root: &Root, step: &ReachStep) -> Result<Outcome> {
    let mut changed = false;
    if !step.new_ports.is_empty() {
        let at = root.at(&super::ports_record_path());
        let mut record: PortRecord = match std::fs::read(&at) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ReachError::NotIsolates {
                path: at.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PortRecord::default(),
            Err(e) => return Err(Error::io(format!("reading {}", at.display()), e)),
        };
        for (t, p) in &step.new_ports {
            if let Some(other) = record.ports.iter().find(|(k, v)| *v == p && *k != t) {
                return Err(ReachError::PortTaken {
                    port: *p,
                    target: t.clone(),
                    other: other.0.clone(),
                }
                .into());
            }
            if !record.ports.contains_key(t) {
                record.ports.insert(t.clone(), *p);
                changed = true;
            }
        }
        if changed {
            let bytes = serde_json::to_vec_pretty(&record)
                .map_err(|source| ReachError::Serialize { source })?;
            crate::host::files::write_atomic(&at, &bytes, 0o644)?;
        }
    }
    let file = root.at(&step.path);
    let stack_dir = file.parent().ok_or_else(|| ReachError::NoParent {
        path: step.path.clone(),
    })?;
    let stacks_dir = stack_dir.parent().ok_or_else(|| ReachError::NoParent {
        path: stack_dir.to_path_buf(),
    })?;
    own_dir(&root.state_dir(), step.gid)?;
    own_dir(stacks_dir, step.gid)?;
    own_dir(stack_dir, step.gid)?;
    if let Some(c) = &step.conf {
        let at = root.at(&c.path);
        let same = std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_file())
            && std::fs::read_to_string(&at).ok().as_deref() == Some(c.text.as_str());
        if !same {
            // Below the stack user's home: as that user's file, no link followed.
            crate::handoff::service::write_unit(root, &c.path, &c.home, &c.text, c.uid, c.gid)?;
            changed = true;
        }
    }
    if std::fs::read_to_string(&file).ok().as_deref() != Some(step.text.as_str()) {
        crate::host::files::write_atomic(&file, step.text.as_bytes(), 0o644)?;
        changed = true;
    }
    Ok(if changed {
        Outcome::Done
    } else {
        Outcome::AlreadyPresent
    })
}

/// `rollback --stack`: the stack user's containers lose host-loopback access (the drop-in is
/// removed, no link followed). The override and the recorded ports stay: the override is used
/// only by isolate's unit, which rollback removes, and a port is never given again anyway.
pub fn rollback(root: &Root, stack: &str) -> Result<Vec<String>> {
    let state = crate::state::State::read(root)?;
    let Some(a) = state.stacks.get(stack).map(|r| &r.allocation) else {
        return Ok(Vec::new());
    };
    let accounts = crate::host::accounts::Accounts::read(root)?;
    let path = super::conf_path(&crate::handoff::service::home_of(&accounts, a));
    if std::fs::symlink_metadata(root.at(&path)).is_err() {
        return Ok(Vec::new());
    }
    crate::handoff::service::remove_unit(root, &path)?;
    Ok(vec![format!(
        "containers.conf drop-in {} (removed): {}'s containers no longer reach the host's loopback",
        path.display(),
        a.user
    )])
}
