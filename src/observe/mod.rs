//! Reads the host (under --root) into plain data for plan(): account files, isolate's state,
//! and, for the stacks being planned, their user managers, what holds their data, and a
//! survey of each data path still to migrate, and what closing data and sharing would change
//! (`isolation::observe`). Never writes.
mod facts;
mod live;

pub use facts::{DataFacts, ManagerFacts, Observed, RunningContainer};
pub use live::Live;

use crate::alloc::Allocs;
use crate::data::next::{next_migration, pending_migrations, NextMigration};
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::host::procs::{Holder, How, ProcPort};
use crate::layout::Root;
use crate::model::Selection as Options;
use crate::policy::select::selected;
use crate::policy::Policy;
use crate::state::{Allocation, State};
use std::path::{Path, PathBuf};

/// The kernel-facing ports observe reads through (who holds what, the walk's syscalls, ACL
/// support): the caller builds the real ones (cli/), tests pass fakes.
pub struct Probes<'a> {
    pub procs: &'a dyn ProcPort,
    pub sys: &'a dyn crate::walk::sys::WalkSys,
    pub acl: &'a dyn crate::isolation::fs::AclProbe,
    /// The filesystems and limits of data trees with a disk budget (src/quota).
    pub quota: &'a dyn crate::quota::port::QuotaPort,
}

/// Everything plan() needs: the host as it is, and the run's allocation (made once here, from
/// the accounts and state just read, for `plan::plan_allocated`).
pub fn observe(
    root: &Root,
    policy: &Policy,
    opts: &Options,
    live: &Live<'_>,
    probes: &Probes<'_>,
) -> Result<(Observed, Allocs)> {
    let procs = probes.procs;
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

    // The run's one allocation (its errors carry positions), carried on to plan.
    crate::policy::select::check_selection(policy, opts)?;
    let allocs = crate::alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks)?;
    let legacy = crate::alloc::legacy_maps(policy, &obs.accounts);
    let pending = pending_migrations(policy, &obs.state, opts);
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
            let (images, volumes) = crate::plugins::units_images_and_volumes(root, s)?;
            let units = crate::handoff::observe::FromUnits { images, volumes };
            let facts = crate::handoff::observe::observe_stack(
                root,
                probes.sys,
                policy,
                &obs.accounts,
                s,
                &a.allocation,
                live.stores(),
                &units,
            )?;
            obs.preconditions.insert(
                stack.clone(),
                crate::preconditions::observe(root, s, Some(&facts)),
            );
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
    let legacy_view = live.stores().map(|session| crate::reach::plan::LegacyView {
        accounts: &obs.accounts,
        state: &obs.state,
        session,
    });
    obs.reach = crate::reach::plan::observe(root, policy, &homes, legacy_view)?;
    obs.units = crate::preconditions::units::scan_for(root, policy, &obs.accounts);
    obs.plugged = crate::plugins::observe(
        root,
        allocs.iter().map(|(s, a)| (s.as_str(), a.allocation.uid)),
    )?;
    obs.running
        .sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
    obs.running.dedup();

    let sys = probes.sys;
    for (stack, path) in pending {
        let Some(a) = allocs.get(&stack) else {
            continue;
        };
        let on_host = root.at(&path);
        let missing = crate::walk::data_path_missing(sys, &on_host).unwrap_or(false);
        let facts = match crate::walk::check_data_path(sys, &on_host) {
            Err(_) if missing => DataFacts::Missing,
            Err(e) => DataFacts::Refused(e.to_string()),
            Ok(()) => {
                let sp = &policy.stacks[&stack];
                let NextMigration::Run { spec, .. } =
                    next_migration(&obs.state, legacy.as_ref(), sp, &a.allocation, &path)
                else {
                    continue; // plan() reports why
                };
                match crate::walk::survey(sys, &on_host, &spec) {
                    Ok(s) => DataFacts::Surveyed(s),
                    Err(e) => DataFacts::Refused(e.to_string()),
                }
            }
        };
        obs.data.insert((stack, path), facts);
    }
    obs.isolation = crate::isolation::observe::observe(
        root,
        sys,
        probes.acl,
        policy,
        &obs.accounts,
        &obs.state,
        &allocs,
        opts,
        true,
    )?;
    obs.plugged.quadlets = crate::plugins::observe_quadlets(
        root,
        policy,
        &obs.accounts,
        allocs
            .iter()
            .filter_map(|(s, a)| Some((policy.stacks.get(s)?, &a.allocation))),
        live.session.as_ref().map(|x| x.systemd),
    )?;
    obs.inside = processes_inside(root, policy, &obs, &allocs, opts, procs);
    obs.quota = crate::quota::observe::observe(root, probes.quota, policy, opts)?;
    Ok((obs, allocs))
}

