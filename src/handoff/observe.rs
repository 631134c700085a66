//! Reads what the hand-off of a stack needs to plan: its env files, its compose files (images
//! and volumes, interpolated from the env files), and, where their API sockets already
//! listen, the legacy user's and the stack user's podman stores. Never writes, never starts
//! a socket.
use super::compose::{self, ComposeFacts};
use super::images::Stores;
use super::{env_files, LegacyStore, StackFacts};
use crate::error::Result;
use crate::policy::{Policy, StackPolicy};
use crate::state::Allocation;
use crate::sys::etc::Accounts;
use std::collections::BTreeMap;
use std::path::Path;

/// The variables compose interpolates with: the env files' pairs, later files winning.
fn compose_env(
    root: &Path,
    s: &StackPolicy,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for e in &s.handoff.env_files {
        let bytes = env_files::read_pinned(root, &e.value)
            .map_err(|err| format!("env file {}: {err}", e.value.display()))?;
        env.extend(compose::parse_env_file(&String::from_utf8_lossy(&bytes)));
    }
    Ok(env)
}

fn read_compose(root: &Path, s: &StackPolicy) -> std::result::Result<ComposeFacts, String> {
    let mut facts = ComposeFacts::default();
    if s.handoff.compose.is_empty() {
        return Ok(facts);
    }
    let env = compose_env(root, s)?;
    let project = s.handoff.project_of(&s.name);
    for c in &s.handoff.compose {
        let shown = c.value.display();
        let bytes = env_files::read_pinned(root, &c.value)
            .map_err(|err| format!("compose file {shown}: {err}"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("compose file {shown} is not UTF-8"))?;
        compose::parse_into(&text, &env, &project, &mut facts)
            .map_err(|err| format!("compose file {shown}: {err}"))?;
    }
    Ok(facts)
}

/// Everything the hand-off plans from, for one stack. `stores` is None without systemd.
pub fn observe_stack(
    root: &Path,
    policy: &Policy,
    acc: &Accounts,
    s: &StackPolicy,
    a: &Allocation,
    stores: Option<&dyn Stores>,
) -> Result<StackFacts> {
    let mut facts = StackFacts::default();
    for e in &s.handoff.env_files {
        facts
            .env_files
            .insert(e.value.clone(), env_files::observe(root, &e.value)?);
    }
    // Env files that are missing or links are refused by plan; compose is read only from
    // files that are right.
    let env_ok = facts
        .env_files
        .values()
        .all(|f| matches!(f, env_files::EnvFileFacts::File(_)));
    if env_ok {
        match read_compose(root, s) {
            Ok(c) => facts.compose = c,
            Err(e) => facts.compose_error = Some(e),
        }
    }
    let Some(stores) = stores else {
        return Ok(facts);
    };
    let project = s.handoff.project_of(&s.name);
    let legacy_user = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| acc.user(&l.value))
        .filter(|u| stores.socket_listening(u.uid));
    if let Some(u) = legacy_user {
        let containers = stores
            .project_containers(u.uid, &project)
            .unwrap_or_else(|e| {
                tracing::warn!("cannot list {}'s containers of {project}: {e}", u.name);
                Vec::new()
            });
        let mut store = LegacyStore {
            user: u.name.clone(),
            uid: u.uid,
            containers,
            images: BTreeMap::new(),
        };
        for i in super::wanted_images(s, &facts.compose, &store.containers) {
            if let Ok(id) = stores.image_id(u.uid, &i) {
                store.images.insert(i, id);
            }
        }
        facts.legacy = Some(store);
    }
    if stores.socket_listening(a.uid) {
        let containers = facts
            .legacy
            .as_ref()
            .map(|l| l.containers.clone())
            .unwrap_or_default();
        for i in super::wanted_images(s, &facts.compose, &containers) {
            if let Ok(id) = stores.image_id(a.uid, &i) {
                facts.stack_images.insert(i, id);
            }
        }
    }
    Ok(facts)
}
