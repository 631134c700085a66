//! Checks a parsed policy needs no host for: names, paths, pins and pools. Host-dependent
//! checks (pins against existing users, the legacy owner, people's homes, accounts isolate did
//! not create) happen in allocation (`boundary`).
use super::{Policy, Problem};
use crate::ids::{SubidRange, ID_CEILING};
use crate::migration::MigrateMode;
use std::path::{Component, Path};

/// What shadow's useradd accepts by default (no --badname): `[a-z_][a-z0-9_-]*[$]?`, 32 bytes at most.
pub fn valid_user_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'_'
                || c == b'-'
                || (c == b'$' && i == b.len() - 1)
        })
}

/// Trees that belong to the system: no data path, share or env file lies in or below one, and
/// none holds one. Migrating or handing over anything there gives a part of the host (its
/// configuration, programs, boot files, logs, spools, container stores, isolate's own state,
/// kernel interfaces, runtime sockets) to a stack.
pub const SYSTEM_TREES: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/efi",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/nix",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/var/backups",
    "/var/cache",
    "/var/db",
    "/var/empty",
    "/var/lib/apt",
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/lib/dpkg",
    "/var/lib/isolate",
    "/var/lib/machines",
    "/var/lib/nixos",
    "/var/lib/private",
    "/var/lib/systemd",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Directories that are no stack's data themselves, while a stack's own directories below them
/// are: `/srv/immich`, `/mnt/media/photos`, `/opt/stacks/web`, `/home/alice/stacks/x/data`
/// (people's homes themselves are checked against the host's passwd, see `boundary`).
const SYSTEM_DIRS: &[&str] = &[
    "/", "/home", "/media", "/mnt", "/opt", "/srv", "/var", "/var/lib",
];

/// Why `p` (absolute, normal form) belongs to the system, if it does: inside or equal to a
/// system tree, one of the system directories, or holding a system tree.
pub fn system_problem(p: &Path) -> Option<String> {
    let shown = p.display().to_string();
    if let Some(tree) = SYSTEM_TREES
        .iter()
        .map(Path::new)
        .find(|t| p.starts_with(t))
    {
        return Some(if p == tree {
            format!("{shown:?} belongs to the system: isolate never gives it to a stack")
        } else {
            format!(
                "{shown:?} is inside {}, which belongs to the system: isolate never gives it to a stack",
                tree.display()
            )
        });
    }
    if SYSTEM_DIRS.iter().any(|d| Path::new(d) == p) {
        return Some(format!(
            "{shown:?} is a system directory; name the stack's own directories below it"
        ));
    }
    SYSTEM_TREES
        .iter()
        .map(Path::new)
        .find(|t| t.starts_with(p))
        .map(|tree| {
            format!(
                "{shown:?} holds {}, which belongs to the system: isolate never gives it to a stack",
                tree.display()
            )
        })
}

