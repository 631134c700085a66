//! What observation reads for `reaches` and the step that writes a stack's override (its
//! planner is plan/reach.rs; the policy-only checks are policy/reach.rs).
use super::{override_path, PortRecord};
use crate::layout::Root;
pub use crate::policy::reach::{policy_problems, takes_part};
use crate::policy::Policy;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

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
    /// Targets not applied that a selected stack reaches: what the legacy user runs of them.
    pub legacy: BTreeMap<String, super::legacy::LegacyTarget>,
    /// The legacy publishes isolate made (src/reach/legacy.rs).
    pub legacy_record: super::legacy::LegacyRecords,
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
    legacy: Option<LegacyView<'_>>,
) -> crate::error::Result<ReachFacts> {
    let mut f = ReachFacts {
        legacy_record: super::legacy_run::observe_records(root)?,
        ..Default::default()
    };
    if let Some(view) = legacy {
        f.legacy = view.targets(policy, homes);
    }
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

/// What observation may ask of the legacy user's podman: her account, isolate's state (which
/// stacks run as their own users) and the session (only given with systemd).
pub struct LegacyView<'a> {
    pub accounts: &'a crate::host::accounts::Accounts,
    pub state: &'a crate::state::State,
    pub session: &'a crate::host::session::Session<'a>,
}

impl LegacyView<'_> {
    /// For each target that a selected stack (`homes`) reaches, that is not selected itself
    /// and does not run as its own user: the legacy user's running containers of its project.
    fn targets(
        &self,
        policy: &Policy,
        homes: &BTreeMap<String, PathBuf>,
    ) -> BTreeMap<String, super::legacy::LegacyTarget> {
        let mut out = BTreeMap::new();
        let Some(user) = policy
            .legacy_owner
            .as_ref()
            .and_then(|l| self.accounts.user(&l.value))
        else {
            return out;
        };
        let wanted: BTreeSet<&str> = policy
            .stacks
            .values()
            .filter(|s| homes.contains_key(&s.name))
            .flat_map(|s| s.reaches.iter().map(|r| r.value.stack.as_str()))
            .filter(|t| !homes.contains_key(*t))
            .filter(|t| {
                self.state
                    .handoff
                    .get(*t)
                    .is_none_or(|h| h.service.is_none())
            })
            .collect();
        if wanted.is_empty() {
            return out;
        }
        if !self.session.socket_listening(user.uid) {
            if let Err(e) = self.session.ensure_socket(user.uid) {
                tracing::warn!("the podman store of {} is not reachable: {e}", user.name);
                return out;
            }
        }
        for t in wanted {
            let Some(s) = policy.stacks.get(t) else {
                continue;
            };
            let project = s.handoff.project_of(t);
            match self.session.project_containers(user.uid, &project) {
                Ok(cs) => {
                    let running = cs
                        .into_iter()
                        .filter(|c| c.state == "running")
                        .map(|c| c.name)
                        .collect();
                    out.insert(t.to_string(), super::legacy::LegacyTarget { running });
                }
                Err(e) => {
                    tracing::warn!("cannot list {}'s containers of {project}: {e}", user.name)
                }
            }
        }
        out
    }
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
    /// What this step breaks and why (shown with the step, by plan and by apply).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
        for w in &self.warnings {
            write!(f, "\n  ! {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "legacy_view_tests.rs"]
mod legacy_view_tests;
