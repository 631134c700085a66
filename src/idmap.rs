//! `isolate map`: which host ids a stack's container id is, and which stack (or the legacy
//! owner) a host id belongs to, from the recorded allocations or the ones apply would make.
use crate::alloc::known_allocations;
use crate::alloc::legacy_maps;
use crate::error::{Error, Result};
use crate::host::accounts::Accounts;
use crate::layout::Root;
use crate::policy::Policy;
use crate::state::State;
use serde::Serialize;

/// `map STACK ID`: the host uid and gid of container id `container_id`.
#[derive(Clone, Debug, Serialize)]
pub struct ToHost {
    pub stack: String,
    pub container_id: u32,
    pub host_uid: u32,
    pub host_gid: u32,
    /// Recorded in the state file (otherwise: what apply would allocate).
    pub applied: bool,
}

/// Who a host id belongs to: a stack or the legacy owner, with its container ids.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum HostIdOwner {
    Stack {
        stack: String,
        user: String,
        container_uid: Option<u32>,
        container_gid: Option<u32>,
        applied: bool,
    },
    LegacyOwner {
        legacy_owner: String,
        container_uid: Option<u32>,
        container_gid: Option<u32>,
    },
}

pub fn to_host(root: &Root, policy: Option<&Policy>, stack: &str, id: u32) -> Result<ToHost> {
    let state = State::read(root)?;
    let acc = Accounts::read(root)?;
    let allocs = known_allocations(policy, &acc, &state, &[]);
    let Some((a, applied)) = allocs.get(stack) else {
        return Err(Error::Usage(format!(
            "no stack `{stack}` in the state file or the policy"
        )));
    };
    let m = a.maps();
    match (m.uid.to_host(id), m.gid.to_host(id)) {
        (Some(host_uid), Some(host_gid)) => Ok(ToHost {
            stack: stack.to_string(),
            container_id: id,
            host_uid,
            host_gid,
            applied: *applied,
        }),
        _ => Err(Error::Usage(format!(
            "container id {id} does not exist in stack `{stack}` (ids 0 to {})",
            a.subids.count
        ))),
    }
}

pub fn from_host(root: &Root, policy: Option<&Policy>, host: u32) -> Result<Vec<HostIdOwner>> {
    let state = State::read(root)?;
    let acc = Accounts::read(root)?;
    let allocs = known_allocations(policy, &acc, &state, &[]);
    let mut found = Vec::new();
    for (name, (a, applied)) in &allocs {
        let m = a.maps();
        let (u, g) = (m.uid.to_container(host), m.gid.to_container(host));
        if u.is_some() || g.is_some() {
            found.push(HostIdOwner::Stack {
                stack: name.clone(),
                user: a.user.clone(),
                container_uid: u,
                container_gid: g,
                applied: *applied,
            });
        }
    }
    if let Some((owner, m)) = policy.and_then(|p| {
        let owner = p.legacy_owner.as_ref()?.value.clone();
        Some((owner, legacy_maps(p, &acc)?))
    }) {
        let (u, g) = (m.uid.to_container(host), m.gid.to_container(host));
        if u.is_some() || g.is_some() {
            found.push(HostIdOwner::LegacyOwner {
                legacy_owner: owner,
                container_uid: u,
                container_gid: g,
            });
        }
    }
    Ok(found)
}