/// For every data path of the selected stacks that is about to be migrated, or closed for the
/// first time, the processes inside it that would keep their access afterwards (see
/// [`counts_inside`]).
fn processes_inside(
    root: &Root,
    policy: &Policy,
    obs: &Observed,
    allocs: &std::collections::BTreeMap<String, crate::alloc::Allocated>,
    opts: &Options,
    procs: &dyn ProcPort,
) -> std::collections::BTreeMap<(String, PathBuf), std::result::Result<Vec<Holder>, String>> {
    let mut asked: Vec<(String, PathBuf, bool)> = Vec::new();
    for s in selected(policy, opts) {
        if !allocs.contains_key(&s.name) {
            continue;
        }
        for d in &s.data {
            let migrating = !matches!(
                obs.state.migration(&s.name, &d.value).map(|m| m.phase),
                Some(crate::state::MigrationPhase::Done)
            );
            let closing = s.closed && obs.isolation.record.closed_top(&s.name, &d.value).is_none();
            if migrating || closing {
                asked.push((s.name.clone(), d.value.clone(), migrating));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if asked.is_empty() {
        return out;
    }
    let on_host: Vec<PathBuf> = asked.iter().map(|(_, p, _)| root.at(p)).collect();
    let found = procs.holders_inside(&on_host);
    for ((stack, path, migrating), real) in asked.into_iter().zip(&on_host) {
        let a = &allocs[&stack].allocation;
        let entry = match &found {
            Err(e) => Err(e.to_string()),
            Ok(all) => Ok(all
                .iter()
                .filter(|h| &h.path == real && counts_inside(h, a, migrating, root.is_host()))
                .cloned()
                .collect()),
        };
        out.insert((stack, path), entry);
    }
    out
}

/// Whether a process holding something inside a stack's data path keeps access it should
/// not have once the path changes owner and closes: not when every one of its uids is the
/// stack's own (its containers, which will own the data) or root (who reaches everything
/// anyway; a root mount namespace still counts, as for migration any container does); and a
/// mount of a path about to be migrated on the live host is already reported as a container
/// running on the data.
fn counts_inside(h: &Holder, a: &Allocation, migrating: bool, live_host: bool) -> bool {
    let own = a.maps();
    if h.uids.all().iter().all(|u| own.uid.contains_host(*u)) {
        return false;
    }
    match h.how {
        How::Mount { .. } => !(migrating && live_host),
        How::Cwd | How::Root | How::Fd(_) => h.uids.all() != [0; 4],
    }
}

/// What holds any of a stack's `paths` in use: running containers of the stack user and of
/// the legacy owner, asked of their podman sockets, and on the live host any process of any
/// user with one of them mounted (the podman CLI without an API socket included).
pub fn stack_holders(
    root: &Root,
    acc: &Accounts,
    live: &Live<'_>,
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
            out.extend(crate::data::mount_holders(acc, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::procs::Uids;

    fn holder(uids: [u32; 4], how: How) -> Holder {
        Holder {
            pid: 7,
            uid: uids[0],
            uids: Uids {
                real: uids[0],
                effective: uids[1],
                saved: uids[2],
                fs: uids[3],
            },
            comm: "x".into(),
            how,
            path: "/srv/a".into(),
        }
    }

    #[test]
    fn who_counts_inside_a_stacks_data() {
        let a = Allocation {
            user: "stk-a".into(),
            uid: 801,
            gid: 801,
            subids: crate::ids::SubidRange::new(200_000, 65_536).unwrap(),
        };
        let count =
            |uids, how, migrating, live| counts_inside(&holder(uids, how), &a, migrating, live);
        // The legacy owner, and a setuid-root program it started: counted.
        assert!(count([1000; 4], How::Cwd, true, false));
        assert!(count([1000, 0, 0, 0], How::Fd(3), false, true));
        // The stack's own user and container ids: not.
        assert!(!count([801; 4], How::Cwd, false, true));
        assert!(!count([200_998; 4], How::Root, true, false));
        // Root's own places: not; a root mount namespace holding the data: yes.
        assert!(!count([0; 4], How::Cwd, true, false));
        assert!(count([0; 4], How::Mount { mntns: 9 }, false, true));
        // A mount of a path being migrated on the live host is reported as a container already.
        assert!(!count([1000; 4], How::Mount { mntns: 9 }, true, true));
        assert!(count([1000; 4], How::Mount { mntns: 9 }, true, false));
    }
}
