//! The hand-off's compose service as apply changes it: the unit written, recorded, enabled
//! and started until the project runs; paused, resumed or removed by a rollback.
use super::*;

/// Writes the unit, records it, enables and (re)starts it in the stack user's manager, then
/// waits until every container of the project in the stack user's store runs.
pub(super) fn install_service(
    root: &Root,
    step: &HandoffStep,
    stores: &Session<'_>,
) -> Result<Outcome> {
    let HandoffStep::InstallService {
        stack,
        user,
        uid,
        gid,
        project,
        unit,
        path,
        home,
        text,
        copies,
        declared,
    } = step
    else {
        unreachable!("install_service gets InstallService steps only")
    };
    // Each original must still be what plan showed; a copy that differs is written below.
    let mut stale = Vec::new();
    for c in copies {
        let now = crate::handoff::copies::wanted(root, stack, c.kind, &c.from, &c.owners).map_err(
            |why| HandoffError::CopyUnreadable {
                path: c.from.clone(),
                why,
            },
        )?;
        if now != c.content {
            return Err(HandoffError::CopyChangedSincePlan {
                path: c.from.clone(),
            }
            .into());
        }
        if crate::handoff::copies::current(root, &c.to).as_ref() != Some(&c.content) {
            stale.push(c);
        }
    }
    // A unit the NixOS configuration declares is its own: compared and written never.
    let current = match declared {
        Some(_) => Some(text.clone()),
        None => crate::handoff::service::read_unit(root, path),
    };
    if stale.is_empty()
        && current.as_deref() == Some(text.as_str())
        && stores.unit_state(user, *uid, unit) == Some((true, true))
        && crate::handoff::service::project_running(stores, *uid, project)?.is_ok()
    {
        return Ok(Outcome::AlreadyPresent);
    }
    let mut state = State::read(root)?;
    state.handoff.entry(stack.clone()).or_default().service = Some(ServiceRecord {
        unit: unit.clone(),
        path: path.clone(),
    });
    state.write(root)?;
    for c in stale {
        crate::handoff::copies::write(root, stack, *gid, &c.to, &c.content)?;
    }
    if declared.is_none() {
        crate::handoff::service::write_unit(root, path, home, text, *uid, *gid)?;
    }
    stores.start_unit(*uid, unit)?;
    crate::handoff::service::wait_project_running(stores, *uid, user, unit, project)?;
    Ok(Outcome::Done)
}

/// The stack's compose service, stopped and disabled, its unit and record kept: a rollback
/// checks what else holds the data now, and if it is refused, starts the service again.
#[derive(Debug)]
pub struct PausedService {
    stack: String,
    rec: ServiceRecord,
    uid: u32,
}

impl PausedService {
    /// Enables and starts the service again (the rollback was refused).
    pub fn resume(self, stores: Option<&Session<'_>>) -> Result<()> {
        reach(stores, &self.rec, self.uid)?.start_unit(self.uid, &self.rec.unit)
    }

    /// Removes the unit file and the record: the rollback goes on.
    pub fn remove(self, root: &Root) -> Result<String> {
        crate::handoff::service::remove_unit(root, &self.rec.path)?;
        crate::handoff::copies::remove(root, &self.stack)?;
        let mut state = State::read(root)?;
        if let Some(r) = state.handoff.get_mut(&self.stack) {
            r.service = None;
            if r.is_empty() {
                state.handoff.remove(&self.stack);
            }
        }
        state.write(root)?;
        Ok(format!(
            "service {}: stopped, disabled and removed ({}, and isolate's copies of its files)",
            self.rec.unit,
            self.rec.path.display()
        ))
    }
}

/// The stores, or why the service's manager cannot be reached.
pub(super) fn reach<'s>(
    stores: Option<&'s Session<'s>>,
    rec: &ServiceRecord,
    uid: u32,
) -> Result<&'s Session<'s>> {
    stores.ok_or_else(|| {
        Error::from(HandoffError::ManagerUnreachable {
            unit: rec.unit.clone(),
            uid,
        })
    })
}

/// The first part of a rollback: the stack's compose service stops (so its containers no
/// longer hold the data), is disabled and its unit removed. None when there is none.
pub fn stop_service(
    root: &Root,
    stack: &str,
    stores: Option<&Session<'_>>,
) -> Result<Option<String>> {
    pause_service(root, stack, stores)?
        .map(|paused| paused.remove(root))
        .transpose()
}

/// Stops and disables the stack's compose service, keeping its unit and record (see
/// [`PausedService`]). None when there is none.
pub fn pause_service(
    root: &Root,
    stack: &str,
    stores: Option<&Session<'_>>,
) -> Result<Option<PausedService>> {
    let state = State::read(root)?;
    let (Some(svc), Some(rec)) = (
        state.handoff.get(stack).and_then(|r| r.service.clone()),
        state.stacks.get(stack),
    ) else {
        return Ok(None);
    };
    let uid = rec.allocation.uid;
    reach(stores, &svc, uid)?.stop_unit(uid, &svc.unit)?;
    Ok(Some(PausedService {
        stack: stack.to_string(),
        rec: svc,
        uid,
    }))
}