pub fn path_problem(p: &Path) -> Option<String> {
    if !p.is_absolute() {
        return Some(format!(
            "{:?} is a relative path; data and share paths must be absolute",
            p.display().to_string()
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || p.to_str()
            .is_some_and(|s| s.contains("//") || (s.len() > 1 && s.ends_with('/')))
    {
        return Some(format!(
            "{:?} is not in normal form (no `.`, `..`, `//` or trailing `/`)",
            p.display().to_string()
        ));
    }
    system_problem(p)
}

/// `file:line:column` of a span of the policy, to name a second place in a message.
fn place(p: &Policy, span: &std::ops::Range<usize>) -> String {
    let (l, c) = super::line_col(&p.text, span.start);
    format!("{}:{l}:{c}", p.file.display())
}

/// Env files: none in a system tree, none claimed by two stacks, none inside another stack's
/// data (its migration would take it) or inside a share (other stacks reach it). A file has one
/// owner; two claims make every apply hand it to the other stack.
fn env_file_problems(p: &Policy, flagged: &[std::ops::Range<usize>]) -> Vec<Problem> {
    let mut out = Vec::new();
    let all: Vec<(&str, &super::Located<std::path::PathBuf>)> = p
        .stacks
        .values()
        .flat_map(|s| {
            s.handoff
                .env_files
                .iter()
                .map(move |e| (s.name.as_str(), e))
        })
        .filter(|(_, e)| !flagged.contains(&e.span))
        .collect();
    for (stack, e) in &all {
        // Below /run (a tmpfs: sops-nix and agenix secrets, runtime files) plan judges it,
        // seeing whether its writer already gives it to the stack user (preconditions::volatile).
        if let Some(why) = system_problem(&e.value).filter(|_| !e.value.starts_with("/run/")) {
            out.push(Problem::new(e.span.clone(), format!("env file {why}")));
            continue;
        }
        for (other, o) in &all {
            if other != stack && o.value == e.value {
                out.push(Problem::new(
                    e.span.clone(),
                    format!(
                        "env file {} is also stack `{other}`'s ({}): a file has one owner; give each stack its own copy",
                        e.value.display(),
                        place(p, &o.span)
                    ),
                ));
            }
        }
        for s in p.stacks.values().filter(|s| s.name != *stack) {
            for d in s.data.iter().filter(|d| e.value.starts_with(&d.value)) {
                out.push(Problem::new(
                    e.span.clone(),
                    format!(
                        "env file {} is inside {}, the data of stack `{}`: a file has one owner; keep a stack's env files apart from other stacks' data",
                        e.value.display(),
                        d.value.display(),
                        s.name
                    ),
                ));
            }
        }
        for sh in p
            .shares
            .values()
            .filter(|sh| e.value.starts_with(&sh.path.value))
        {
            out.push(Problem::new(
                e.span.clone(),
                format!(
                    "env file {} is inside share `{}` ({}), which other stacks reach: keep secrets out of shares",
                    e.value.display(),
                    sh.name,
                    sh.path.value.display()
                ),
            ));
        }
    }
    out
}

/// Stack user names that would be someone else's account: the shared group's (the stack's own
/// group would be the shared group) or the legacy owner's; and `adopt` entries that name no
/// account of this policy.
fn name_problems(p: &Policy) -> Vec<Problem> {
    let mut out = Vec::new();
    for s in p.stacks.values() {
        let user = p.stack_user(&s.name);
        if user == p.shared_group.value {
            out.push(Problem::new(
                s.span.clone(),
                format!(
                    "stack `{}` gives user name {user:?}, the name of shared_group: its own group would be the shared group; rename the stack, or change shared_group or user_prefix",
                    s.name
                ),
            ));
        }
        if p.legacy_owner.as_ref().is_some_and(|l| l.value == user) {
            out.push(Problem::new(
                s.span.clone(),
                format!(
                    "stack `{}` gives user name {user:?}, the legacy owner: the legacy owner never becomes a stack user; rename the stack or change user_prefix",
                    s.name
                ),
            ));
        }
    }
    for a in &p.adopt {
        let known =
            a.value == p.shared_group.value || p.stacks.keys().any(|s| p.stack_user(s) == a.value);
        if !known {
            out.push(Problem::new(
                a.span.clone(),
                format!(
                    "adopt names {:?}, which is neither a stack user of this policy (user_prefix + stack name) nor shared_group",
                    a.value
                ),
            ));
        }
    }
    out
}

pub(super) fn check(p: &Policy) -> Vec<Problem> {
    let mut out = super::reach::policy_problems(p);
    let prefix = &p.user_prefix;
    if !prefix.value.is_empty() && !valid_user_name(&prefix.value) {
        out.push(Problem::new(
            prefix.span.clone(),
            format!("user_prefix {:?} cannot start a user name: use lower-case letters, digits, `_` and `-`, starting with a letter or `_`", prefix.value),
        ));
    }
    if !valid_user_name(&p.shared_group.value) {
        out.push(Problem::new(
            p.shared_group.span.clone(),
            format!(
                "shared_group {:?} is not a valid group name",
                p.shared_group.value
            ),
        ));
    }
    if let Some(l) = &p.legacy_owner {
        if l.value.is_empty() {
            out.push(Problem::new(l.span.clone(), "legacy_owner is empty"));
        }
    }

    let pools = &p.pools;
    let ps = p.pools_span.clone();
    if pools.uid_first == 0 || pools.uid_first > pools.uid_last {
        out.push(Problem::new(
            ps.clone(),
            format!(
                "uid pool {}-{} is empty or includes root",
                pools.uid_first, pools.uid_last
            ),
        ));
    }
    if u64::from(pools.uid_last) >= ID_CEILING || u64::from(pools.subid_last) >= ID_CEILING {
        out.push(Problem::new(
            ps.clone(),
            "pools must end below 2147483648 (2^31)",
        ));
    }
    if pools.subid_size == 0 {
        out.push(Problem::new(ps.clone(), "subid_size must be at least 1"));
    } else if u64::from(pools.subid_first) + u64::from(pools.subid_size)
        > u64::from(pools.subid_last) + 1
    {
        out.push(Problem::new(
            ps.clone(),
            format!(
                "subid pool {}-{} cannot hold one range of {}",
                pools.subid_first, pools.subid_last, pools.subid_size
            ),
        ));
    }
    if pools.uid_first <= pools.subid_last && pools.subid_first <= pools.uid_last {
        out.push(Problem::new(
            ps.clone(),
            "the uid pool and the subid pool overlap",
        ));
    }

    let uses_mapping = p
        .stacks
        .values()
        .any(|s| s.migrate.value == MigrateMode::Shift && !s.data.is_empty());
    if uses_mapping && p.legacy_owner.is_none() {
        let first = p
            .stacks
            .values()
            .find(|s| s.migrate.value == MigrateMode::Shift && !s.data.is_empty())
            .unwrap();
        out.push(Problem::new(
            first.migrate.span.clone(),
            format!("stack `{}` migrates by shift, which needs `legacy_owner` (the user whose containers own the data today)", first.name),
        ));
    }

    let mut all_data: Vec<(&str, &super::Located<std::path::PathBuf>)> = Vec::new();
    let mut handoff_spans = Vec::new();
    for s in p.stacks.values() {
        let user = p.stack_user(&s.name);
        if !valid_user_name(&user) {
            out.push(Problem::new(
                s.span.clone(),
                format!(
                    "stack name `{}` gives user name {:?}, which is not a valid user name (lower-case letters, digits, `_`, `-`; 32 bytes at most)",
                    s.name, user
                ),
            ));
        }
        if s.data.is_empty() && !s.span.is_empty() {
            // "no data list" is reported by the reader; an empty list is legal (account only).
        }
        for d in &s.data {
            if let Some(why) = path_problem(&d.value) {
                out.push(Problem::new(d.span.clone(), why));
            } else {
                all_data.push((s.name.as_str(), d));
            }
        }
        let handoff = super::handoff::check(s);
        handoff_spans.extend(handoff.iter().map(|h| h.span.clone()));
        out.extend(handoff);
        if let Some(u) = &s.uid {
            if u.value == 0 || u64::from(u.value) >= ID_CEILING {
                out.push(Problem::new(
                    u.span.clone(),
                    format!(
                        "uid {} is not allowed: pick one from 1 to 2147483647",
                        u.value
                    ),
                ));
            }
        }
        if let Some(start) = &s.subid_start {
            if u64::from(start.value) + u64::from(pools.subid_size) > ID_CEILING || start.value == 0
            {
                out.push(Problem::new(
                    start.span.clone(),
                    format!(
                        "subid_start {} with subid_size {} does not end below 2^31",
                        start.value, pools.subid_size
                    ),
                ));
            }
        }
    }

    // A directory inside another (the same stack's or another's) would be walked twice,
    // and handed to two owners when the stacks differ.
    for (i, (sa, a)) in all_data.iter().enumerate() {
        for (sb, b) in &all_data[i + 1..] {
            let (inner, outer, outer_stack, inner_stack) = if a.value.starts_with(&b.value) {
                (a, b, sb, sa)
            } else if b.value.starts_with(&a.value) {
                (b, a, sa, sb)
            } else {
                continue;
            };
            let msg = if inner.value == outer.value {
                format!(
                    "{} is listed twice (stacks `{}` and `{}`)",
                    inner.value.display(),
                    outer_stack,
                    inner_stack
                )
            } else if outer_stack == inner_stack {
                format!(
                    "{} is inside {}, already listed for stack `{}`",
                    inner.value.display(),
                    outer.value.display(),
                    outer_stack
                )
            } else {
                format!(
                    "data path {} of stack `{}` is inside {}, the data of stack `{}`",
                    inner.value.display(),
                    inner_stack,
                    outer.value.display(),
                    outer_stack
                )
            };
            out.push(Problem::new(inner.span.clone(), msg));
        }
    }

    // Pins: duplicates and overlaps among themselves. Against the host: in allocation.
    let pinned: Vec<_> = p
        .stacks
        .values()
        .filter_map(|s| s.uid.as_ref().map(|u| (s, u)))
        .collect();
    for (i, (sa, a)) in pinned.iter().enumerate() {
        for (sb, b) in &pinned[i + 1..] {
            if a.value == b.value {
                let later = if a.span.start > b.span.start { a } else { b };
                out.push(Problem::new(
                    later.span.clone(),
                    format!(
                        "uid {} is pinned for both `{}` and `{}`",
                        b.value, sa.name, sb.name
                    ),
                ));
            }
        }
    }
    let ranges: Vec<_> = p
        .stacks
        .values()
        .filter_map(|s| {
            let st = s.subid_start.as_ref()?;
            Some((s, st, SubidRange::new(st.value, pools.subid_size).ok()?))
        })
        .collect();
    for (i, (sa, _, ra)) in ranges.iter().enumerate() {
        for (sb, lb, rb) in &ranges[i + 1..] {
            if ra.overlaps(rb) {
                out.push(Problem::new(
                    lb.span.clone(),
                    format!(
                        "subordinate range {} of `{}` overlaps {} pinned for `{}`",
                        rb, sb.name, ra, sa.name
                    ),
                ));
            }
        }
        for (sb, u) in &pinned {
            if ra.contains(u.value) {
                out.push(Problem::new(
                    u.span.clone(),
                    format!(
                        "uid {} of `{}` lies inside the subordinate range {} pinned for `{}`",
                        u.value, sb.name, ra, sa.name
                    ),
                ));
            }
        }
    }

    out.extend(env_file_problems(p, &handoff_spans));
    out.extend(name_problems(p));

    let shares: Vec<_> = p.shares.values().collect();
    for (i, sh) in shares.iter().enumerate() {
        if let Some(why) = path_problem(&sh.path.value) {
            out.push(Problem::new(sh.path.span.clone(), why));
        }
        // One inode must have one owner of its ACL entries: a share is neither a stack's
        // closed data nor part of another share.
        let share_path = &sh.path.value;
        for st in p.stacks.values() {
            for d in &st.data {
                if share_path.starts_with(&d.value) || d.value.starts_with(share_path) {
                    out.push(Problem::new(
                        sh.path.span.clone(),
                        format!(
                            "share `{}` ({}) overlaps data path {} of stack `{}`; a share must lie apart from every stack's data",
                            sh.name,
                            share_path.display(),
                            d.value.display(),
                            st.name
                        ),
                    ));
                }
            }
        }
        for other in &shares[..i] {
            let o = &other.path.value;
            if share_path.starts_with(o) || o.starts_with(share_path) {
                out.push(Problem::new(
                    sh.path.span.clone(),
                    format!(
                        "share `{}` ({}) overlaps share `{}` ({})",
                        sh.name,
                        share_path.display(),
                        other.name,
                        o.display()
                    ),
                ));
            }
        }
        for g in sh.read.iter().chain(&sh.write) {
            if !p.stacks.contains_key(&g.value.stack) {
                out.push(Problem::new(
                    g.span.clone(),
                    format!(
                        "share `{}` names stack `{}`, which the policy does not define",
                        sh.name, g.value.stack
                    ),
                ));
            } else if let Some(c) = g.value.container_uid {
                if u64::from(c) > u64::from(pools.subid_size) {
                    out.push(Problem::new(
                        g.span.clone(),
                        format!(
                            "container uid {c} does not exist in a stack with subid_size {}",
                            pools.subid_size
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::valid_user_name;

    #[test]
    fn user_names_follow_shadow() {
        for ok in ["stk-immich", "_x", "a1-b_c", "samba$", &"a".repeat(32)] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Immich",
            "1abc",
            "a b",
            "a.b",
            "-a",
            "a$b",
            &"a".repeat(33),
        ] {
            assert!(!valid_user_name(bad), "{bad}");
        }
    }
}
