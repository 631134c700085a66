// Reads the host (under --root) into plain data for plan(): account files, isolate's state,
// and, for the stacks being planned, their user managers, sockets and data. Never writes.
use crate::error::Result;
use crate::plan::{self, DataFacts, ManagerFacts, Observed, Options, RunningContainer};
use crate::policy::Policy;
use crate::state::State;
use crate::sys::etc::Accounts;
use std::path::{Path, PathBuf};

/// The live facts observation asks of systemd and podman, behind a trait so tests can
/// answer them and `--no-systemd` can answer "nothing runs".
pub trait LiveProbe {
    fn manager(&self, user: &str, uid: u32) -> ManagerFacts;
    /// Running containers of `owner` (uid) that mount one of `paths` (or a path inside one).
    fn running(&self, owner: &str, uid: u32, paths: &[PathBuf]) -> Vec<RunningContainer>;
    /// The users' podman stores, for the hand-off (None: not looked at).
    fn stores(&self) -> Option<&dyn crate::handoff::stores::Stores> {
        None
    }
}

/// The answer without systemd: only the linger file can be seen, nothing runs.
pub struct NoLiveProbe<'a> {
    pub root: &'a Path,
}

impl LiveProbe for NoLiveProbe<'_> {
    fn manager(&self, user: &str, _uid: u32) -> ManagerFacts {
        ManagerFacts {
            linger: linger_file(self.root, user).exists(),
            ..ManagerFacts::default()
        }
    }
    fn running(&self, _owner: &str, _uid: u32, _paths: &[PathBuf]) -> Vec<RunningContainer> {
        Vec::new()
    }
}

pub fn linger_file(root: &Path, user: &str) -> PathBuf {
    root.join("var/lib/systemd/linger").join(user)
}

/// Where a data path of the policy lies under the root isolate works on.
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The first nologin shell the root has, as shadow's tools would be given it.
pub fn nologin(root: &Path) -> String {
    [
        "/usr/sbin/nologin",
        "/sbin/nologin",
        "/run/current-system/sw/bin/nologin",
        "/usr/bin/nologin",
    ]
    .into_iter()
    .find(|p| under_root(root, Path::new(p)).exists())
    .unwrap_or("/usr/sbin/nologin")
    .to_string()
}

/// Everything plan() needs. `survey` says whether data paths are walked for counts (apply
/// and plan do; status does not).
pub fn observe(
    root: &Path,
    policy: &Policy,
    opts: &Options,
    live: &dyn LiveProbe,
    survey: bool,
) -> Result<Observed> {
    let accounts = Accounts::read(root)?;
    let state = State::read(root)?;
    let mut obs = Observed {
        accounts,
        state,
        nologin: nologin(root),
        ..Observed::default()
    };

    // Allocation errors surface again, with positions, from plan(); here they only limit
    // what can be looked at.
    let allocs =
        crate::alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks).unwrap_or_default();
    let legacy = plan::legacy_maps(policy, &obs.accounts);
    let pending = plan::pending_migrations(policy, &obs.state, opts);
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
        let mut owners = vec![(a.user.as_str(), a.uid)];
        if let (Some(l), Some(lu)) = (&policy.legacy_owner, legacy.as_ref()) {
            owners.push((l.value.as_str(), lu.uid.root));
        }
        obs.running
            .extend(holders(root, &obs.accounts, live, &owners, &paths));
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
    obs.running
        .sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
    obs.running.dedup();

    let sys = crate::walk::sys::RealSys::new();
    for (stack, path) in pending {
        let Some(a) = allocs.get(&stack) else {
            continue;
        };
        let on_host = under_root(root, &path);
        let facts = match crate::walk::check_data_path(&sys, &on_host) {
            Err(e) => DataFacts::Refused(e.to_string()),
            Ok(()) if !survey => continue,
            Ok(()) => {
                let sp = &policy.stacks[&stack];
                let plan::NextMigration::Run { spec, .. } =
                    plan::next_migration(&obs.state, legacy.as_ref(), sp, &a.allocation, &path)
                else {
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
    Ok(obs)
}

/// What holds any of `paths` in use: running containers of `owners` (name, uid), asked of their
/// podman sockets, and on the live host any process of any user with one of them mounted
/// (the podman CLI without an API socket included).
pub fn holders(
    root: &Path,
    acc: &Accounts,
    live: &dyn LiveProbe,
    owners: &[(&str, u32)],
    paths: &[PathBuf],
) -> Vec<RunningContainer> {
    let mut out = Vec::new();
    for (owner, uid) in owners {
        out.extend(live.running(owner, *uid, paths));
    }
    if root == Path::new("/") {
        for p in paths {
            out.extend(mount_holders(acc, p));
        }
    }
    out
}

/// Processes holding `path` (or a directory inside it) mounted, as running containers; when
/// they cannot be listed, that is reported as a holder too, so migration refuses.
pub fn mount_holders(acc: &Accounts, path: &Path) -> Vec<RunningContainer> {
    let found = match crate::sys::podman::mount_holders(path) {
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
