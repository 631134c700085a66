//! `rollback --stack` of a quadlet stack, in two halves around the data's rollback: first the
//! stack user's units stop and the files isolate wrote go (its containers hold the data), then,
//! once the data has its old owners, the parked legacy files go back where they were, as
//! whom they were, and the legacy owner's manager reloads and starts them.
use super::apply::{reload, STOP_TIMEOUT};
use super::files;
use super::place;
use super::record::Record;
use crate::error::Result;
use crate::host::session::{Session, SERVICE_TIMEOUT};
use crate::host::systemd::Manager;
use crate::layout::Root;

/// Stops the stack user's quadlet units and removes the files isolate wrote for it.
pub fn stop_stack(root: &Root, stack: &str, session: Option<&Session<'_>>) -> Result<Vec<String>> {
    let Some(mut record) = Record::read(root, stack)? else {
        return Ok(Vec::new());
    };
    let (Some(uid), Some(dir)) = (record.stack_uid, record.dir.clone()) else {
        return Ok(Vec::new());
    };
    let m = Manager::User(uid);
    if let Some(session) = session {
        if root.user_manager_socket(uid).exists() {
            for u in record.units.iter().rev() {
                session.systemd.stop_unit_in(m, u, STOP_TIMEOUT)?;
            }
        }
    }
    for name in &record.installed {
        files::remove(root, &dir.join(name))?;
    }
    reload(root, session, m)?;
    let line = format!(
        "quadlets of {stack}: stopped {} in the manager of uid {uid}, removed {} from {}",
        record.units.join(", "),
        record.installed.join(", "),
        dir.display()
    );
    record.stack_uid = None;
    record.dir = None;
    record.installed.clear();
    record.units.clear();
    record.write(root, stack)?;
    Ok(vec![line])
}

/// Puts the parked legacy files back, reloads the legacy owner's manager, starts her units.
pub fn restore_legacy(
    root: &Root,
    stack: &str,
    session: Option<&Session<'_>>,
) -> Result<Vec<String>> {
    let Some(record) = Record::read(root, stack)? else {
        return Ok(Vec::new());
    };
    let parked = place::parked_dir(stack);
    let mut back = Vec::new();
    for s in &record.sources {
        let at = parked.join(s.path.file_name().unwrap_or_default());
        if let Some(f) = files::read(root, &at)? {
            files::write(root, &s.path, &f.text, (s.uid, s.gid), s.mode, false)?;
            files::remove(root, &at)?;
            back.push(s.path.display().to_string());
        }
    }
    let m = Manager::of_uid(record.legacy_uid);
    reload(root, session, m)?;
    if let Some(session) = session {
        let up = match m {
            Manager::User(id) => root.user_manager_socket(id).exists(),
            Manager::System => true,
        };
        if up {
            for u in &record.legacy_units {
                session.systemd.start_unit_in(m, u, SERVICE_TIMEOUT)?;
            }
        }
    }
    Record::remove(root, stack)?;
    let _ = std::fs::remove_dir(root.at(&parked));
    Ok(vec![format!(
        "quadlets of {stack}: {} back in place, {} started in {m}",
        back.join(", "),
        record.legacy_units.join(", ")
    )])
}
