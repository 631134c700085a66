//! `rollback --stack` and `rollback --share`: the undo of several capabilities in the one order
//! that keeps data safe (the service stops, closed tops reopen, reaches, the hand-off, what
//! the plugged capabilities set (src/plugins.rs) and a legacy publish made for the stack are
//! undone, then the data changes owners back).
use crate::apply::{self, RollbackReport};
use crate::data::Migrator;
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::ids::IdMaps;
use crate::isolation::apply::ShareRollback;
use crate::isolation::fs::AclProbe;
use crate::layout::Root;
use crate::observe::{self, Live};
use crate::policy::Policy;
use crate::state::State;
use crate::walk::sys::WalkSys;

/// What `rollback --stack` did: the hand-off's lines, the data paths, then what came back once
/// the data had its old owners (a quadlet stack's legacy units).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StackRollback {
    pub handoff: crate::handoff::apply::RollbackLines,
    pub data: RollbackReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_data: Vec<String>,
}

impl crate::render::Render for StackRollback {
    fn text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for line in &self.handoff {
            writeln!(out, "rolled back {line}")?;
        }
        self.data.text(out)?;
        for line in &self.after_data {
            writeln!(out, "rolled back {line}")?;
        }
        Ok(())
    }
}

/// What a stack's rollback changes the host through.
pub struct StackBackends<'a> {
    /// The users' systemd managers and podman stores (its session), and what holds the data.
    pub live: &'a Live<'a>,
    pub migrator: &'a dyn Migrator,
    pub walk_sys: &'a dyn WalkSys,
    /// Runs compose as the legacy user (a legacy publish made for the stack is undone).
    pub compose: &'a dyn crate::reach::legacy_run::ComposeRunner,
    /// Takes back the stack's disk budget (src/quota).
    pub quota: &'a dyn crate::quota::port::QuotaPort,
}

/// `isolate rollback --stack NAME`.
pub fn stack(
    root: &Root,
    policy: Option<&Policy>,
    stack: &str,
    force: bool,
    progress: bool,
    b: &StackBackends,
) -> Result<StackRollback> {
    // The stack's compose service stops first: its containers hold the data. Its unit stays
    // until nothing else holds the data; a refusal starts it again, so a refused rollback
    // changes nothing.
    let session = b.live.session.as_ref();
    // A quadlet stack's units stop and the files isolate wrote for it go (its containers hold
    // the data); the legacy owner's come back once the data has its old owners.
    let quadlet_lines = crate::plugins::rollback_before_data(root, stack, session)?;
    let paused = crate::handoff::apply::pause_service(root, stack, session)?;
    if !force {
        if let Err(refusal) = refuse_if_data_held(root, b.live, policy, stack) {
            if let Some(paused) = paused {
                paused.resume(session)?;
            }
            return Err(refusal);
        }
    }
    let service_line = paused.map(|p| p.remove(root)).transpose()?;
    // The disk budget isolate set goes back to what was there before, first: over its limit
    // a btrfs subvolume refuses even an ACL or owner change (EDQUOT), which the steps below make.
    let quota_lines: Vec<String> = crate::quota::apply::restore_stack(root, b.quota, stack)?
        .into_iter()
        .map(|(step, _)| step.to_string())
        .collect();
    // A closed data path first gets its top back as it was, then its owners.
    crate::isolation::apply::reopen_stack(root, b.walk_sys, stack)?;
    let state = State::read(root)?;
    let handoff_pending =
        service_line.is_some() || crate::handoff::apply::has_rollback(&state, stack);
    // The reaches and the hand-off (volumes, env files) are undone before the data changes
    // owners.
    let mut handoff: Vec<String> = quadlet_lines;
    handoff.extend(service_line);
    handoff.extend(quota_lines);
    handoff.extend(crate::reach::apply::rollback(root, stack)?);
    handoff.extend(crate::handoff::apply::rollback(
        root, stack, session, b.migrator, progress,
    )?);
    // What the plugged capabilities set goes (src/plugins.rs says what and in which order).
    handoff.extend(crate::plugins::rollback(
        root,
        stack,
        session.map(|s| s.systemd),
    )?);
    // A legacy user's project re-upped for this stack gets its old ports back.
    handoff.extend(crate::reach::legacy_run::rollback(
        root, stack, session, b.compose,
    )?);
    let data = if handoff_pending && !apply::has_rollback(&state, stack) {
        RollbackReport(Vec::new())
    } else {
        apply::rollback(root, stack, b.migrator, progress)?
    };
    let after_data = crate::plugins::rollback_after_data(root, stack, session)?;
    Ok(StackRollback {
        handoff,
        data,
        after_data,
    })
}

/// Refuses a stack's rollback while containers of the stack or the legacy owner hold its data.
fn refuse_if_data_held(
    root: &Root,
    live: &Live<'_>,
    policy: Option<&Policy>,
    stack: &str,
) -> Result<()> {
    let state = State::read(root)?;
    let Some(rec) = state.stacks.get(stack) else {
        return Ok(());
    };
    let paths: Vec<_> = rec.migrations.iter().map(|m| m.path.clone()).collect();
    let acc = Accounts::read(root)?;
    let holders = observe::stack_holders(root, &acc, live, policy, &rec.allocation, &paths);
    apply::refuse_if_held(stack, &holders)
}

/// `isolate rollback --share NAME`: the mappings of every recorded stack are isolate's ids;
/// the shared group comes from the policy (when there is one).
pub fn share(
    root: &Root,
    policy: Option<&Policy>,
    name: &str,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
) -> Result<ShareRollback> {
    let state = State::read(root)?;
    let accounts = Accounts::read(root)?;
    let owned: Vec<IdMaps> = crate::isolation::facts::known_maps(&state, &Default::default())
        .into_values()
        .collect();
    let group = policy.map_or_else(
        || "stk-shared".to_string(),
        |p| p.shared_group.value.clone(),
    );
    let gid = accounts.group(&group).map(|g| g.gid);
    let done =
        crate::isolation::apply::rollback_share(root, sys, probe, name, &owned, &group, gid)?;
    Ok(ShareRollback {
        share: name.to_string(),
        done,
    })
}
