//! The decisions of `isolate init`, as a commented policy: one stack per compose project,
//! its bind mounts as data, host paths several stacks mount as shares, and everything it
//! cannot decide (unset variables, files, sockets, network filesystems, named volumes) as a
//! comment. Pure: the host facts come in as data.
use super::compose::{Mount, Project, Service, Source};
use super::render::{header, share, stack};
pub use super::text::{c, p, stack_name, toml_key, toml_string};
pub use super::uids::container_uid;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

/// What the host says about a bind-mount source (under --root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathFacts {
    pub kind: PathKind,
    /// The filesystem type when it is one isolate cannot chown on (nfs, cifs, virtiofs, ...).
    pub network_fs: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    File,
    Symlink,
    Missing,
}

/// Everything the draft is made from.
pub struct Input<'a> {
    pub projects: &'a [Project],
    pub legacy_owner: Option<&'a str>,
    /// The legacy owner is missing from the root's passwd (plan would refuse it).
    pub legacy_missing: bool,
    /// Facts per bind-mount source; a path without facts counts as a directory.
    pub facts: &'a BTreeMap<PathBuf, PathFacts>,
    /// Where filesystem types came from, or None when they could not be read.
    pub mountinfo: Option<&'a str>,
    pub user_prefix: &'a str,
    /// The `--env` files every project was interpolated from.
    pub interpolated_with: &'a [PathBuf],
}

/// Host paths that are never a stack's data: the host's own system files and sockets.
pub(super) const HOST_SYSTEM: &[&str] = &[
    "/etc", "/dev", "/proc", "/sys", "/run", "/var/run", "/usr", "/lib", "/lib64", "/bin", "/sbin",
    "/boot", "/tmp", "/nix",
];

fn is_socket(text: &str) -> bool {
    let name = text.rsplit('/').next().unwrap_or(text);
    name == "docker.sock" || name == "podman.sock"
}

/// One use of a host path by one service.
#[derive(Clone, Debug)]
pub(super) struct Use {
    pub(super) stack: String,
    pub(super) service: String,
    pub(super) target: String,
    pub(super) read_only: bool,
    pub(super) chown: bool,
    pub(super) uid: (Option<u32>, String),
    /// The path below a library this use mounts (`libraries`): the grant covers the library.
    pub(super) mounted: Option<PathBuf>,
}

impl Use {
    pub(super) fn describe(&self) -> String {
        let mut s = format!("{}:{}", self.service, self.target);
        if self.read_only {
            s.push_str(" read-only");
        }
        if self.chown {
            s.push_str(", :U");
        }
        if let Some(m) = &self.mounted {
            s.push_str(&format!(" (mounts {})", m.display()));
        }
        s
    }
}

#[derive(Default)]
pub(super) struct StackDraft {
    pub(super) project: String,
    pub(super) file: PathBuf,
    pub(super) services: Vec<String>,
    pub(super) data: BTreeMap<PathBuf, Vec<Use>>,
    pub(super) notes: Vec<String>,
    /// `compose`, `project`, `env_files`, `service` and the named volumes (`handoff_keys`).
    pub(super) handoff: String,
    /// `reaches` entries and why each (src/init/connect.rs).
    pub(super) reaches: Vec<(String, String)>,
}

