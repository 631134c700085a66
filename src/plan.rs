// plan(): a pure function from (policy, observed host, options) to the ordered steps apply
// would take. No I/O happens here; tests build `Observed` by hand.
use crate::alloc::{self, Allocated, Source};
use crate::error::{Error, Result};
use crate::ids::{IdMaps, Mapping, Shift};
use crate::policy::{Policy, Problem};
use crate::state::{MigrationPhase, State};
use crate::sys::etc::Accounts;
use crate::walk::{MigrateMode, MigrationSpec, Survey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where stack users live unless the host already has them elsewhere.
pub const HOME_BASE: &str = "/var/lib/isolate/home";

/// What the systemd side of one stack user looks like (filled only when systemd is in use).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ManagerFacts {
    pub linger: bool,
    pub manager_active: bool,
    /// podman.socket is enabled in the user's manager (comes back at boot).
    pub socket_enabled: bool,
    pub socket_active: bool,
    /// A real `GET /_ping` answered OK (asked by status only: plan does not start podman).
    pub ping_ok: bool,
}

/// What is known of one data path before migrating it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum DataFacts {
    /// The walker refused it (missing, not a directory, network filesystem, ...).
    Refused(String),
    Surveyed(Survey),
}

/// A running container that holds a stack's data path (from a podman socket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunningContainer {
    pub owner: String,
    pub name: String,
    pub data_path: PathBuf,
}

/// Everything plan() reads, as plain data.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub accounts: Accounts,
    pub state: State,
    /// Per stack user name.
    pub managers: BTreeMap<String, ManagerFacts>,
    /// Per (stack, data path) that needs migrating.
    pub data: BTreeMap<(String, PathBuf), DataFacts>,
    pub running: Vec<RunningContainer>,
    /// The login shell given to stack users (first nologin found under the root).
    pub nologin: String,
    /// Per stack: its env files, images, volumes and service as found.
    pub handoff: BTreeMap<String, crate::handoff::StackFacts>,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Stacks to act on; empty means every stack in the policy.
    pub stacks: Vec<String>,
    /// Linger and podman.socket steps are planned only with systemd.
    pub systemd: bool,
    /// Migrate even when containers hold the data.
    pub force: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    RecordAllocation {
        stack: String,
        user: String,
        uid: u32,
        gid: u32,
        subids: crate::ids::SubidRange,
    },
    CreateGroup {
        group: String,
        gid: Option<u32>,
    },
    CreateUser {
        stack: String,
        user: String,
        uid: u32,
        gid: u32,
        home: PathBuf,
        shell: String,
    },
    AddToGroup {
        stack: String,
        user: String,
        group: String,
    },
    AddSubids {
        stack: String,
        user: String,
        subids: crate::ids::SubidRange,
        subuid: bool,
        subgid: bool,
    },
    EnableLinger {
        stack: String,
        user: String,
        uid: u32,
    },
    StartPodmanSocket {
        stack: String,
        user: String,
        uid: u32,
        socket: PathBuf,
    },
    Migrate {
        stack: String,
        path: PathBuf,
        mode: MigrateMode,
        shift: Shift,
        target_uid: u32,
        target_gid: u32,
        resume: bool,
        survey: Survey,
    },
    /// Env files, images, volumes and the service that move with the stack.
    Handoff(crate::handoff::HandoffStep),
}

impl Step {
    pub fn stack(&self) -> Option<&str> {
        match self {
            Step::RecordAllocation { stack, .. }
            | Step::CreateUser { stack, .. }
            | Step::AddToGroup { stack, .. }
            | Step::AddSubids { stack, .. }
            | Step::EnableLinger { stack, .. }
            | Step::StartPodmanSocket { stack, .. }
            | Step::Migrate { stack, .. } => Some(stack),
            Step::Handoff(h) => Some(h.stack()),
            Step::CreateGroup { .. } => None,
        }
    }
}

