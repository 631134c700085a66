//! apply(): carries out a plan through backends, re-checking each step's precondition so that
//! "already present" is an outcome, recording allocations and migrations in the state file
//! before acting, and isolating a failed stack so the others still converge.
mod backends;
pub mod error;
mod rollback;

pub use crate::data::Migrator;
pub use crate::model::Outcome;
pub use backends::{Backends, ProcHolders, Walker};
pub use rollback::{refuse_if_held, rollback, RollbackReport};

use crate::error::{Error, Result};
use crate::host::accounts::Accounts;
use crate::ids::Shift;
use crate::layout::{self, Root};
use crate::migration::{MigrateMode, MigrationSpec};
use crate::plan::{Plan, Step};
use crate::state::{Allocation, Migration, MigrationPhase, StackRecord, State};
use crate::walk::{Progress, Summary};
use error::ApplyError;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub line: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// What a close / reopen / share step did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::isolation::apply::Done>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn failures(&self) -> Vec<&StepReport> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed { .. }))
            .collect()
    }
}

pub fn apply(root: &Root, plan: &Plan, b: &Backends<'_>, progress: bool) -> Result<Report> {
    let mut report = Report::default();
    let mut failed_stacks: BTreeSet<String> = BTreeSet::new();
    let mut global_failure = false;
    for step in &plan.steps {
        let line = step.to_string();
        let skip = global_failure || step.stack().is_some_and(|s| failed_stacks.contains(s));
        if skip {
            report.steps.push(StepReport {
                step: step.clone(),
                line,
                outcome: Outcome::Skipped,
                summary: None,
                isolation: None,
            });
            continue;
        }
        let _span = crate::plan::step_span(step).entered();
        tracing::info!("{line}");
        let result = match run_isolation_step(root, step, b.walk_sys, b.acl_probe) {
            Some(r) => r.map(|(o, d)| (o, None, d)),
            None => run_step(root, step, b, progress).map(|(o, s)| (o, s, None)),
        };
        let (outcome, summary, isolation) = match result {
            Ok((o @ Outcome::Failed { .. }, s, d)) => {
                // A migration that ran but is not done: the stack's later steps wait.
                if let Some(stack) = step.stack() {
                    failed_stacks.insert(stack.to_string());
                }
                (o, s, d)
            }
            Ok(r) => r,
            Err(e) => {
                match step.stack() {
                    Some(s) => {
                        failed_stacks.insert(s.to_string());
                    }
                    None => global_failure = true,
                }
                (
                    Outcome::Failed {
                        error: e.to_string(),
                    },
                    None,
                    None,
                )
            }
        };
        match &outcome {
            Outcome::Failed { error } => tracing::info!(outcome = "failed", "failed: {error}"),
            Outcome::AlreadyPresent => {
                tracing::info!(outcome = "already_present", "already present")
            }
            _ => tracing::info!(outcome = "done", "done"),
        }
        report.steps.push(StepReport {
            step: step.clone(),
            line,
            outcome,
            summary,
            isolation,
        });
    }
    Ok(report)
}

/// Only the shared group comes without a gid: isolate picks the one `groupadd --system` would
/// and records it before the group exists, so a later run (also after a kill right after
/// groupadd) knows the group is its own and never takes it for someone else's.
fn record_shared_group(root: &Root, acc: &Accounts, group: &str) -> Result<u32> {
    let mut state = State::read(root)?;
    let held = |id: u32| {
        state
            .stacks
            .values()
            .any(|r| r.allocation.uid == id || r.allocation.gid == id)
            || state.shared_group.as_ref().is_some_and(|g| g.gid == id)
    };
    let gid = acc.free_system_gid(held).ok_or_else(|| {
        Error::from(ApplyError::NoFreeGid {
            group: group.to_string(),
        })
    })?;
    state.shared_group = Some(crate::state::GroupRecord {
        name: group.to_string(),
        gid,
    });
    state.write(root)?;
    Ok(gid)
}

