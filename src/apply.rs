// apply(): carries out a plan through backends, re-checking each step's precondition so that
// "already present" is an outcome, recording allocations and migrations in the state file
// before acting, and isolating a failed stack so the others still converge.
use crate::error::{Error, Result};
use crate::ids::Shift;
use crate::observe::under_root;
use crate::plan::{Plan, Step};
use crate::state::{Allocation, Migration, MigrationPhase, StackRecord, State};
use crate::sys::etc::Accounts;
use crate::sys::shadow::AccountTools;
use crate::walk::{MigrateMode, MigrationSpec, Summary};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The systemd side of a stack, as apply needs it. The real one speaks D-Bus; tests record.
pub trait StackManager {
    /// logind SetUserLinger, then wait (bounded) for user@UID.service and its manager.
    fn enable_linger(&self, uid: u32) -> Result<()>;
    /// Enable and start podman.socket in the user's manager, then prove it: GET /_ping == OK.
    fn start_podman_socket(&self, uid: u32) -> Result<()>;
}

/// The ownership migration engine, as apply needs it.
pub trait Migrator {
    fn migrate(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: bool,
    ) -> Result<Summary>;
    fn rollback(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: bool,
    ) -> Result<Summary>;
    /// Refuses (exit 2) a path or spec the walk would refuse, before anything is recorded.
    fn check(&self, _path: &Path, _spec: &MigrationSpec) -> Result<()> {
        Ok(())
    }
}

/// The real engine in `walk`, on the real kernel.
#[derive(Default)]
pub struct Walker {
    pub sys: crate::walk::sys::RealSys,
}

impl Walker {
    pub fn new() -> Self {
        Self::default()
    }
}

fn progress_of(enabled: bool) -> crate::walk::Progress {
    crate::walk::Progress {
        enabled,
        expected_inodes: None,
    }
}

impl Migrator for Walker {
    fn migrate(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: bool,
    ) -> Result<Summary> {
        crate::walk::migrate(&self.sys, path, spec, journal, &progress_of(progress))
    }
    fn rollback(
        &self,
        path: &Path,
        spec: &MigrationSpec,
        journal: &Path,
        progress: bool,
    ) -> Result<Summary> {
        crate::walk::rollback(&self.sys, path, spec, journal, &progress_of(progress))
    }
    fn check(&self, path: &Path, spec: &MigrationSpec) -> Result<()> {
        crate::walk::check_spec(spec)?;
        crate::walk::check_data_path(&self.sys, path)
    }
}

pub struct Backends<'a> {
    pub accounts: &'a dyn AccountTools,
    /// None with --no-systemd: the plan then holds no systemd steps.
    pub manager: Option<&'a dyn StackManager>,
    pub migrator: &'a dyn Migrator,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// The precondition showed the change was already made (by another tool, or a rerun).
    AlreadyPresent,
    Failed {
        error: String,
    },
    /// An earlier step of the same stack failed.
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub line: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
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

/// Where a data path's reown journal lives, relative to the root: one file per (stack, path).
pub fn journal_path(stack: &str, path: &Path) -> PathBuf {
    let mut name = String::new();
    for b in path.to_string_lossy().trim_start_matches('/').bytes() {
        match b {
            b'/' => name.push('-'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => name.push(b as char),
            _ => name.push_str(&format!("\\x{b:02x}")),
        }
    }
    PathBuf::from(crate::state::STATE_DIR)
        .join("journal")
        .join(stack)
        .join(format!("{name}.journal"))
}

pub fn apply(root: &Path, plan: &Plan, b: &Backends<'_>, progress: bool) -> Result<Report> {
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
            });
            continue;
        }
        tracing::info!("{line}");
        let (outcome, summary) = match run_step(root, step, b, progress) {
            Ok((o, s)) => (o, s),
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
                )
            }
        };
        report.steps.push(StepReport {
            step: step.clone(),
            line,
            outcome,
            summary,
        });
    }
    Ok(report)
}