impl fmt::Display for Step {
    /// One line, `+` for something added, `~` for something changed in place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::RecordAllocation {
                stack,
                user,
                uid,
                subids,
                ..
            } => {
                write!(
                    f,
                    "+ allocation {stack}: user {user} uid {uid}, subordinate ids {subids}"
                )
            }
            Step::CreateGroup {
                group,
                gid: Some(g),
            } => write!(f, "+ group {group} (gid {g})"),
            Step::CreateGroup { group, gid: None } => write!(f, "+ group {group}"),
            Step::CreateUser {
                user,
                uid,
                gid,
                home,
                ..
            } => {
                write!(
                    f,
                    "+ user {user} (uid {uid}, gid {gid}, home {})",
                    home.display()
                )
            }
            Step::AddToGroup { user, group, .. } => write!(f, "+ member {user} of group {group}"),
            Step::AddSubids {
                user,
                subids,
                subuid,
                subgid,
                ..
            } => {
                let files = match (subuid, subgid) {
                    (true, true) => "subuid+subgid",
                    (true, false) => "subuid",
                    _ => "subgid",
                };
                write!(f, "+ {files} {user}:{}:{}", subids.start, subids.count)
            }
            Step::EnableLinger { user, .. } => {
                write!(f, "+ linger for {user}, wait for its user manager")
            }
            Step::StartPodmanSocket { user, socket, .. } => {
                write!(
                    f,
                    "+ podman.socket for {user}, verify GET /_ping on {}",
                    socket.display()
                )
            }
            Step::Migrate {
                stack,
                path,
                mode,
                survey,
                resume,
                ..
            } => {
                let mode = match mode {
                    MigrateMode::Shift => "shift",
                    MigrateMode::Reown => "reown",
                    MigrateMode::Auto => "auto",
                };
                write!(
                    f,
                    "~ migrate {} for {stack} ({mode}{}): {} inodes: {} shift, {} reown, {} already done, {} left (outside the legacy mapping)",
                    path.display(),
                    if *resume { ", resuming an interrupted run" } else { "" },
                    survey.inodes,
                    survey.shift,
                    survey.reown,
                    survey.already,
                    survey.outside
                )
            }
            Step::Handoff(h) => h.fmt(f),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Already as the policy wants: nothing to do.
    Present,
    /// Recorded by isolate but no longer in the policy: kept, never deleted.
    Orphaned,
    /// Left out on purpose (e.g. --no-systemd).
    Skipped,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    pub stack: Option<String>,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.kind {
            NoteKind::Present => "=",
            NoteKind::Orphaned => "?",
            NoteKind::Skipped => "-",
            NoteKind::Warning => "!",
        };
        write!(f, "{mark} {}", self.message)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
}

/// The mapping a stack's containers get: uid 0 -> the stack user, 1.. -> its range.
pub fn stack_maps(a: &crate::state::Allocation) -> IdMaps {
    IdMaps {
        uid: Mapping::new(a.uid, vec![a.subids]),
        gid: Mapping::new(a.gid, vec![a.subids]),
    }
}

/// The legacy owner's mapping, read from the host's files (podman's order of lines).
pub fn legacy_maps(policy: &Policy, acc: &Accounts) -> Option<IdMaps> {
    let name = &policy.legacy_owner.as_ref()?.value;
    let user = acc.user(name)?;
    Some(IdMaps {
        uid: Mapping::new(user.uid, acc.subuid.ranges_of(name, Some(user.uid))),
        gid: Mapping::new(user.gid, acc.subgid.ranges_of(name, Some(user.uid))),
    })
}

pub fn socket_path(uid: u32) -> PathBuf {
    PathBuf::from(format!("/run/user/{uid}/podman/podman.sock"))
}

