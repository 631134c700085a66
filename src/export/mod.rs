//! `isolate export`: the recorded stacks as another system's configuration, so a host whose
//! accounts are declarative (NixOS) keeps the users, groups and ranges isolate allocated.
//! Collecting what to export (and recording allocations not recorded yet) lives here; each
//! target renders in its own file.
pub mod nixos;
mod nixos_quadlet;
mod nixos_units;
pub mod quadlet_sources;
pub mod units;

use crate::alloc::{self, Source};
use crate::error::{Error, Result};
use crate::host::accounts::Accounts;
use crate::ids::SubidRange;
use crate::layout::Root;
use crate::model::RefusalKind;
use crate::policy::Policy;
use crate::state::{GroupRecord, StackRecord, State};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A unit in a stack user's own systemd manager (the compose service of its project): the
/// exact text apply installs into the stack user's home on other systems, which the NixOS
/// module declares so that NixOS renders the same lines (`nixos_units`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserUnit {
    /// The unit's file name, e.g. `isolate-compose-immich.service`.
    pub name: String,
    /// The unit file apply writes (`handoff::service::render_unit`).
    pub text: String,
}

/// Where the user units of a stack come from (its policy, when it is still in the policy, and
/// its allocation).
pub type UserUnitsHook<'a> =
    &'a dyn Fn(Option<&crate::policy::StackPolicy>, &crate::state::Allocation) -> Vec<UserUnit>;

/// The hook that declares no unit (tests of the accounts alone).
pub fn no_user_units(
    _stack: Option<&crate::policy::StackPolicy>,
    _alloc: &crate::state::Allocation,
) -> Vec<UserUnit> {
    Vec::new()
}

/// One stack as the export declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportStack {
    pub stack: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subids: SubidRange,
    pub home: PathBuf,
    /// The GECOS field apply writes (`isolate stack NAME`).
    pub description: String,
    /// The policy's data paths, for a comment.
    pub data: Vec<PathBuf>,
    /// Recorded but no longer in the policy: still declared, so NixOS keeps the account.
    pub orphaned: bool,
    pub user_units: Vec<UserUnit>,
    /// What the capabilities plugged in through src/plugins.rs declare for the stack.
    pub plugged: crate::plugins::Declared,
    /// `quadlets`: declared for the stack user with quadlet-nix (src/export/nixos_quadlet.rs).
    pub quadlets: quadlet_sources::StackQuadlets,
}

/// Everything one export declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub policy_file: PathBuf,
    pub shared_group: String,
    pub shared_gid: u32,
    pub stacks: Vec<ExportStack>,
}

/// What an export needs recorded in the state file before it is written: allocations the
/// policy's stacks got now, and the shared group's gid if isolate chose it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToRecord {
    pub stacks: BTreeMap<String, crate::state::Allocation>,
    pub shared_group: Option<GroupRecord>,
}

impl ToRecord {
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty() && self.shared_group.is_none()
    }

    /// Adds itself to `state`; an allocation recorded meanwhile for another range is an error.
    pub fn apply_to(&self, state: &mut State) -> Result<()> {
        for (name, a) in &self.stacks {
            match state.stacks.get(name) {
                Some(r) if &r.allocation == a => {}
                Some(r) => {
                    return Err(Error::failed(RecordedMeanwhile {
                        stack: name.clone(),
                        uid: r.allocation.uid,
                        subids: r.allocation.subids,
                    }))
                }
                None => {
                    state.stacks.insert(
                        name.clone(),
                        StackRecord {
                            allocation: a.clone(),
                            migrations: Vec::new(),
                        },
                    );
                }
            }
        }
        if let Some(g) = &self.shared_group {
            state.shared_group.get_or_insert_with(|| g.clone());
        }
        Ok(())
    }
}

