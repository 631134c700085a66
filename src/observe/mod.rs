//! Reads the host (under --root) into plain data for plan(): account files, isolate's state,
//! and, for the stacks being planned, their user managers, what holds their data, and a
//! survey of each data path still to migrate, and what closing data and sharing would change
//! (`isolation::observe`). Never writes.
mod facts;

pub use facts::{DataFacts, LiveProbe, ManagerFacts, Observed, RunningContainer};

use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::layout::Root;
use crate::plan::{self, Options};
use crate::policy::Policy;
use crate::state::{Allocation, State};
use std::path::{Path, PathBuf};

/// Everything plan() needs.
pub fn observe(
    root: &Root,
    policy: &Policy,
    opts: &Options,
    live: &dyn LiveProbe,
) -> Result<Observed> {
    let accounts = Accounts::read(root)?;
    let state = State::read(root)?;
    let nixos = root.is_nixos();
    let login_defs = crate::layout::LOGIN_DEFS;
    let login_defs = match std::fs::read_to_string(root.at(Path::new(login_defs))) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(crate::error::Error::io(format!("reading {login_defs}"), e)),
    };
    let mut obs = Observed {
        accounts,
        state,
        nologin: root.nologin(),
        nixos,
        subid_zones: crate::alloc::zones::host_zones(login_defs.as_deref(), nixos),
        ..Observed::default()
    };

    // Allocation errors surface again, with positions, from plan(); here they only limit
    // what can be looked at.
    let allocs =
        crate::alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks).unwrap_or_default();
    let legacy = plan::data::legacy_maps(policy, &obs.accounts);
    let pending = plan::data::pending_migrations(policy, &obs.state, opts);
    for (stack, a) in &allocs {
        let a = &a.allocation;
        obs.managers
            .insert(a.user.clone(), live.manager(&a.user, a.uid));
        let paths: Vec<PathBuf> = pending
            .iter()
            .filter(|(s, _)| s == stack)
            .map(|(_, p)| p.clone())
            .collect();
        if paths.is_empty() {
            continue;
        }
        obs.running.extend(stack_holders(
            root,
            &obs.accounts,
            live,
            Some(policy),
            a,
            &paths,
        ));
    }
    for (stack, a) in &allocs {
        if let Some(s) = policy.stacks.get(stack) {
            let facts = crate::handoff::observe::observe_stack(
                root,
                policy,
                &obs.accounts,
                s,
                &a.allocation,
                live.stores(),
            )?;
            obs.handoff.insert(stack.clone(), facts);
        }
    }
    let homes = allocs
        .iter()
        .map(|(s, a)| {
            let home = crate::handoff::service::home_of(&obs.accounts, &a.allocation);
            (s.clone(), home)
        })
        .collect();
    obs.reach = crate::reach::plan::observe(root, policy, &homes)?;
    obs.running
        .sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
    obs.running.dedup();

    let sys = crate::walk::sys::RealSys::new();
    for (stack, path) in pending {
        let Some(a) = allocs.get(&stack) else {
            continue;
        };
        let on_host = root.at(&path);
        let missing = crate::walk::data_path_missing(&sys, &on_host).unwrap_or(false);
        let facts = match crate::walk::check_data_path(&sys, &on_host) {
            Err(_) if missing => DataFacts::Missing,
            Err(e) => DataFacts::Refused(e.to_string()),
            Ok(()) => {
                let sp = &policy.stacks[&stack];
                let plan::data::NextMigration::Run { spec, .. } = plan::data::next_migration(
                    &obs.state,
                    legacy.as_ref(),
                    sp,
                    &a.allocation,
                    &path,
                ) else {
                    continue; // plan() reports why
                };
                match crate::walk::survey(&sys, &on_host, &spec) {
                    Ok(s) => DataFacts::Surveyed(s),
                    Err(e) => DataFacts::Refused(e.to_string()),
                }
            }
        };
        obs.data.insert((stack, path), facts);
    }
    obs.isolation = crate::isolation::observe::observe(
        root,
        &sys,
        &crate::isolation::fs::RealAclProbe,
        policy,
        &obs.accounts,
        &obs.state,
        &allocs,
        opts,
        true,
    )?;
    Ok(obs)
}

/// What holds any of a stack's `paths` in use: running containers of the stack user and of
/// the legacy owner, asked of their podman sockets, and on the live host any process of any
/// user with one of them mounted (the podman CLI without an API socket included).
pub fn stack_holders(
    root: &Root,
    acc: &Accounts,
    live: &dyn LiveProbe,
    policy: Option<&Policy>,
    a: &Allocation,
    paths: &[PathBuf],
) -> Vec<RunningContainer> {
    let mut owners = vec![(a.user.as_str(), a.uid)];
    if let Some(l) = policy
        .and_then(|p| p.legacy_owner.as_ref())
        .and_then(|l| acc.user(&l.value))
    {
        owners.push((l.name.as_str(), l.uid));
    }
    let mut out = Vec::new();
    for (owner, uid) in owners {
        out.extend(live.running(owner, uid, paths));
    }
    if root.is_host() {
        for p in paths {
            out.extend(mount_holders(acc, p));
        }
    }
    out
}

/// Processes holding `path` (or a directory inside it) mounted, as running containers; when
/// they cannot be listed, that is reported as a holder too, so migration refuses.
pub fn mount_holders(acc: &Accounts, path: &Path) -> Vec<RunningContainer> {
    let found = match crate::host::mounts::mount_holders(path) {
        Ok(f) => f,
        Err(e) => {
            return vec![RunningContainer {
                owner: "?".into(),
                name: format!("(cannot look for holders: {e})"),
                data_path: path.to_path_buf(),
            }]
        }
    };
    found
        .into_iter()
        .map(|h| RunningContainer {
            owner: acc
                .user_by_uid(h.uid)
                .map_or_else(|| format!("uid {}", h.uid), |u| u.name.clone()),
            name: format!(
                "pid {} ({}, mounted at {})",
                h.pid,
                h.comm,
                h.mount_point.display()
            ),
            data_path: path.to_path_buf(),
        })
        .collect()
}