/// What the next migration of one data path is, from the state file and the mappings.
/// observe() surveys with the same spec that plan() hands to apply.
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
    stack: &crate::policy::StackPolicy,
    a: &crate::state::Allocation,
    path: &std::path::Path,
) -> NextMigration {
    let to = stack_maps(a);
    let run = |shift: Shift, mode: MigrateMode, resume: bool| NextMigration::Run {
        spec: MigrationSpec {
            mode,
            shift,
            target_uid: a.uid,
            target_gid: a.gid,
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
    opts: &Options,
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

fn selected<'a>(
    policy: &'a Policy,
    opts: &'a Options,
) -> impl Iterator<Item = &'a crate::policy::StackPolicy> {
    policy
        .stacks
        .values()
        .filter(move |s| opts.stacks.is_empty() || opts.stacks.contains(&s.name))
}

/// Checks `--stack` names against the policy: unknown names are bad input.
pub fn check_selection(policy: &Policy, opts: &Options) -> Result<()> {
    let unknown: Vec<String> = opts
        .stacks
        .iter()
        .filter(|s| !policy.stacks.contains_key(*s))
        .map(|s| {
            format!(
                "--stack {s}: the policy {} defines no such stack",
                policy.file.display()
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(unknown.join("\n")))
    }
}

/// The steps that bring the host to the policy, for the selected stacks, in order.
pub fn plan(policy: &Policy, obs: &Observed, opts: &Options) -> Result<Plan> {
    check_selection(policy, opts)?;
    let allocs = alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks)?;
    let acc = &obs.accounts;
    let mut out = Plan::default();
    let mut refusals: Vec<String> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();

    let group = &policy.shared_group.value;
    if !allocs.is_empty() {
        match acc.group(group) {
            Some(g) => out
                .notes
                .push(present(None, format!("group {group} (gid {})", g.gid))),
            None => out.steps.push(Step::CreateGroup {
                group: group.clone(),
                gid: None,
            }),
        }
    }
    let legacy = legacy_maps(policy, acc);

    for s in selected(policy, opts) {
        let Allocated {
            allocation: a,
            source,
        } = &allocs[&s.name];
        let name = Some(s.name.clone());
        if *source == Source::New || *source == Source::Adopted {
            out.steps.push(Step::RecordAllocation {
                stack: s.name.clone(),
                user: a.user.clone(),
                uid: a.uid,
                gid: a.gid,
                subids: a.subids,
            });
        }
        match acc.group_by_gid(a.gid) {
            Some(g) if g.name == a.user || *source == Source::Adopted => {}
            Some(g) => refusals.push(format!(
                "stack `{}`: gid {} belongs to group `{}`, not `{}`",
                s.name, a.gid, g.name, a.user
            )),
            None => out.steps.push(Step::CreateGroup {
                group: a.user.clone(),
                gid: Some(a.gid),
            }),
        }
        match acc.user(&a.user) {
            Some(u) if u.uid == a.uid => out.notes.push(present(
                name.clone(),
                format!("user {} (uid {})", a.user, a.uid),
            )),
            Some(u) => refusals.push(format!(
                "stack `{}`: user {} has uid {}, but isolate recorded {}",
                s.name, a.user, u.uid, a.uid
            )),
            None => {
                if let Some(other) = acc.user_by_uid(a.uid) {
                    refusals.push(format!(
                        "stack `{}`: uid {} now belongs to user `{}`",
                        s.name, a.uid, other.name
                    ));
                }
                out.steps.push(Step::CreateUser {
                    stack: s.name.clone(),
                    user: a.user.clone(),
                    uid: a.uid,
                    gid: a.gid,
                    home: PathBuf::from(HOME_BASE).join(&a.user),
                    shell: obs.nologin.clone(),
                });
            }
        }
        let member = acc
            .group(group)
            .is_some_and(|g| g.members.contains(&a.user));
        if !member {
            out.steps.push(Step::AddToGroup {
                stack: s.name.clone(),
                user: a.user.clone(),
                group: group.clone(),
            });
        }
        let has =
            |f: &crate::sys::etc::SubidFile| f.ranges_of(&a.user, Some(a.uid)).contains(&a.subids);
        let (subuid, subgid) = (!has(&acc.subuid), !has(&acc.subgid));
        if subuid || subgid {
            out.steps.push(Step::AddSubids {
                stack: s.name.clone(),
                user: a.user.clone(),
                subids: a.subids,
                subuid,
                subgid,
            });
        } else {
            out.notes.push(present(
                name.clone(),
                format!(
                    "subordinate ids {}:{}:{}",
                    a.user, a.subids.start, a.subids.count
                ),
            ));
        }

        if opts.systemd {
            let m = obs.managers.get(&a.user).cloned().unwrap_or_default();
            if !m.linger {
                out.steps.push(Step::EnableLinger {
                    stack: s.name.clone(),
                    user: a.user.clone(),
                    uid: a.uid,
                });
            }
            if !(m.socket_enabled && m.socket_active) {
                out.steps.push(Step::StartPodmanSocket {
                    stack: s.name.clone(),
                    user: a.user.clone(),
                    uid: a.uid,
                    socket: socket_path(a.uid),
                });
            } else {
                out.notes.push(present(
                    name.clone(),
                    format!("podman.socket of {} enabled and active", a.user),
                ));
            }
        } else {
            out.notes.push(Note {
                kind: NoteKind::Skipped,
                stack: name.clone(),
                message: format!("linger and podman.socket for {} (--no-systemd)", a.user),
            });
        }

        for d in &s.data {
            let path = &d.value;
            let (shift, mode, resume) = match next_migration(
                &obs.state,
                legacy.as_ref(),
                s,
                a,
                path,
            ) {
                NextMigration::Done => {
                    out.notes.push(present(
                        name.clone(),
                        format!("{} migrated", path.display()),
                    ));
                    continue;
                }
                NextMigration::RollbackInterrupted => {
                    refusals.push(format!(
                        "stack `{}`: a rollback of {} was interrupted; finish it first with `isolate rollback --stack {}`",
                        s.name,
                        path.display(),
                        s.name
                    ));
                    continue;
                }
                NextMigration::NeedsLegacy => {
                    problems.push(Problem::new(
                        s.migrate.span.clone(),
                        format!("stack `{}` needs `legacy_owner` to shift its data", s.name),
                    ));
                    continue;
                }
                NextMigration::Overlapping => {
                    refusals.push(format!(
                        "stack `{}`: the legacy mapping and the stack's mapping overlap, so a shift would not be exact; give the stack a range apart from the legacy owner's",
                        s.name
                    ));
                    continue;
                }
                NextMigration::Run { spec, resume } => (spec.shift, spec.mode, resume),
            };
            let survey = match obs.data.get(&(s.name.clone(), path.clone())) {
                Some(DataFacts::Surveyed(v)) => v.clone(),
                Some(DataFacts::Refused(why)) => {
                    refusals.push(format!("stack `{}`: {}", s.name, why));
                    continue;
                }
                None => Survey::default(),
            };
            let holders: Vec<&RunningContainer> = obs
                .running
                .iter()
                .filter(|c| &c.data_path == path)
                .collect();
            if !holders.is_empty() && !opts.force {
                refusals.push(format!(
                    "stack `{}`: containers are running on {}: {}; stop them first (or pass --force)",
                    s.name,
                    path.display(),
                    holders.iter().map(|c| format!("{} (of {})", c.name, c.owner)).collect::<Vec<_>>().join(", ")
                ));
                continue;
            }
            out.steps.push(Step::Migrate {
                stack: s.name.clone(),
                path: path.clone(),
                mode,
                shift,
                target_uid: a.uid,
                target_gid: a.gid,
                resume,
                survey,
            });
        }
        crate::handoff::plan::plan_stack(policy, s, a, obs, opts, &mut out, &mut refusals);
    }

    // Stacks isolate knows about that the policy no longer names: never deleted, only reported.
    for (stack, rec) in &obs.state.stacks {
        if policy.stacks.contains_key(stack) {
            continue;
        }
        let a = &rec.allocation;
        let data: Vec<String> = rec
            .migrations
            .iter()
            .map(|m| m.path.display().to_string())
            .collect();
        out.notes.push(Note {
            kind: NoteKind::Orphaned,
            stack: Some(stack.clone()),
            message: format!(
                "stack `{stack}` is no longer in the policy; kept: user {} (uid {}), subordinate ids {}{}. Its range stays reserved. To retire it for good: stop its containers, `loginctl disable-linger {}`, move its data to another stack (add it back to the policy with `migrate`), then `userdel {}` yourself",
                a.user,
                a.uid,
                a.subids,
                if data.is_empty() { String::new() } else { format!(", data {}", data.join(", ")) },
                a.user,
                a.user
            ),
        });
    }

    if !problems.is_empty() {
        return Err(policy.error(problems));
    }
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals.join("\n")));
    }
    Ok(out)
}

fn present(stack: Option<String>, message: String) -> Note {
    Note {
        kind: NoteKind::Present,
        stack,
        message,
    }
}

#[cfg(test)]
mod tests;