fn run_step(
    root: &Path,
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
                Some(r) => Err(Error::Failed(format!(
                    "stack `{stack}` was recorded meanwhile with uid {} and range {}; run plan again",
                    r.allocation.uid, r.allocation.subids
                ))),
                None => {
                    state.stacks.insert(stack.clone(), StackRecord { allocation: want, migrations: Vec::new() });
                    state.write(root)?;
                    done(Outcome::Done)
                }
            }
        }
        Step::CreateGroup { group, gid } => {
            let acc = Accounts::read(root)?;
            match acc.group(group) {
                Some(g) if gid.is_none_or(|x| x == g.gid) => done(Outcome::AlreadyPresent),
                Some(g) => Err(Error::Failed(format!(
                    "group {group} exists with gid {}, not {}",
                    g.gid,
                    gid.unwrap()
                ))),
                None => b
                    .accounts
                    .create_group(group, *gid)
                    .map(|_| (Outcome::Done, None)),
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
                Some(u) => Err(Error::Failed(format!(
                    "user {user} exists with uid {}, not {uid}",
                    u.uid
                ))),
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
            let m = b.manager.ok_or_else(|| {
                Error::Failed("linger needs systemd, but apply runs with --no-systemd".into())
            })?;
            m.enable_linger(*uid).map(|_| (Outcome::Done, None))
        }
        Step::StartPodmanSocket { uid, .. } => {
            let m = b.manager.ok_or_else(|| {
                Error::Failed(
                    "podman.socket needs systemd, but apply runs with --no-systemd".into(),
                )
            })?;
            m.start_podman_socket(*uid).map(|_| (Outcome::Done, None))
        }
        Step::Migrate {
            stack,
            path,
            mode,
            shift,
            target_uid,
            target_gid,
            ..
        } => {
            let journal = journal_path(stack, path);
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
            };
            let summary = b.migrator.migrate(
                &under_root(root, path),
                &spec,
                &under_root(root, &journal),
                progress,
            )?;
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
    }
}

/// Writes the migration's phase into the state file (atomically) before/after the walk.
fn record_migration(
    root: &Path,
    stack: &str,
    path: &Path,
    mode: MigrateMode,
    shift: &Shift,
    journal: &Path,
    phase: MigrationPhase,
) -> Result<()> {
    let mut state = State::read(root)?;
    let rec = state.stacks.get_mut(stack).ok_or_else(|| {
        Error::Failed(format!(
            "stack `{stack}` has no recorded allocation; cannot migrate"
        ))
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

/// `isolate rollback --stack NAME`: every migration of the stack back to its previous owners,
/// newest first. The account and allocation stay.
pub fn rollback(
    root: &Path,
    stack: &str,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<Vec<(PathBuf, Summary)>> {
    let state = State::read(root)?;
    let rec = state.stacks.get(stack).ok_or_else(|| {
        Error::Usage(format!(
            "stack `{stack}` has nothing recorded in {}",
            crate::state::state_path(root).display()
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
    };
    // Every refusal before the first record: a refused rollback changes nothing.
    for m in &todo {
        migrator.check(&under_root(root, &m.path), &spec_of(m))?;
    }
    let mut out = Vec::new();
    for m in todo {
        let spec = spec_of(&m);
        let record =
            |phase| record_migration(root, stack, &m.path, m.mode, &spec.shift, &m.journal, phase);
        record(MigrationPhase::RollingBack)?;
        let summary = match migrator.rollback(
            &under_root(root, &m.path),
            &spec,
            &under_root(root, &m.journal),
            progress,
        ) {
            Ok(s) => s,
            Err(e) if e.exit_code() == crate::error::EXIT_BAD_INPUT => {
                // The walk refused before its first change: the record goes back as it was.
                record(m.phase)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        record(MigrationPhase::RolledBack)?;
        out.push((m.path.clone(), summary));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
