//! Reads what the hand-off of a stack needs to plan: its env files, its compose files (images
//! and volumes, interpolated from the env files), the legacy user's podman store (its API
//! socket started, not enabled, when needed) and the stack user's where its socket listens.
//! Never writes a file.
use super::compose::{self, ComposeFacts};
use super::stores::Stores;
use super::{env_files, LegacyStore, StackFacts, VolumeFacts};
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::layout::Root;
use crate::policy::{Policy, StackPolicy};
use crate::state::Allocation;
use std::collections::BTreeMap;

/// The variables compose interpolates with: the env files' pairs, later files winning.
fn compose_env(
    root: &Root,
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

pub(crate) fn read_compose(
    root: &Root,
    s: &StackPolicy,
) -> std::result::Result<ComposeFacts, String> {
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

/// The project's named volumes: those the legacy store labels as the project's, and those
/// the compose files declare (not external) that the legacy store has.
fn observe_volumes(
    root: &Root,
    acc: &Accounts,
    stores: &dyn Stores,
    s: &StackPolicy,
    compose: &ComposeFacts,
    legacy_uid: u32,
    stack_uid: u32,
) -> Vec<VolumeFacts> {
    let project = s.handoff.project_of(&s.name);
    let mut found = stores
        .project_volumes(legacy_uid, &project)
        .unwrap_or_else(|e| {
            tracing::warn!("cannot list the volumes of project {project}: {e}");
            Vec::new()
        });
    for v in compose.volumes.iter().filter(|v| !v.external) {
        if found.iter().any(|f| f.name == v.name) {
            continue;
        }
        if let Ok(Some(info)) = stores.volume(legacy_uid, &v.name) {
            found.push(info);
        }
    }
    let stack_listening = stores.socket_listening(stack_uid);
    found
        .into_iter()
        .map(|v| {
            let legacy_dir = root.at(&v.mountpoint);
            let stack = if stack_listening {
                stores.volume(stack_uid, &v.name).ok().flatten()
            } else {
                None
            };
            let stack_data = stack.as_ref().is_some_and(|sv| {
                std::fs::read_dir(root.at(&sv.mountpoint))
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            });
            let holders = if root.is_host() && legacy_dir.is_dir() {
                crate::observe::mount_holders(acc, &v.mountpoint)
                    .into_iter()
                    .map(|h| format!("{} (of {})", h.name, h.owner))
                    .collect()
            } else {
                Vec::new()
            };
            VolumeFacts {
                name: v.name.clone(),
                labels: v.labels.clone().unwrap_or_default(),
                legacy_data: std::fs::symlink_metadata(&legacy_dir).is_ok_and(|m| m.is_dir()),
                legacy: Some(v.mountpoint),
                stack: stack.map(|sv| sv.mountpoint),
                stack_data,
                holders,
            }
        })
        .collect()
}

/// Everything the hand-off plans from, for one stack. `stores` is None without systemd.
pub fn observe_stack(
    root: &Root,
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
    if s.handoff.wants_service() {
        let project = s.handoff.project_of(&s.name);
        let path = super::service::unit_path(&super::service::home_of(acc, a), &project);
        let (enabled, active) = stores
            .and_then(|st| st.unit_state(&a.user, a.uid, &super::service::unit_name(&project)))
            .unwrap_or((false, false));
        facts.service = Some(super::ServiceFacts {
            text: super::service::read_unit(root, &path),
            enabled,
            active,
        });
    }
    let Some(stores) = stores else {
        return Ok(facts);
    };
    let project = s.handoff.project_of(&s.name);
    // The legacy store is looked at only for a stack that hands something off; its API socket
    // is started (never enabled) when it is not listening: the plan cannot name the project's
    // volumes and containers otherwise, and starting it is what any `podman` call of that
    // user does too. Without the privilege (plan as a user) the store stays unseen.
    let wants = !s.handoff.compose.is_empty() || !s.handoff.images.is_empty();
    let legacy_user = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| acc.user(&l.value))
        .filter(|_| wants)
        .filter(|u| {
            stores.socket_listening(u.uid)
                || match stores.ensure_socket(u.uid) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("the podman store of {} is not reachable: {e}", u.name);
                        false
                    }
                }
        });
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
        facts.volumes = observe_volumes(root, acc, stores, s, &facts.compose, u.uid, a.uid);
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