fn run_step(
    root: &Root,
    step: &Step,
    b: &Backends<'_>,
    progress: bool,
) -> Result<(Outcome, Option<Summary>)> {
    let done = |o: Outcome| Ok((o, None));
    match step {
        Step::RecordAllocation {
            stack,
            user,
            uid,
            gid,
            subids,
        } => {
            let mut state = State::read(root)?;
            let want = Allocation {
                user: user.clone(),
                uid: *uid,
                gid: *gid,
                subids: *subids,
            };
            match state.stacks.get(stack) {
                Some(r) if r.allocation == want => done(Outcome::AlreadyPresent),
                Some(r) => Err(ApplyError::RecordedMeanwhile {
                    stack: stack.clone(),
                    uid: r.allocation.uid,
                    subids: r.allocation.subids,
                }
                .into()),
                None => {
                    state.stacks.insert(
                        stack.clone(),
                        StackRecord {
                            allocation: want,
                            migrations: Vec::new(),
                        },
                    );
                    state.write(root)?;
                    done(Outcome::Done)
                }
            }
        }
        Step::CreateGroup { group, gid } => {
            let acc = Accounts::read(root)?;
            match acc.group(group) {
                Some(g) if gid.is_none_or(|x| x == g.gid) => done(Outcome::AlreadyPresent),
                Some(g) => Err(ApplyError::GroupHasOtherGid {
                    group: group.clone(),
                    found: g.gid,
                    wanted: gid.unwrap(),
                }
                .into()),
                None => {
                    let gid = match gid {
                        Some(g) => *g,
                        None => record_shared_group(root, &acc, group)?,
                    };
                    b.accounts
                        .create_group(group, Some(gid))
                        .map(|_| (Outcome::Done, None))
                }
            }
        }
        Step::CreateUser {
            stack,
            user,
            uid,
            gid,
            home,
            shell,
        } => {
            let acc = Accounts::read(root)?;
            match acc.user(user) {
                Some(u) if u.uid == *uid => done(Outcome::AlreadyPresent),
                Some(u) => Err(ApplyError::UserHasOtherUid {
                    user: user.clone(),
                    found: u.uid,
                    wanted: *uid,
                }
                .into()),
                None => {
                    let comment = format!("isolate stack {stack}");
                    b.accounts
                        .create_user(user, *uid, *gid, home, shell, &comment)
                        .map(|_| (Outcome::Done, None))
                }
            }
        }
        Step::AddToGroup { user, group, .. } => {
            let acc = Accounts::read(root)?;
            if acc.group(group).is_some_and(|g| g.members.contains(user)) {
                return done(Outcome::AlreadyPresent);
            }
            b.accounts
                .add_to_group(user, group)
                .map(|_| (Outcome::Done, None))
        }
        Step::AddSubids { user, subids, .. } => {
            let acc = Accounts::read(root)?;
            let uid = acc.user(user).map(|u| u.uid);
            let need_uid = !acc.subuid.ranges_of(user, uid).contains(subids);
            let need_gid = !acc.subgid.ranges_of(user, uid).contains(subids);
            if !need_uid && !need_gid {
                return done(Outcome::AlreadyPresent);
            }
            b.accounts
                .add_subids(user, *subids, need_uid, need_gid)
                .map(|_| (Outcome::Done, None))
        }
        Step::EnableLinger { uid, .. } => {
            let m = b
                .session
                .ok_or_else(|| Error::from(ApplyError::NoSystemd { what: "linger" }))?;
            m.enable_linger(*uid).map(|_| (Outcome::Done, None))
        }
        Step::StartPodmanSocket { uid, .. } => {
            let m = b.session.ok_or_else(|| {
                Error::from(ApplyError::NoSystemd {
                    what: "podman.socket",
                })
            })?;
            m.start_podman_socket(*uid).map(|_| (Outcome::Done, None))
        }
        Step::CreateData {
            stack,
            path,
            uid,
            gid,
            mode,
            shift,
        } => {
            b.migrator.create_data_dir(&root.at(path), *uid, *gid)?;
            let journal = layout::journal(stack, path);
            record_migration(
                root,
                stack,
                path,
                *mode,
                shift,
                &journal,
                MigrationPhase::Done,
            )?;
            Ok((Outcome::Done, None))
        }
        Step::Migrate {
            stack,
            path,
            mode,
            shift,
            target_uid,
            target_gid,
            survey,
            outside_links,
            ..
        } => {
            let journal = layout::journal(stack, path);
            record_migration(
                root,
                stack,
                path,
                *mode,
                shift,
                &journal,
                MigrationPhase::Migrating,
            )?;
            let spec = MigrationSpec {
                mode: *mode,
                shift: shift.clone(),
                target_uid: *target_uid,
                target_gid: *target_gid,
                outside_links: *outside_links,
            };
            let progress = Progress {
                enabled: progress,
                expected_inodes: Some(survey.inodes).filter(|n| *n > 0),
            };
            let summary =
                b.migrator
                    .migrate(&root.at(path), &spec, &root.at(&journal), progress)?;
            let problems = summary.problems();
            if !problems.is_empty() {
                // Stays `migrating`: the next apply walks it again.
                let error = format!(
                    "migration of {} is not done: {}",
                    path.display(),
                    problems.join("; ")
                );
                return Ok((Outcome::Failed { error }, Some(summary)));
            }
            record_migration(
                root,
                stack,
                path,
                *mode,
                shift,
                &journal,
                MigrationPhase::Done,
            )?;
            Ok((Outcome::Done, Some(summary)))
        }
        Step::Handoff(h) => {
            crate::handoff::apply::run(root, h, b.session.as_ref(), b.migrator, progress)
        }
        Step::Reach(r) => crate::reach::apply::run(root, r).map(|o| (o, None)),
        Step::Quota(q) => crate::quota::apply::run(root, b.quota, q).map(|o| (o, None)),
        Step::Limits(l) => {
            crate::limits::apply::run(root, l, b.session.as_ref().map(|s| s.systemd))
                .map(|o| (o, None))
        }
        Step::Quadlet(q) => q.run(root, b.session.as_ref()).map(|o| (o, None)),
        Step::ReachLegacy(l) => {
            crate::reach::legacy_run::run(root, l, b.compose).map(|o| (o, None))
        }
        // Carried out by crate::isolation::apply::run_step.
        Step::CloseData(_) | Step::OpenData(_) | Step::Share(_) => {
            Err(ApplyError::IsolationStepMisrouted.into())
        }
    }
}