/// The policy text.
pub fn draft(input: &Input<'_>) -> String {
    let mut stacks: BTreeMap<String, StackDraft> = BTreeMap::new();
    let mut uses: BTreeMap<PathBuf, Vec<Use>> = BTreeMap::new();
    let mut taken = BTreeSet::new();

    let mut env_users: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for pr in input.projects {
        for e in super::handoff_keys::env_files_of(pr) {
            env_users.entry(e).or_default().push(pr.name.clone());
        }
    }
    for pr in input.projects {
        let base = stack_name(&pr.name, input.user_prefix);
        let mut name = base.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let mut sd = StackDraft {
            project: pr.name.clone(),
            file: pr.file.clone(),
            services: pr.services.iter().map(|s| s.name.clone()).collect(),
            ..StackDraft::default()
        };
        let legacy = input.legacy_owner.filter(|_| !input.legacy_missing);
        super::handoff_keys::block(
            &mut sd.handoff,
            pr,
            &super::handoff_keys::Target {
                stack: &name,
                user: format!("{}{name}", input.user_prefix),
                legacy_owner: legacy,
                env_users: &env_users,
                cannot_start: cannot_start(pr, input),
            },
        );
        if !pr.not_followed.is_empty() {
            sd.notes.push(format!(
                "TODO: init does not follow {}: add the mounts they bring yourself",
                pr.not_followed.join(", ")
            ));
        }
        if !pr.unresolved.is_empty() {
            sd.notes.push(format!(
                "TODO: not set and without a default: {} (set them in the project's .env or pass --env FILE); mounts that use them are listed below",
                pr.unresolved.join(", ")
            ));
        }
        for svc in &pr.services {
            let uid = container_uid(svc);
            let at = MountOwner {
                stack: &name,
                service: svc,
                uid: &uid,
            };
            for m in &svc.mounts {
                mount_use(&mut sd, &mut uses, input, &at, m);
            }
        }
        stacks.insert(name, sd);
    }

    // What connected the projects: `reaches` on the stack that connects.
    let stack_of: BTreeMap<String, String> = stacks
        .iter()
        .map(|(n, sd)| (sd.project.clone(), n.clone()))
        .collect();
    let (conns, connect_notes) = super::connect::find(input.projects);
    for cn in conns {
        let (Some(from), Some(to)) = (
            stack_of.get(cn.from_project.as_str()),
            stack_of.get(cn.to_project.as_str()),
        ) else {
            continue;
        };
        let entry = format!("{to}:{}:{}", cn.to_service, cn.port);
        let sd = stacks.get_mut(from).expect("stack");
        if !sd.reaches.iter().any(|(e, _)| e == &entry) {
            sd.reaches.push((entry, cn.why));
        }
    }
    for (project, n) in connect_notes {
        if let Some(st) = stack_of.get(project.as_str()) {
            stacks.get_mut(st).expect("stack").notes.push(n);
        }
    }

    // Paths several stacks mount, or one stack only reads, are shares; the rest is data.
    let mut shares: BTreeMap<PathBuf, Vec<Use>> = BTreeMap::new();
    let libraries = super::libraries::fold(&mut uses);
    for (path, us) in uses {
        let stacks_using: BTreeSet<&str> = us.iter().map(|u| u.stack.as_str()).collect();
        if stacks_using.len() > 1 || us.iter().all(|u| u.read_only) || libraries.contains_key(&path)
        {
            shares.insert(path, us);
        } else {
            let st = us[0].stack.clone();
            stacks.get_mut(&st).expect("stack").data.insert(path, us);
        }
    }

    // Data on a network filesystem cannot be migrated here; nested paths are walked once.
    let all_data: Vec<(String, PathBuf)> = stacks
        .iter()
        .flat_map(|(n, s)| s.data.keys().map(move |p| (n.clone(), p.clone())))
        .collect();
    for (name, sd) in stacks.iter_mut() {
        let paths: Vec<PathBuf> = sd.data.keys().cloned().collect();
        for path in paths {
            let facts = input.facts.get(&path);
            if let Some(fs) = facts.and_then(|f| f.network_fs.as_ref()) {
                let us = sd.data.remove(&path).unwrap_or_default();
                sd.notes.push(format!(
                    "not data: {} ({}) is on {fs}: chown there is refused (or lies to you); migrate its owners on the file server",
                    p(&path),
                    describe_all(&us)
                ));
                continue;
            }
            if let Some((other, outer)) = all_data
                .iter()
                .find(|(_, o)| o != &path && path.starts_with(o))
            {
                let us = sd.data.remove(&path).unwrap_or_default();
                if other == name {
                    sd.notes.push(format!(
                        "{} ({}) lies inside {}, listed above: migrated with it",
                        p(&path),
                        describe_all(&us),
                        p(outer)
                    ));
                } else {
                    sd.notes.push(format!(
                        "TODO: {} ({}) lies inside {}, the data of stack `{other}`: one directory cannot belong to two stacks; move it, or make it a share",
                        p(&path),
                        describe_all(&us),
                        p(outer)
                    ));
                }
            }
        }
    }

    // A share must lie apart from every data path and every other share (one owner of each
    // inode's ACL entries). The innermost shares stay; one that holds another share or
    // overlaps data is left out, commented, with the reason.
    let mut left_out: BTreeMap<PathBuf, String> = BTreeMap::new();
    for sp in shares.keys() {
        let inner: Vec<String> = shares
            .keys()
            .filter(|o| *o != sp && o.starts_with(sp))
            .map(|o| p(o))
            .collect();
        let data: Vec<String> = stacks
            .iter()
            .flat_map(|(n, sd)| sd.data.keys().map(move |d| (n, d)))
            .filter(|(_, d)| sp.starts_with(d) || d.starts_with(sp))
            .map(|(n, d)| format!("{} (data of {n})", p(d)))
            .collect();
        let why = match (inner.is_empty(), data.is_empty()) {
            (true, true) => continue,
            (false, _) => format!(
                "it holds the shares {}, and shares cannot nest: add these grants to those shares instead, or replace them with this one",
                inner.join(", ")
            ),
            (true, false) => format!(
                "it overlaps {}, and a share must lie apart from every stack's data: move one of them",
                data.join(", ")
            ),
        };
        left_out.insert(sp.clone(), why);
    }

    let mut o = String::new();
    header(&mut o, input, stacks.len());
    for (name, sd) in &stacks {
        stack(&mut o, input, name, sd);
    }
    let mut share_names = BTreeSet::new();
    for (path, us) in &shares {
        match left_out.get(path) {
            None => share(
                &mut o,
                input,
                path,
                us,
                libraries.get(path),
                &mut share_names,
            ),
            Some(why) => {
                let mut block = String::new();
                share(
                    &mut block,
                    input,
                    path,
                    us,
                    libraries.get(path),
                    &mut share_names,
                );
                let _ = writeln!(o, "\n# TODO: left out: {}: {}", p(path), c(why));
                for line in block
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let _ = writeln!(o, "# {line}");
                }
            }
        }
    }
    o
}

