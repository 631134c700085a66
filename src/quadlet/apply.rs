//! Carries out the quadlet steps: the legacy owner's units stopped, her files parked below
//! /var/lib/isolate and her manager reloaded (her generator makes none of them again, so a
//! reboot starts one copy); the stack user's files written root-owned into its quadlet
//! directory, its manager reloaded and the units started. Each change is recorded first
//! (`record`), each is re-checked, so a re-run after a kill goes on where it stopped.
use super::files;
use super::plan::QuadletStep;
use super::record::Record;
use crate::error::Result;
use crate::host::session::{Session, SERVICE_TIMEOUT};
use crate::host::systemd::Manager;
use crate::layout::Root;
use crate::model::Outcome;
use std::path::Path;
use std::time::Duration;

/// How long a quadlet unit may take to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Reloads `m` when its manager runs: a user manager that is down generates again when it
/// starts, so there is nothing to reload.
pub(super) fn reload(root: &Root, session: Option<&Session<'_>>, m: Manager) -> Result<()> {
    let Some(session) = session else {
        return Ok(());
    };
    if let Manager::User(uid) = m {
        if !root.user_manager_socket(uid).exists() {
            return Ok(());
        }
    }
    session.systemd.reload_manager(m)
}

impl QuadletStep {
    /// Carries out the step (apply's arm for `Step::Quadlet`).
    pub fn run(&self, root: &Root, session: Option<&Session<'_>>) -> Result<Outcome> {
        run(root, self, session)
    }
}

pub fn run(root: &Root, step: &QuadletStep, session: Option<&Session<'_>>) -> Result<Outcome> {
    match step {
        QuadletStep::RetireLegacy {
            stack,
            uid,
            files: paths,
            parked,
            units,
            ..
        } => retire(root, session, stack, *uid, paths, parked, units),
        QuadletStep::Install {
            stack,
            uid,
            dir,
            files: wanted,
            units,
            ..
        } => {
            let mut record = Record::read(root, stack)?.unwrap_or_default();
            record.stack_uid = Some(*uid);
            record.dir = Some(dir.clone());
            record.installed = wanted.iter().map(|f| f.name.clone()).collect();
            record.units = units.clone();
            record.write(root, stack)?;
            let mut changed = false;
            for f in wanted {
                let at = dir.join(&f.name);
                if files::read(root, &at)?.map(|x| x.text).as_deref() != Some(f.text.as_str()) {
                    files::write(root, &at, &f.text, (0, 0), 0o644, true)?;
                    changed = true;
                }
            }
            let Some(session) = session else {
                return Ok(if changed {
                    Outcome::Done
                } else {
                    Outcome::AlreadyPresent
                });
            };
            let m = Manager::User(*uid);
            session.wait_manager(*uid)?;
            if changed {
                session.systemd.reload_manager(m)?;
            }
            for u in units {
                if session.systemd.unit_state(m, u)? != "active" {
                    session.systemd.start_unit_in(m, u, SERVICE_TIMEOUT)?;
                    changed = true;
                }
            }
            Ok(if changed {
                Outcome::Done
            } else {
                Outcome::AlreadyPresent
            })
        }
    }
}

fn retire(
    root: &Root,
    session: Option<&Session<'_>>,
    stack: &str,
    uid: u32,
    paths: &[std::path::PathBuf],
    parked: &Path,
    units: &[String],
) -> Result<Outcome> {
    let mut record = Record::read(root, stack)?.unwrap_or_default();
    record.legacy_uid = uid;
    record.legacy_units = units.to_vec();
    let mut found = Vec::new();
    for p in paths {
        if let Some(f) = files::read(root, p)? {
            record.keep_source(p, &f);
            found.push((p, f));
        }
    }
    record.write(root, stack)?;
    let m = Manager::of_uid(uid);
    if let Some(session) = session {
        for u in units.iter().rev() {
            let running = match m {
                Manager::User(id) => root.user_manager_socket(id).exists(),
                Manager::System => true,
            };
            if running {
                session.systemd.stop_unit_in(m, u, STOP_TIMEOUT)?;
            }
        }
    }
    for (p, f) in &found {
        let name = p.file_name().unwrap_or_default();
        files::write(root, &parked.join(name), &f.text, (0, 0), 0o600, true)?;
        files::remove(root, p)?;
    }
    reload(root, session, m)?;
    Ok(if found.is_empty() {
        Outcome::AlreadyPresent
    } else {
        Outcome::Done
    })
}
