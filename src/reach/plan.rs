//! The policy checks on `reaches`, what observation reads for them, and the plan step that
//! writes a stack's override: pure from the policy and the observed facts.
use super::{allocate_ports, override_path, targets, Networking, OverrideInput, PortRecord};
use crate::layout::Root;
use crate::plan::{Draft, Note, NoteKind, StackCtx, Step};
use crate::policy::{Policy, Problem};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// Problems of the `reaches` entries, at their place in the policy file.
pub fn policy_problems(p: &Policy) -> Vec<Problem> {
    let mut out = Vec::new();
    for s in p.stacks.values() {
        for r in &s.reaches {
            let span = r.span.clone();
            let t = &r.value;
            if t.stack == s.name {
                out.push(Problem::new(
                    span,
                    format!(
                        "`reaches` entry {t}: stack `{}` reaches its own services over its own network; no entry is needed",
                        s.name
                    ),
                ));
                continue;
            }
            if !p.stacks.contains_key(&t.stack) {
                out.push(Problem::new(
                    span,
                    format!(
                        "`reaches` entry {t}: there is no stack `{}` in the policy (stacks: {})",
                        t.stack,
                        p.stacks.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    out
}

/// Whether the stack's compose runs with the override: it reaches or is reached.
pub fn takes_part(p: &Policy, stack: &str) -> bool {
    p.stacks.values().any(|s| {
        s.reaches
            .iter()
            .any(|r| s.name == stack || r.value.stack == stack)
    })
}

/// What observation found for `reaches` (plain data; tests build it by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReachFacts {
    pub record: PortRecord,
    /// `podman --version`'s major number (None: podman not found).
    pub podman_major: Option<u32>,
    /// Per stack: its override's text as it is (None: no file).
    pub overrides: BTreeMap<String, Option<String>>,
    /// Per stack with compose files: the external networks (engine names) its services join.
    pub joins: BTreeMap<String, BTreeSet<String>>,
    /// Per reaching stack (of those observed): its containers.conf drop-in as it is.
    pub confs: BTreeMap<String, Option<String>>,
}

/// `podman --version`'s major number, None when podman is not found.
pub fn podman_major() -> Option<u32> {
    let out = std::process::Command::new("podman")
        .arg("--version")
        .output()
        .ok()?;
    // "podman version 4.3.1"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Reads the port record, the overrides, podman's version and what each stack's compose files
/// join. Never writes.
pub fn observe(
    root: &Root,
    policy: &Policy,
    homes: &BTreeMap<String, PathBuf>,
) -> crate::error::Result<ReachFacts> {
    let mut f = ReachFacts::default();
    let record = root.at(&super::ports_record_path());
    match std::fs::read(&record) {
        Ok(b) => {
            f.record = serde_json::from_slice(&b).map_err(|source| {
                super::error::ReachError::NotIsolates {
                    path: record.clone(),
                    source,
                }
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(crate::error::Error::io(
                format!("reading {}", record.display()),
                e,
            ))
        }
    }
    let any = policy.stacks.values().any(|s| !s.reaches.is_empty());
    if any {
        f.podman_major = podman_major();
    }
    for s in policy.stacks.values() {
        if let Some(home) = homes.get(&s.name).filter(|_| !s.reaches.is_empty()) {
            let path = root.at(&super::conf_path(home));
            let text = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => std::fs::read_to_string(&path).ok(),
                _ => None,
            };
            f.confs.insert(s.name.clone(), text);
        }
        if takes_part(policy, &s.name) {
            let path = root.at(&override_path(&s.name));
            let text = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => std::fs::read_to_string(&path).ok(),
                _ => None,
            };
            f.overrides.insert(s.name.clone(), text);
        }
        if s.handoff.compose.is_empty() {
            continue;
        }
        if let Ok(c) = crate::handoff::observe::read_compose(root, s) {
            let joined: BTreeSet<String> = c
                .services
                .iter()
                .flat_map(|sv| sv.networks.iter())
                .filter_map(|n| c.external_networks.get(n).cloned())
                .collect();
            f.joins.insert(s.name.clone(), joined);
        }
    }
    Ok(f)
}

/// Writes a stack's override (and records newly given host ports first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReachStep {
    pub stack: String,
    pub path: PathBuf,
    pub text: String,
    /// Host ports given now: target -> port, recorded before the file is written.
    pub new_ports: BTreeMap<String, u16>,
    /// The stack's own group: the stack's directory may let the stack user through by it
    /// (the hand-off's copies make it root:GROUP 0750).
    pub gid: u32,
    /// For a reaching stack: the containers.conf drop-in in its user's home.
    pub conf: Option<ConfFile>,
}

/// A file written into the stack user's home as that user (no link followed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfFile {
    pub path: PathBuf,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub text: String,
}

impl fmt::Display for ReachStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "+ reach override {} for {}: one more `-f` of its compose unit",
            self.path.display(),
            self.stack
        )?;
        for (t, p) in &self.new_ports {
            write!(
                f,
                "\n    | host port {p} for {t} (recorded, never given again)"
            )?;
        }
        for line in self.text.lines() {
            write!(f, "\n    | {line}")?;
        }
        if let Some(c) = &self.conf {
            write!(
                f,
                "\n  and {} (owner {}:{}), host-loopback access for its containers:",
                c.path.display(),
                c.uid,
                c.gid
            )?;
            for line in c.text.lines() {
                write!(f, "\n    | {line}")?;
            }
        }
        Ok(())
    }
}

fn note(stack: &str, kind: NoteKind, message: String) -> Note {
    Note {
        kind,
        stack: Some(stack.to_string()),
        message,
    }
}

/// The stack's override step (or a note that it is as it should be), and warnings about
/// connections the compose files show that the policy does not declare.
pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let (policy, s, obs) = (ctx.policy, ctx.stack, ctx.obs);
    let facts = &obs.reach;
    // Undeclared: another stack joins one of the external networks this one joins.
    if let Some(mine) = facts.joins.get(&s.name) {
        for (other, theirs) in &facts.joins {
            if other == &s.name {
                continue;
            }
            let shared: Vec<&String> = mine.intersection(theirs).collect();
            let declared = s.reaches.iter().any(|r| &r.value.stack == other)
                || policy
                    .stacks
                    .get(other)
                    .is_some_and(|o| o.reaches.iter().any(|r| r.value.stack == s.name));
            if !shared.is_empty() && !declared {
                draft.plan.notes.push(note(
                    &s.name,
                    NoteKind::Warning,
                    format!(
                        "stacks `{}` and `{other}` join the external podman network {} in their compose files: after the split they live in different users' network namespaces and no longer reach each other; declare the path with `reaches = [\"STACK:SERVICE:PORT\"]` on the stack that connects (isolate init drafts it)",
                        s.name,
                        shared.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    if !takes_part(policy, &s.name) {
        return;
    }
    if s.handoff.compose.is_empty() {
        let (what, with) = if s.reaches.is_empty() {
            (
                "is reached by other stacks (`reaches`)",
                "publishes its port",
            )
        } else {
            ("has `reaches`", "gives its containers the way out")
        };
        draft.refusals.push(format!(
            "stack `{}` {what} but no `compose`: the override that {with} is added to its compose files; name them",
            s.name
        ));
        return;
    }
    let all = targets(policy);
    let (ports, new_all) = allocate_ports(&facts.record, all.keys().map(String::as_str));
    let compose = obs.handoff.get(&s.name).map(|h| &h.compose);
    let mut input = OverrideInput {
        stack: s.name.clone(),
        ..Default::default()
    };
    for (key, (r, who)) in &all {
        if r.stack == s.name {
            input
                .published
                .push((r.service.clone(), r.port, ports[key], who.clone()));
            if let Some(c) = compose {
                if !c.services.is_empty() && !c.services.iter().any(|sv| sv.name == r.service) {
                    draft.refusals.push(format!(
                        "stack `{}`: `reaches` entries name service `{}` of it ({}), which its compose files do not declare (services: {})",
                        s.name,
                        r.service,
                        who.join(", "),
                        c.services.iter().map(|sv| sv.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    for r in &s.reaches {
        let port = ports[&r.value.to_string()];
        if port != r.value.port {
            draft.plan.notes.push(note(
                &s.name,
                NoteKind::Warning,
                format!(
                    "{} is published on host port {port} (port {} is another target's): `{}` must reach it as {}:{port}",
                    r.value, r.value.port, s.name, r.value.service
                ),
            ));
        }
        input.reaches.push((r.value.clone(), port));
    }
    if let Some(c) = compose {
        input.external_networks = c
            .external_networks
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        if !s.reaches.is_empty() {
            let joined: Vec<String> = c
                .services
                .iter()
                .filter(|sv| {
                    sv.networks
                        .iter()
                        .any(|n| c.external_networks.contains_key(n))
                })
                .map(|sv| sv.name.clone())
                .collect();
            input.reaching_services = if joined.is_empty() {
                c.services
                    .iter()
                    .filter(|sv| sv.network_mode.is_none())
                    .map(|sv| sv.name.clone())
                    .collect()
            } else {
                joined
            };
        }
    }
    let net = Networking::for_podman(facts.podman_major);
    let text = super::render_override(&input, net);
    // Only the entries about this stack's paths are recorded by its step.
    let new_ports: BTreeMap<String, u16> = new_all
        .into_iter()
        .filter(|(k, _)| {
            all.get(k)
                .is_some_and(|(r, who)| r.stack == s.name || who.contains(&s.name))
        })
        .collect();
    let conf = (!s.reaches.is_empty()).then(|| {
        let a = ctx.allocation;
        let home = crate::handoff::service::home_of(&obs.accounts, a);
        ConfFile {
            path: super::conf_path(&home),
            home,
            uid: a.uid,
            gid: a.gid,
            text: net.containers_conf(),
        }
    });
    let conf_as_wanted = match &conf {
        None => true,
        Some(c) => facts.confs.get(&s.name).cloned().flatten().as_deref() == Some(c.text.as_str()),
    };
    let current = facts.overrides.get(&s.name).cloned().flatten();
    if current.as_deref() == Some(text.as_str()) && new_ports.is_empty() && conf_as_wanted {
        draft.plan.notes.push(note(
            &s.name,
            NoteKind::Present,
            format!(
                "reach override {} as the policy wants",
                override_path(&s.name).display()
            ),
        ));
        return;
    }
    draft.step(Step::Reach(ReachStep {
        stack: s.name.clone(),
        path: override_path(&s.name),
        text,
        new_ports,
        gid: ctx.allocation.gid,
        conf,
    }));
}
