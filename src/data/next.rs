//! What the next migration of one data path is, from the state file and the mappings: the one
//! decision observe() surveys with and plan() hands to apply.
use crate::ids::{IdMaps, Shift};
use crate::migration::{MigrateMode, MigrationSpec};
use crate::model::Selection;
use crate::policy::select::selected;
use crate::policy::{Policy, StackPolicy};
use crate::state::{Allocation, MigrationPhase, State};
use std::path::{Path, PathBuf};

/// What the next migration of one data path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextMigration {
    Done,
    RollbackInterrupted,
    /// `shift` without a legacy owner.
    NeedsLegacy,
    /// The legacy and stack mappings share ids: a shift would not be exact.
    Overlapping,
    Run {
        spec: MigrationSpec,
        resume: bool,
    },
}

pub fn next_migration(
    state: &State,
    legacy: Option<&IdMaps>,
    stack: &StackPolicy,
    a: &Allocation,
    path: &Path,
) -> NextMigration {
    let to = a.maps();
    let run = |shift: Shift, mode: MigrateMode, resume: bool| NextMigration::Run {
        spec: MigrationSpec {
            mode,
            shift,
            target_uid: a.uid,
            target_gid: a.gid,
            outside_links: stack.outside_hardlinks,
        },
        resume,
    };
    let recorded = state.migration(&stack.name, path);
    match recorded.map(|m| (m, m.phase)) {
        Some((_, MigrationPhase::Done)) => NextMigration::Done,
        Some((_, MigrationPhase::RollingBack)) => NextMigration::RollbackInterrupted,
        // An interrupted migration resumes with exactly the mappings and mode it started with.
        Some((m, MigrationPhase::Migrating)) => run(
            Shift {
                from: m.from.clone(),
                to: m.to.clone(),
            },
            m.mode,
            true,
        ),
        Some((_, MigrationPhase::RolledBack)) | None => {
            let (from, mode) = match (legacy, stack.migrate.value) {
                (Some(l), mode) => (l.clone(), mode),
                // Without a legacy mapping nothing can be shifted: auto reowns it all.
                (None, MigrateMode::Reown | MigrateMode::Auto) => (to.clone(), MigrateMode::Reown),
                (None, MigrateMode::Shift) => return NextMigration::NeedsLegacy,
            };
            if from != to && from.overlaps(&to) {
                return NextMigration::Overlapping;
            }
            run(Shift { from, to }, mode, false)
        }
    }
}

/// The stacks that need their data surveyed: every (stack, path) whose migration is not done.
pub fn pending_migrations(
    policy: &Policy,
    state: &State,
    opts: &Selection,
) -> Vec<(String, PathBuf)> {
    selected(policy, opts)
        .flat_map(|s| {
            s.data
                .iter()
                .map(move |d| (s.name.clone(), d.value.clone()))
        })
        .filter(|(s, p)| {
            !matches!(
                state.migration(s, p).map(|m| m.phase),
                Some(MigrationPhase::Done)
            )
        })
        .collect()
}
