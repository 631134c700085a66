//! `isolate status`: per stack, what isolate recorded and what runs now (user, ids, linger,
//! user manager, socket and `_ping`, migrations, closed data, share grants, the environment
//! compose needs). Gathered
//! here, printed by `render`.
use crate::alloc::known_allocations;
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::ids::SubidRange;
use crate::layout::{self, Root};
use crate::migration::MigrateMode;
use crate::observe::Live;
use crate::plan::{check_selection, Options};
use crate::policy::Policy;
use crate::state::{MigrationPhase, State};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One stack's line in `status`.
#[derive(Clone, Debug, Serialize)]
pub struct StackStatus {
    pub stack: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subids: SubidRange,
    /// Recorded in the state file (apply ran for it).
    pub applied: bool,
    pub in_policy: bool,
    pub user_exists: bool,
    pub linger: bool,
    /// None when systemd was not asked (no bus, or --no-systemd).
    pub manager_active: Option<bool>,
    pub socket_enabled: Option<bool>,
    pub socket_active: Option<bool>,
    pub socket: PathBuf,
    pub ping: Option<bool>,
    pub env: BTreeMap<&'static str, String>,
    pub migrations: Vec<MigrationStatus>,
    /// Data paths closed to other stacks, and the stack's host uids let into each top.
    pub closed: Vec<crate::isolation::status::ClosedStatus>,
    /// What the policy's shares grant this stack.
    pub grants: Vec<crate::isolation::status::GrantStatus>,
    /// Env files, volumes and service handed to the stack; what the legacy user left behind.
    pub handoff: Vec<String>,
    /// The slice's cgroup files (memory, CPU, tasks, OOM kills); None before apply.
    pub usage: Option<crate::usage::cgroup::SliceUsage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MigrationStatus {
    pub path: PathBuf,
    pub mode: MigrateMode,
    pub phase: MigrationPhase,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// Whether systemd was reachable and asked.
    pub systemd: bool,
    pub stacks: Vec<StackStatus>,
}

/// `live.session` is None when systemd is not to be asked; `sys` reads the closed tops.
pub fn gather(
    root: &Root,
    policy: &Policy,
    opts: &Options,
    live: &Live<'_>,
    sys: &dyn crate::walk::sys::WalkSys,
) -> Result<Status> {
    check_selection(policy, opts)?;
    let state = State::read(root)?;
    let acc = Accounts::read(root)?;
    let known = known_allocations(Some(policy), &acc, &state, &opts.stacks);
    let record = crate::isolation::record::Record::read(root)?;
    let mut names: Vec<&String> = policy.stacks.keys().collect();
    names.extend(
        state
            .stacks
            .keys()
            .filter(|n| !policy.stacks.contains_key(*n)),
    );
    let mut stacks = Vec::new();
    for name in names
        .into_iter()
        .filter(|n| opts.stacks.is_empty() || opts.stacks.contains(n))
    {
        let Some((a, applied)) = known.get(name) else {
            continue;
        };
        let facts = live.manager(&a.user, a.uid);
        let systemd = live.session.is_some();
        let migrations: Vec<MigrationStatus> = state
            .stacks
            .get(name)
            .map(|r| {
                r.migrations
                    .iter()
                    .map(|m| MigrationStatus {
                        path: m.path.clone(),
                        mode: m.mode,
                        phase: m.phase,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let maps = a.maps();
        let migrated: Vec<PathBuf> = migrations
            .iter()
            .filter(|m| m.phase == MigrationPhase::Done)
            .map(|m| m.path.clone())
            .collect();
        let closed = crate::isolation::status::closed(root, sys, &record, name, &maps, &migrated);
        let grants = crate::isolation::status::grants(policy, name, &maps);
        let mut handoff =
            crate::handoff::status::lines(root, policy, &state, &acc, name, a, live.stores());
        handoff.extend(crate::quadlet::status::lines(
            root,
            name,
            live.session.as_ref().map(|s| s.systemd),
        ));
        stacks.push(StackStatus {
            stack: name.clone(),
            in_policy: policy.stacks.contains_key(name),
            user_exists: acc.user(&a.user).is_some_and(|u| u.uid == a.uid),
            user: a.user.clone(),
            uid: a.uid,
            gid: a.gid,
            subids: a.subids,
            applied: *applied,
            linger: facts.linger,
            manager_active: systemd.then_some(facts.manager_active),
            socket_enabled: systemd.then_some(facts.socket_enabled),
            socket_active: systemd.then_some(facts.socket_active),
            socket: layout::podman_socket(a.uid),
            ping: systemd.then_some(facts.ping_ok),
            env: layout::podman_env(a.uid),
            migrations,
            closed,
            grants,
            handoff,
            usage: applied.then(|| crate::usage::cgroup::read(root, a.uid)),
        });
    }
    Ok(Status {
        systemd: live.session.is_some(),
        stacks,
    })
}
