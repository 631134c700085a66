//! `isolate rollback --stack NAME`: every migration of the stack back to its previous owners,
//! newest first, each recorded as rolling back before the walk and rolled back after it.
use super::{record_migration, Migrator};
use crate::error::{Error, Result};
use crate::ids::Shift;
use crate::layout::Root;
use crate::migration::MigrationSpec;
use crate::model::RefusalKind;
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
    let spec_of = |m: &Migration| MigrationSpec {
        mode: m.mode,
        shift: Shift {
            from: m.from.clone(),
            to: m.to.clone(),
        },
        target_uid: target.uid,
        target_gid: target.gid,
        outside_links: Default::default(),
    };
    // Every refusal before the first record: a refused rollback changes nothing.
    for m in &todo {
        migrator.check(&root.at(&m.path), &spec_of(m))?;
    }
    let mut out = Vec::new();
    for m in todo {
        let spec = spec_of(&m);
        let record =
            |phase| record_migration(root, stack, &m.path, m.mode, &spec.shift, &m.journal, phase);
        record(MigrationPhase::RollingBack)?;
        let progress = Progress {
            enabled: progress,
            expected_inodes: None,
        };
        let summary =
            match migrator.rollback(&root.at(&m.path), &spec, &root.at(&m.journal), progress) {
                Ok(s) => s,
                Err(e) if e.exit_code() == crate::error::EXIT_BAD_INPUT => {
                    // The walk refused before its first change: the record goes back as it was.
                    record(m.phase)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
        let problems = summary.problems();
        if !problems.is_empty() {
            // Stays `rolling_back`: the next rollback walks it again.
            return Err(super::error::ApplyError::RollbackNotDone {
                path: m.path.clone(),
                problems,
            }
            .into());
        }
        record(MigrationPhase::RolledBack)?;
        out.push((m.path.clone(), summary));
    }
    Ok(RollbackReport(out))
}

/// Refuses a rollback while containers of the stack or the legacy owner hold its data.
pub fn refuse_if_held(stack: &str, holders: &[RunningContainer]) -> Result<()> {
    if holders.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        RefusalKind::Rollback,
        format!(
        "containers are running on the data of `{stack}`: {}; stop them first (or pass --force)",
        holders
            .iter()
            .map(|c| format!("{} (of {}) on {}", c.name, c.owner, c.data_path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    ),
    ))
}
