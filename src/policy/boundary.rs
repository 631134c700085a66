//! The checks of a policy against the host's accounts that keep isolate off what belongs to
//! people and to the system: no data, share or env file path in or above a person's home (below
//! the legacy owner's own home is her stacks' data, so it stays allowed), and no existing user or
//! group taken over unless isolate created it or the policy names it in `adopt`; root, accounts
//! below uid/gid 1000 isolate did not record, and privileged groups never.
use super::{Located, Policy, Problem};
use crate::host::accounts::etc::{Accounts, GroupEntry, PasswdEntry};
use crate::state::State;
use std::path::{Path, PathBuf};

/// Groups whose members hold privileges on the host (administration, raw devices, logs,
/// container engines, the console), whatever their gid.
pub const PRIVILEGED_GROUPS: &[&str] = &[
    "root",
    "sudo",
    "wheel",
    "admin",
    "adm",
    "disk",
    "kmem",
    "tty",
    "shadow",
    "staff",
    "docker",
    "podman",
    "lxd",
    "incus",
    "incus-admin",
    "libvirt",
    "kvm",
    "systemd-journal",
    "systemd-network",
    "input",
    "video",
    "audio",
    "plugdev",
    "nogroup",
    "nobody",
    "users",
];

/// Below this, uids and gids are the system's (shadow's UID_MIN/GID_MIN default).
pub const FIRST_PERSON_ID: u32 = 1000;

/// Every problem of `policy` against the host's accounts, each at its place in the policy.
pub fn host_problems(policy: &Policy, acc: &Accounts, state: &State) -> Vec<Problem> {
    let mut out = home_problems(policy, acc, state);
    if !policy.stacks.is_empty() {
        out.extend(shared_group_problem(policy, acc, state));
    }
    out.extend(stack_user_problems(policy, acc, state));
    out
}

fn adopted(policy: &Policy, name: &str) -> bool {
    policy.adopt.iter().any(|a| a.value == name)
}

/// Whether isolate recorded `gid` as its own (a stack's group or the shared group).
fn recorded_gid(state: &State, gid: u32) -> bool {
    state.stacks.values().any(|r| r.allocation.gid == gid)
        || state.shared_group.as_ref().is_some_and(|g| g.gid == gid)
}

/// Why joining `g` would give privileges, for a group isolate did not record.
fn privileged(g: &GroupEntry) -> Option<&'static str> {
    if PRIVILEGED_GROUPS.contains(&g.name.as_str()) {
        Some("a privileged group")
    } else if g.gid < FIRST_PERSON_ID {
        Some("a system group (gid below 1000)")
    } else {
        None
    }
}

/// Users isolate made or takes over for a stack: their homes are its own, not a person's.
fn stack_account(policy: &Policy, state: &State, user: &str) -> bool {
    state.stacks.values().any(|r| r.allocation.user == user)
        || policy.stacks.keys().any(|s| policy.stack_user(s) == user)
}

/// Data, share and env file paths against every person's home.
fn home_problems(policy: &Policy, acc: &Accounts, state: &State) -> Vec<Problem> {
    let legacy = policy.legacy_owner.as_ref().map(|l| l.value.as_str());
    let homes: Vec<(&PasswdEntry, PathBuf)> = acc
        .passwd
        .iter()
        .filter(|u| !stack_account(policy, state, &u.name))
        .map(|u| (u, Path::new(&u.home).components().collect::<PathBuf>()))
        .filter(|(_, h)| h.is_absolute() && h != Path::new("/"))
        .collect();
    let problem = |what: &str, path: &Located<PathBuf>| -> Option<Problem> {
        let p = &path.value;
        let shown = format!("{what}{:?}", p.display().to_string());
        homes.iter().find_map(|(u, home)| {
            let is_legacy = legacy == Some(u.name.as_str());
            let why = if p == home && is_legacy {
                format!("{shown} is the home directory of user {} (the legacy owner): name the stack's own directories below it", u.name)
            } else if p == home {
                format!("{shown} is the home directory of user {}: isolate never gives a person's files to a stack", u.name)
            } else if home.starts_with(p) {
                format!("{shown} holds {}, the home directory of user {}: isolate never gives a person's files to a stack", home.display(), u.name)
            } else if p.starts_with(home) && !is_legacy {
                format!("{shown} is inside {}, the home directory of user {}: isolate never gives a person's files to a stack (if {}'s containers own them, make {} the legacy_owner)", home.display(), u.name, u.name, u.name)
            } else {
                return None;
            };
            Some(Problem::new(path.span.clone(), why))
        })
    };
    let mut out = Vec::new();
    for s in policy.stacks.values() {
        out.extend(s.data.iter().filter_map(|d| problem("", d)));
        out.extend(
            s.handoff
                .env_files
                .iter()
                .filter_map(|e| problem("env file ", e)),
        );
    }
    out.extend(
        policy
            .shares
            .values()
            .filter_map(|sh| problem("", &sh.path)),
    );
    out
}