/// The mounts (`service:target`) of a project whose host path is a placeholder or not on this
/// host. (An unset variable may be the unit's own, such as XDG_RUNTIME_DIR.)
fn cannot_start(pr: &Project, input: &Input<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for s in &pr.services {
        for m in &s.mounts {
            let bad = match &m.source {
                Source::Placeholder { .. } => true,
                Source::Bind(path) => {
                    input.facts.get(path).map(|f| f.kind) == Some(PathKind::Missing)
                }
                _ => false,
            };
            if bad {
                out.push(format!("{}:{}", s.name, m.target));
            }
        }
    }
    out
}

/// The service a mount belongs to, with its stack and container uid.
struct MountOwner<'a> {
    stack: &'a str,
    service: &'a Service,
    uid: &'a (Option<u32>, String),
}

/// Sorts one mount: a use of a host path (data or share later), or a note on why not.
fn mount_use(
    sd: &mut StackDraft,
    uses: &mut BTreeMap<PathBuf, Vec<Use>>,
    input: &Input<'_>,
    at: &MountOwner<'_>,
    m: &Mount,
) {
    let (stack, svc, uid) = (at.stack, at.service, at.uid);
    let what = format!("{}:{}", svc.name, m.target);
    if is_socket(&m.written)
        || matches!(&m.source, Source::Bind(b) if is_socket(&b.to_string_lossy()))
    {
        sd.notes.push(format!(
            "WARNING: service {} mounts the container engine's socket ({}): it controls every container of this stack, and through a rootful socket the whole host. After isolate, give it this stack's own socket /run/user/UID/podman/podman.sock (`isolate status` prints it) and nothing else",
            c(&svc.name),
            c(&m.written)
        ));
        return;
    }
    match &m.source {
        Source::Ephemeral => {}
        Source::Placeholder { text, why } => sd.notes.push(format!(
            "TODO: {} mounts {} ({why}, left as the upstream file has it): its host path is unknown; add it to `data` once you know it",
            c(&what),
            c(text)
        )),
        Source::Unknown { text, why } => sd.notes.push(format!(
            "TODO: {} mounts {} ({}): its host path is unknown; add it to `data` once you know it",
            c(&what),
            c(text),
            c(why)
        )),
        // What the hand-off does with it: `handoff_keys`.
        Source::Named(_) => {}
        Source::Bind(path) => {
            if HOST_SYSTEM.iter().any(|d| path.starts_with(d)) {
                sd.notes.push(format!(
                    "not data: {} ({}): a host system path",
                    p(path),
                    c(&what)
                ));
                return;
            }
            match input.facts.get(path).map(|f| f.kind) {
                Some(PathKind::File) => {
                    sd.notes.push(format!(
                        "not data: {} ({}) is a file; isolate migrates directories: if the stack must own it, list its directory",
                        p(path),
                        c(&what)
                    ));
                    return;
                }
                Some(PathKind::Missing) => {
                    sd.notes.push(format!(
                        "TODO: {} ({}) is not on this host: podman does not create a bind mount's source, so this stack has not run with it. Create it and list it (as data or a share), or drop the mount",
                        p(path),
                        c(&what)
                    ));
                    return;
                }
                Some(PathKind::Symlink) => {
                    sd.notes.push(format!(
                        "TODO: {} ({}) is a symbolic link, which isolate never follows: list the directory it points to",
                        p(path),
                        c(&what)
                    ));
                    return;
                }
                _ => {}
            }
            if let Some(why) = crate::policy::validate::path_problem(path) {
                sd.notes
                    .push(format!("TODO: {} ({}): {}", p(path), c(&what), c(&why)));
                return;
            }
            uses.entry(path.clone()).or_default().push(Use {
                stack: stack.to_string(),
                service: svc.name.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
                chown: m.chown,
                uid: uid.clone(),
                mounted: None,
            });
        }
    }
}

pub(super) fn describe_all(us: &[Use]) -> String {
    us.iter()
        .map(|u| c(&u.describe()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