/// Whether the stack has a data migration that rollback would undo.
pub fn has_rollback(state: &State, stack: &str) -> bool {
    state.stacks.get(stack).is_some_and(|r| {
        r.migrations.iter().any(|m| {
            matches!(
                m.phase,
                MigrationPhase::Migrating | MigrationPhase::Done | MigrationPhase::RollingBack
            )
        })
    })
}

/// Writes the migration's phase into the state file (atomically) before/after the walk.
pub(super) fn record_migration(
    root: &Root,
    stack: &str,
    path: &Path,
    mode: MigrateMode,
    shift: &Shift,
    journal: &Path,
    phase: MigrationPhase,
) -> Result<()> {
    let mut state = State::read(root)?;
    let rec = state.stacks.get_mut(stack).ok_or_else(|| {
        Error::from(ApplyError::NoAllocation {
            stack: stack.to_string(),
        })
    })?;
    let m = Migration {
        path: path.to_path_buf(),
        mode,
        from: shift.from.clone(),
        to: shift.to.clone(),
        phase,
        journal: journal.to_path_buf(),
    };
    // One record per path: an unfinished one is continued, a finished or rolled back one replaced.
    match rec.migrations.iter_mut().find(|x| x.path == path) {
        Some(x) => *x = m,
        None => rec.migrations.push(m),
    }
    state.write(root)
}

/// Runs an isolation step; None for any other step.
fn run_isolation_step(
    root: &Root,
    step: &Step,
    sys: &dyn crate::walk::sys::WalkSys,
    probe: &dyn crate::isolation::fs::AclProbe,
) -> Option<Result<(Outcome, Option<crate::isolation::apply::Done>)>> {
    let outcome = |changed: bool| {
        if changed {
            Outcome::Done
        } else {
            Outcome::AlreadyPresent
        }
    };
    Some(match step {
        Step::CloseData(c) => {
            crate::isolation::apply::close(root, sys, c).map(|d| (outcome(d.is_some()), d))
        }
        Step::OpenData(o) => crate::isolation::apply::reopen(root, sys, &o.stack, &o.path)
            .map(|r| (outcome(r), None)),
        Step::Share(s) => crate::isolation::apply::share(root, sys, probe, s)
            .map(|d| (outcome(d.changed > 0), Some(d))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
// The hand-off and reaches end to end: observed facts -> plan -> apply.
#[cfg(test)]
mod handoff_service_tests;
#[cfg(test)]
mod handoff_tests;
#[cfg(test)]
mod nixos_service_tests;
#[cfg(test)]
mod reach_legacy_tests;
#[cfg(test)]
mod reach_tests;