/// The shared group: created by isolate, recorded by it, or an ordinary group the policy
/// names in `adopt`.
fn shared_group_problem(policy: &Policy, acc: &Accounts, state: &State) -> Option<Problem> {
    let name = &policy.shared_group.value;
    let g = acc.group(name)?;
    let recorded = state
        .shared_group
        .as_ref()
        .is_some_and(|r| &r.name == name && r.gid == g.gid);
    if recorded {
        return None;
    }
    let recorded_users: Vec<&str> = state
        .stacks
        .values()
        .map(|r| r.allocation.user.as_str())
        .collect();
    let shown = format!(
        "shared_group {name:?} is the existing group {name} (gid {})",
        g.gid
    );
    let primary_of = acc
        .passwd
        .iter()
        .find(|u| u.gid == g.gid && !recorded_users.contains(&u.name.as_str()));
    // Made (`groupadd --system`, so below gid 1000) by an isolate that did not record it yet:
    // only its recorded stack users are members, which only isolate makes them.
    let made_by_isolate = !g.members.is_empty()
        && g.members
            .iter()
            .all(|m| recorded_users.contains(&m.as_str()));
    let why = if PRIVILEGED_GROUPS.contains(&name.as_str()) {
        Some("a privileged group".to_string())
    } else if let Some(u) = primary_of {
        Some(format!("the primary group of user {}", u.name))
    } else if made_by_isolate {
        return None;
    } else {
        privileged(g).map(str::to_string)
    };
    if let Some(why) = why {
        return Some(Problem::new(
            policy.shared_group.span.clone(),
            format!("{shown}, {why}, which isolate did not create: stack users never join it; name a group that does not exist yet and isolate creates it"),
        ));
    }
    if adopted(policy, name) {
        return None;
    }
    Some(Problem::new(
        policy.shared_group.span.clone(),
        format!("{shown}, which isolate did not create: to have every stack user join it, add adopt = [{name:?}]; or name a group that does not exist yet and isolate creates it"),
    ))
}

/// Stacks not recorded yet whose user, or whose user's own group, exists already.
fn stack_user_problems(policy: &Policy, acc: &Accounts, state: &State) -> Vec<Problem> {
    let mut out = Vec::new();
    for s in policy
        .stacks
        .values()
        .filter(|s| !state.stacks.contains_key(&s.name))
    {
        let user = policy.stack_user(&s.name);
        let said = format!("stack `{}` gives user name {user:?}", s.name);
        let Some(u) = acc.user(&user) else {
            if let Some(g) = acc.group(&user) {
                out.push(Problem::new(
                    s.span.clone(),
                    format!("{said}, but the group {user} (gid {}) exists already and isolate did not create it: the stack user's own group would be that group; rename the stack or change user_prefix", g.gid),
                ));
            }
            continue;
        };
        let why = user_privilege(policy, acc, state, u);
        let msg = match why {
            Some(why) => format!(
                "{said}: the existing user {user} (uid {}) is {why}, which isolate did not create: a stack never takes it over; rename the stack or change user_prefix",
                u.uid
            ),
            None if adopted(policy, &user) => continue,
            None => format!(
                "{said}: the existing user {user} (uid {}) was not created by isolate: to make it this stack's user, add adopt = [{user:?}]; or rename the stack or change user_prefix",
                u.uid
            ),
        };
        out.push(Problem::new(s.span.clone(), msg));
    }
    out
}

/// Why taking over `u` would give a stack privileges: root, a system account, or a member of a
/// privileged group (its primary group or another).
fn user_privilege(
    policy: &Policy,
    acc: &Accounts,
    state: &State,
    u: &PasswdEntry,
) -> Option<String> {
    if u.uid == 0 {
        return Some("root".into());
    }
    // One isolate made (its home is isolate's, its uid from the pool) is no system account,
    // also when the state file that recorded it is gone.
    let isolates = Path::new(&u.home) == crate::layout::home(&u.name)
        && ((policy.pools.uid_first..=policy.pools.uid_last).contains(&u.uid)
            || super::PREVIOUS_DEFAULT_UIDS.contains(&u.uid));
    if u.uid < FIRST_PERSON_ID && !isolates {
        return Some("a system account (uid below 1000)".into());
    }
    acc.group
        .iter()
        .filter(|g| g.gid == u.gid || g.members.contains(&u.name))
        .filter(|g| !(recorded_gid(state, g.gid) || (isolates && g.gid == u.gid)))
        .find_map(|g| {
            privileged(g).map(|why| format!("a member of group {} (gid {}), {why}", g.name, g.gid))
        })
}