/// Collects every recorded stack and every stack of the policy (allocating those not recorded,
/// exactly as apply would), with the shared group's gid: the host's, the recorded one, or the
/// one apply would choose (a free system gid, from 999 down).
pub fn collect(
    policy: &Policy,
    acc: &Accounts,
    state: &State,
    units: UserUnitsHook<'_>,
) -> Result<(Export, ToRecord)> {
    let allocs = alloc::allocate(policy, acc, state, &[])?;
    let mut record = ToRecord::default();
    let mut stacks = Vec::new();
    let mut names: Vec<&String> = allocs.keys().collect();
    names.extend(state.stacks.keys().filter(|n| !allocs.contains_key(*n)));
    names.sort();
    for name in names {
        let (a, orphaned) = match allocs.get(name) {
            Some(got) => {
                if got.source != Source::Recorded {
                    record.stacks.insert(name.clone(), got.allocation.clone());
                }
                (got.allocation.clone(), false)
            }
            None => (state.stacks[name].allocation.clone(), true),
        };
        let home = acc
            .user(&a.user)
            .map_or_else(|| crate::layout::home(&a.user), |u| PathBuf::from(&u.home));
        let data = policy
            .stacks
            .get(name)
            .map(|s| s.data.iter().map(|d| d.value.clone()).collect())
            .unwrap_or_default();
        stacks.push(ExportStack {
            stack: name.clone(),
            user: a.user.clone(),
            uid: a.uid,
            gid: a.gid,
            subids: a.subids,
            home,
            description: format!("isolate stack {name}"),
            data,
            orphaned,
            user_units: units(policy.stacks.get(name), &a),
            plugged: crate::plugins::Declared::of(policy.stacks.get(name)),
            quadlets: Default::default(),
        });
    }

    let group = &policy.shared_group.value;
    let shared_gid = if let Some(g) = acc.group(group) {
        g.gid
    } else if let Some(g) = state.shared_group.as_ref().filter(|g| &g.name == group) {
        g.gid
    } else {
        // As apply chooses it (`apply::record_shared_group`): a free system gid, from 999 down.
        let held = |id: u32| stacks.iter().any(|s| s.uid == id || s.gid == id);
        let gid = acc.free_system_gid(held).ok_or_else(|| {
            Error::refused(
                RefusalKind::Export,
                format!("no free system gid (101-999) left for the group `{group}`"),
            )
        })?;
        record.shared_group = Some(GroupRecord {
            name: group.clone(),
            gid,
        });
        gid
    };
    Ok((
        Export {
            policy_file: policy.file.clone(),
            shared_group: group.clone(),
            shared_gid,
            stacks,
        },
        record,
    ))
}

/// `isolate export nixos [--output FILE]`: records what is not recorded yet (under the run
/// lock, before the module exists, so a module never holds ids that could still move), then
/// writes the module atomically, or prints it.
pub fn run_nixos(
    root: &Root,
    policy_file: &std::path::Path,
    output: Option<&std::path::Path>,
    units: UserUnitsHook<'_>,
) -> Result<String> {
    let policy = Policy::load(policy_file)?;
    let acc = Accounts::read(root)?;
    let (mut export, mut record) = collect(&policy, &acc, &State::read(root)?, units)?;
    let mut lock = None;
    if !record.is_empty() {
        lock = Some(crate::state::RunLock::acquire(root)?);
        let mut state = State::read(root)?;
        (export, record) = collect(&policy, &acc, &state, units)?;
        record.apply_to(&mut state)?;
        state.write(root)?;
    }
    quadlet_sources::attach(root, &policy, &acc, &mut export);
    let text = nixos::render(&export)?;
    let recorded = if record.stacks.is_empty() {
        String::new()
    } else {
        format!(
            "; recorded the allocations of {} in the state file",
            record.stacks.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    let summary = format!(
        "{} stack(s), shared group {} (gid {}){recorded}{}",
        export.stacks.len(),
        export.shared_group,
        export.shared_gid,
        nixos_quadlet::summary(&export)
    );
    match output {
        Some(path) => {
            crate::host::files::write_atomic(path, text.as_bytes(), 0o644)?;
            drop(lock);
            Ok(format!("wrote {}: {summary}", path.display()))
        }
        None => {
            print!("{text}");
            drop(lock);
            Ok(summary)
        }
    }
}

/// An allocation recorded for a stack since the export computed it, with other ids.
#[derive(Debug, thiserror::Error)]
#[error(
    "stack `{stack}` was recorded meanwhile with uid {uid} and range {subids}; run export again"
)]
pub struct RecordedMeanwhile {
    pub stack: String,
    pub uid: u32,
    pub subids: crate::ids::SubidRange,
}
