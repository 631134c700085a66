//! `isolate rollback --stack NAME`: every migration of the stack back to its previous owners,
//! newest first, each recorded as rolling back before the walk and rolled back after it.
use super::{record_migration, Migrator};
use crate::error::{Error, Result};
use crate::ids::Shift;
use crate::layout::Root;
use crate::migration::MigrationSpec;
use crate::observe::RunningContainer;
use crate::state::{Migration, MigrationPhase, State};
use crate::walk::{Progress, Summary};
use serde::Serialize;
use std::path::PathBuf;

/// Each rolled back data path with its summary, newest migration first.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct RollbackReport(pub Vec<(PathBuf, Summary)>);

/// `isolate rollback --stack NAME`: every migration of the stack back to its previous owners,
/// newest first. The account and allocation stay.
pub fn rollback(
    root: &Root,
    stack: &str,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<RollbackReport> {
    let state = State::read(root)?;
    let rec = state.stacks.get(stack).ok_or_else(|| {
        Error::Usage(format!(
            "stack `{stack}` has nothing recorded in {}",
            root.state_file().display()
        ))
    })?;
    let todo: Vec<Migration> = rec
        .migrations
        .iter()
        .rev()
        .filter(|m| {
            matches!(
                m.phase,
                MigrationPhase::Migrating | MigrationPhase::Done | MigrationPhase::RollingBack
            )
        })
        .cloned()
        .collect();
    if todo.is_empty() {
        return Err(Error::Usage(format!(
            "stack `{stack}` has no migration to roll back"
        )));
    }
    let target = &rec.allocation;
    let mut out = Vec::new();
    for m in todo {
        let shift = Shift {
            from: m.from.clone(),
            to: m.to.clone(),
        };
        record_migration(
            root,
            stack,
            &m.path,
            m.mode,
            &shift,
            &m.journal,
            MigrationPhase::RollingBack,
        )?;
        let spec = MigrationSpec {
            mode: m.mode,
            shift: shift.clone(),
            target_uid: target.uid,
            target_gid: target.gid,
            outside_links: Default::default(),
        };
        let progress = Progress {
            enabled: progress,
            expected_inodes: None,
        };
        let summary =
            migrator.rollback(&root.at(&m.path), &spec, &root.at(&m.journal), progress)?;
        let problems = summary.problems();
        if !problems.is_empty() {
            // Stays `rolling_back`: the next rollback walks it again.
            return Err(Error::Failed(format!(
                "rollback of {} is not done: {}",
                m.path.display(),
                problems.join("; ")
            )));
        }
        record_migration(
            root,
            stack,
            &m.path,
            m.mode,
            &shift,
            &m.journal,
            MigrationPhase::RolledBack,
        )?;
        out.push((m.path.clone(), summary));
    }
    Ok(RollbackReport(out))
}

/// Refuses a rollback while containers of the stack or the legacy owner hold its data.
pub fn refuse_if_held(stack: &str, holders: &[RunningContainer]) -> Result<()> {
    if holders.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "containers are running on the data of `{stack}`: {}; stop them first (or pass --force)",
        holders
            .iter()
            .map(|c| format!("{} (of {}) on {}", c.name, c.owner, c.data_path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
