//! What a stack's compose unit needs of the host beyond isolate's own steps, observed before
//! apply so plan names a failing one with its fix instead of apply finding it by a timeout:
//! every file and directory its compose reads in place (env files, build contexts, extended
//! and included files, secrets, bind sources named relative to the project: the copies isolate
//! makes point there) must be reachable by the stack user, and its compose command installed.
//! Observation here (read-only stats and ACL reads, never a link followed past an lstat);
//! the judgement is pure (`plan::preconditions`).
pub mod paths;
pub mod units;
pub mod volatile;

use crate::layout::Root;
use crate::policy::StackPolicy;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One directory or file on the way to something the unit reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub dir: bool,
    /// The POSIX access ACL's entries, when the node has one beyond its mode.
    pub acl: Option<Vec<AclEntry>>,
}

/// One entry of a POSIX access ACL, as the kernel stores it (`system.posix_acl_access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AclEntry {
    pub tag: u16,
    pub perm: u16,
    pub id: u32,
}

/// A path the unit's compose reads in place, and what stands on the way to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Read {
    /// What it is to compose: "env file", "build context", ...
    pub kind: String,
    pub path: PathBuf,
    /// The compose file that names it.
    pub named_in: PathBuf,
    /// `/`, then each directory down to the path's parent, then the path itself; stops
    /// early at something missing or a symbolic link (compose follows links: not judged).
    pub nodes: Vec<Node>,
    /// Whether the walk reached the path itself.
    pub complete: bool,
    /// The first component that does not exist, when the walk stopped there.
    pub missing: Option<PathBuf>,
}

/// Where the compose command was looked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    pub name: String,
    /// None: not found in any of `searched`.
    pub found: Option<PathBuf>,
    pub searched: Vec<PathBuf>,
}

/// A stack's preconditions as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub reads: Vec<Read>,
    pub command: Option<Command>,
    /// Env files on a filesystem the system rewrites, and who rewrites each (`volatile`).
    pub rewritten: Vec<(PathBuf, volatile::Rewriter)>,
    /// On NixOS: the stack's compose service as the configuration declares it (`export
    /// nixos`: a user unit in /etc/systemd/user), when it does.
    pub declared_unit: Option<PathBuf>,
}

/// The PATH a user manager gives its units (systemd's default, plus /sbin and /bin of hosts
/// without merged /usr).
pub const UNIT_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Observes the preconditions of a stack that runs a compose service: the paths named by the
/// compose files (as isolate's copies will name them, relative paths made absolute) and the
/// compose command.
pub fn observe(
    root: &Root,
    s: &StackPolicy,
    handoff: Option<&crate::handoff::StackFacts>,
) -> Facts {
    let mut facts = Facts::default();
    for e in &s.handoff.env_files {
        if let Some(r) = volatile::observe(root, &e.value) {
            facts.rewritten.push((e.value.clone(), r));
        }
    }
    if !s.handoff.wants_service() {
        return facts;
    }
    let name = s
        .handoff
        .compose_command
        .first()
        .map(|w| w.value.clone())
        .unwrap_or_else(|| crate::handoff::service::DEFAULT_COMPOSE.to_string());
    facts.declared_unit = declared_unit(root, s);
    // A declared unit gets its commands from the configuration (its PATH is the store's).
    if facts.declared_unit.is_none() {
        facts.command = Some(find_command(root, &name));
    }
    let Some(service) = handoff.and_then(|h| h.service.as_ref()) else {
        return facts;
    };
    for c in &service.copies {
        if c.kind != crate::handoff::copies::CopyKind::Compose {
            continue;
        }
        let Some(content) = &c.wanted else { continue };
        for (kind, path) in paths::read_in_place(&content.0) {
            if facts.reads.iter().any(|r| r.path == path) {
                continue;
            }
            let (nodes, complete, missing) = walk(root, &path);
            facts.reads.push(Read {
                kind,
                path,
                named_in: c.original.clone(),
                nodes,
                complete,
                missing,
            });
        }
    }
    facts
}

/// Where NixOS puts the user units a configuration declares.
pub const DECLARED_USER_UNITS: &str = "/etc/systemd/user";

/// The stack's compose service as a NixOS configuration declares it, if this is NixOS and it
/// does (the unit file read through the root, its store link resolved inside it).
fn declared_unit(root: &Root, s: &StackPolicy) -> Option<PathBuf> {
    if !root.is_nixos() {
        return None;
    }
    let unit = crate::handoff::service::unit_name(&s.handoff.project_of(&s.name));
    let path = Path::new(DECLARED_USER_UNITS).join(unit);
    units::read::text(root, &path, units::read::Links::InRoot).map(|_| path)
}

fn find_command(root: &Root, name: &str) -> Command {
    let searched: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        UNIT_PATH.iter().map(|d| Path::new(d).join(name)).collect()
    };
    let found = searched.iter().find(|p| executable(&root.at(p))).cloned();
    Command {
        name: name.to_string(),
        found,
        searched,
    }
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // A link in /usr/bin (alternatives) is how commands are installed: stat follows it.
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// lstat of `/` and every component down to `path`: the nodes, whether it got there, and the
/// first component found missing.
fn walk(root: &Root, path: &Path) -> (Vec<Node>, bool, Option<PathBuf>) {
    let mut nodes = Vec::new();
    let mut at = PathBuf::from("/");
    let mut components = path.components().skip(1);
    loop {
        let m = match std::fs::symlink_metadata(root.at(&at)) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (nodes, false, Some(at)),
            Err(_) => return (nodes, false, None),
        };
        if m.file_type().is_symlink() {
            return (nodes, false, None);
        }
        nodes.push(node(root, &at, &m));
        match components.next() {
            None => return (nodes, true, None),
            Some(c) => at.push(c),
        }
    }
}

fn node(root: &Root, at: &Path, m: &std::fs::Metadata) -> Node {
    use std::os::unix::fs::MetadataExt;
    Node {
        path: at.to_path_buf(),
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
        dir: m.is_dir(),
        acl: read_acl(&root.at(at)),
    }
}

/// The access ACL of `p` (None: it has none, or it cannot be read: mode bits decide).
fn read_acl(p: &Path) -> Option<Vec<AclEntry>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::lgetxattr(p, "system.posix_acl_access", &mut buf).ok()?;
    parse_acl(&buf[..n])
}

/// The kernel's xattr form: a u32 version (2), then (u16 tag, u16 perm, u32 id) entries.
pub fn parse_acl(b: &[u8]) -> Option<Vec<AclEntry>> {
    if b.len() < 4 || u32::from_le_bytes(b[..4].try_into().ok()?) != 2 || (b.len() - 4) % 8 != 0 {
        return None;
    }
    Some(
        b[4..]
            .chunks_exact(8)
            .map(|e| AclEntry {
                tag: u16::from_le_bytes([e[0], e[1]]),
                perm: u16::from_le_bytes([e[2], e[3]]),
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect(),
    )
}

#[cfg(test)]
pub(crate) fn walk_for_tests(root: &Root, path: &Path) -> (Vec<Node>, bool, Option<PathBuf>) {
    walk(root, path)
}
