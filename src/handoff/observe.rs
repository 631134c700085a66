//! Reads what the hand-off of a stack needs to plan: its env files, its compose files (images
//! and volumes, interpolated from the env files), the legacy user's podman store (its API
//! socket started, not enabled, when needed) and the stack user's where its socket listens.
//! Never writes a file.
use super::compose::{self, ComposeFacts};
use super::volumes::{self, VolumeData};
use super::{env_files, LegacyStore, StackFacts, VolumeFacts};
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::host::session::Session;
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

/// The legacy user's account, as observation needs it.
struct Legacy<'a> {
    name: &'a str,
    uid: u32,
    home: &'a std::path::Path,
    /// Her own and subordinate ids (None: she has no subordinate ranges).
    maps: Option<crate::ids::IdMaps>,
}

/// The project's named volumes: those the legacy store labels as the project's, and those
/// the compose files declare (not external) that the legacy store has. The stores' sockets
/// only name them: where each store keeps a volume is computed here
/// ([`volumes::data_path`]) and looked at without following a link or crossing a mount; a
/// socket that places a volume anywhere else, and a data directory isolate must not move,
/// are refusals.
#[allow(clippy::too_many_arguments)]
fn observe_volumes(
    root: &Root,
    sys: &dyn crate::walk::sys::WalkSys,
    acc: &Accounts,
    stores: &Session<'_>,
    s: &StackPolicy,
    compose: &ComposeFacts,
    legacy: &Legacy<'_>,
    a: &Allocation,
) -> Vec<VolumeFacts> {
    let project = s.handoff.project_of(&s.name);
    let mut found = stores
        .project_volumes(legacy.uid, &project)
        .unwrap_or_else(|e| {
            tracing::warn!("cannot list the volumes of project {project}: {e}");
            Vec::new()
        });
    for v in compose.volumes.iter().filter(|v| !v.external) {
        if found.iter().any(|f| f.name == v.name) {
            continue;
        }
        if let Ok(Some(info)) = stores.volume(legacy.uid, &v.name) {
            found.push(info);
        }
    }
    let stack_home = super::service::home_of(acc, a);
    let stack_listening = stores.socket_listening(a.uid);
    found
        .into_iter()
        .map(|v| {
            let labels = v.labels.clone().unwrap_or_default();
            if !volumes::valid_name(&v.name) {
                return VolumeFacts {
                    refused: vec![format!(
                        "{}'s podman names a volume {:?}, which is not a name podman makes; isolate never builds a path from it",
                        legacy.name, v.name
                    )],
                    name: v.name,
                    labels,
                    ..VolumeFacts::default()
                };
            }
            let mut refused = Vec::new();
            if !legacy.home.is_absolute() || legacy.home == std::path::Path::new("/") {
                refused.push(format!(
                    "{}'s home in the password file is {:?}, so where her podman keeps volumes cannot be told",
                    legacy.name,
                    legacy.home
                ));
            }
            let from = volumes::data_path(legacy.home, &v.name);
            if v.mountpoint != from {
                refused.push(format!(
                    "{}'s podman socket places it at {}, not at {} where podman keeps a rootless user's volumes; isolate takes a volume only from there (a store placed elsewhere is named by files and answers the user controls, so nothing proves the directory is hers): move its data there yourself, or remove the volume from {}'s store",
                    legacy.name,
                    v.mountpoint.display(),
                    from.display(),
                    legacy.name
                ));
            }
            let (legacy_data, legacy_id) = match &legacy.maps {
                None => (false, None),
                Some(maps) => match volumes::inspect(root, sys, legacy.home, &v.name, maps) {
                    Ok(VolumeData::Missing) => (false, None),
                    Ok(VolumeData::Dir(id)) => (true, Some(id)),
                    Ok(VolumeData::Refused(why)) => {
                        refused.push(why);
                        (true, None)
                    }
                    Err(e) => {
                        refused.push(format!("{} cannot be looked at: {e}", from.display()));
                        (true, None)
                    }
                },
            };
            let to = volumes::data_path(&stack_home, &v.name);
            let stack = if stack_listening {
                stores.volume(a.uid, &v.name).ok().flatten()
            } else {
                None
            };
            if let Some(sv) = stack.as_ref().filter(|sv| sv.mountpoint != to) {
                refused.push(format!(
                    "{}'s podman socket places it at {}, not at {} where isolate puts the data",
                    a.user,
                    sv.mountpoint.display(),
                    to.display()
                ));
            }
            let stack_data =
                stack.is_some() && volumes::store_holds_data(root, &stack_home, &v.name);
            let holders = if root.is_host() && legacy_id.is_some() {
                crate::data::mount_holders(acc, &from)
                    .into_iter()
                    .map(|h| format!("{} (of {})", h.name, h.owner))
                    .collect()
            } else {
                Vec::new()
            };
            VolumeFacts {
                name: v.name,
                labels,
                legacy: Some(from),
                legacy_data,
                legacy_id,
                refused,
                stack: stack.map(|_| to),
                stack_data,
                holders,
            }
        })
        .collect()
}

/// Everything the hand-off plans from, for one stack. `stores` is None without systemd; `sys`
/// reads a volume's tree.
/// The images and podman volumes a stack's unit files (quadlets) name, read by the caller
/// (src/plugins.rs): the hand-off copies and moves them like a compose project's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FromUnits {
    pub images: Vec<String>,
    pub volumes: Vec<String>,
}

// The stack, its two sides' stores and what its unit files name: one call per stack from observe.
#[allow(clippy::too_many_arguments)]
pub fn observe_stack(
    root: &Root,
    sys: &dyn crate::walk::sys::WalkSys,
    policy: &Policy,
    acc: &Accounts,
    s: &StackPolicy,
    a: &Allocation,
    stores: Option<&Session<'_>>,
    from_units: &FromUnits,
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
    // A quadlet stack's `.volume` files and `Image=` lines are its volumes and images.
    {
        let FromUnits { images, volumes } = from_units.clone();
        for i in images {
            if !facts.compose.images.contains(&i) {
                facts.compose.images.push(i);
            }
        }
        facts
            .compose
            .volumes
            .extend(
                volumes
                    .into_iter()
                    .map(|name| super::compose::ComposeVolume {
                        key: name.clone(),
                        name,
                        external: false,
                    }),
            );
    }
    if s.handoff.wants_service() {
        facts.service = Some(super::service::observe(root, policy, acc, s, a, stores));
    }
    let Some(stores) = stores else {
        return Ok(facts);
    };
    let project = s.handoff.project_of(&s.name);
    // The legacy store is looked at only for a stack that hands something off; its API socket
    // is started (never enabled) when it is not listening: the plan cannot name the project's
    // volumes and containers otherwise, and starting it is what any `podman` call of that
    // user does too. Without the privilege (plan as a user) the store stays unseen.
    let wants = !s.handoff.compose.is_empty()
        || !s.handoff.images.is_empty()
        || !s.handoff.quadlets.is_empty();
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
        let legacy = Legacy {
            name: &u.name,
            uid: u.uid,
            home: &crate::host::podman::store_anchor(u.uid, std::path::Path::new(&u.home)),
            maps: crate::alloc::legacy_maps(policy, acc),
        };
        facts.volumes = observe_volumes(root, sys, acc, stores, s, &facts.compose, &legacy, a);
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
