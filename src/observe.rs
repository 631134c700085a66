// Reads the host (under --root) into plain data for plan(): account files, isolate's state,
// and, for the stacks being planned, their user managers, sockets and data. Never writes.
use crate::error::Result;
use crate::plan::{self, DataFacts, ManagerFacts, Observed, Options, RunningContainer};
use crate::policy::Policy;
use crate::state::State;
use crate::sys::etc::Accounts;
use crate::walk::{MigrateMode, MigrationSpec};
use std::path::{Path, PathBuf};

/// The live facts observation asks of systemd and podman, behind a trait so tests can
/// answer them and `--no-systemd` can answer "nothing runs".
pub trait LiveProbe {
    fn manager(&self, user: &str, uid: u32) -> ManagerFacts;
    /// Running containers of `owner` (uid) that mount one of `paths` (or a path inside one).
    fn running(&self, owner: &str, uid: u32, paths: &[PathBuf]) -> Vec<RunningContainer>;
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
    for (stack, a) in &allocs {
        let a = &a.allocation;
        obs.managers
            .insert(a.user.clone(), live.manager(&a.user, a.uid));
        let Some(sp) = policy.stacks.get(stack) else {
            continue;
        };
        let paths: Vec<PathBuf> = sp.data.iter().map(|d| d.value.clone()).collect();
        obs.running.extend(live.running(&a.user, a.uid, &paths));
        if let (Some(l), Some(lu)) = (&policy.legacy_owner, legacy.as_ref()) {
            obs.running
                .extend(live.running(&l.value, lu.uid.root, &paths));
        }
    }
    // Any process of any user whose mount namespace holds a data path about to migrate (the
    // podman CLI without an API socket included). Only the live host has such processes.
    if root == Path::new("/") {
        for (_, path) in plan::pending_migrations(policy, &obs.state, opts) {
            obs.running.extend(mount_holders(&obs.accounts, &path));
        }
    }
    obs.running
        .sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
    obs.running.dedup();

    let sys = crate::walk::sys::RealSys::new();
    for (stack, path) in plan::pending_migrations(policy, &obs.state, opts) {
        let Some(a) = allocs.get(&stack) else {
            continue;
        };
        let on_host = under_root(root, &path);
        let facts = match crate::walk::check_data_path(&sys, &on_host) {
            Err(e) => DataFacts::Refused(e.to_string()),
            Ok(()) if !survey => continue,
            Ok(()) => {
                let to = plan::stack_maps(&a.allocation);
                let from = legacy.clone().unwrap_or_else(|| to.clone());
                let mode = policy.stacks[&stack].migrate.value;
                let shift = match obs.state.migration(&stack, &path) {
                    Some(m) if m.phase == crate::state::MigrationPhase::Migrating => {
                        crate::ids::Shift {
                            from: m.from.clone(),
                            to: m.to.clone(),
                        }
                    }
                    _ => crate::ids::Shift { from, to },
                };
                let spec = MigrationSpec {
                    mode: if shift.from == shift.to {
                        MigrateMode::Reown
                    } else {
                        mode
                    },
                    shift,
                    target_uid: a.allocation.uid,
                    target_gid: a.allocation.gid,
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
