//! The capabilities that plug into a stack's run beside the core ones (`limits`, `quadlet`): the one
//! place where observe, plan, `rollback --stack` and `export nixos` reach them. A new one is its
//! folder, its table in `policy::STACK_TABLES`, its `Step` variant (plan/step.rs) with its arm
//! in apply, and its lines here; tests/layers.rs counts the files outside the folder that name it.
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::host::session::Session;
use crate::host::systemd::SystemdPort;
use crate::layout::Root;
use crate::limits::LimitsStep;
use crate::model::{Planned, RefusalKind, Refusals, Selection};
use crate::policy::Policy;
use crate::policy::StackPolicy;
pub use crate::quadlet::plan::QuadletStep;
use crate::quadlet::plan::{QuadletFacts, Sides};
use crate::state::Allocation;

/// What observe found for the plugged capabilities (one field of `observe::Observed`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Each stack's slice drop-in and the host's cgroup version.
    pub limits: crate::limits::Facts,
    /// Per stack with `quadlets`: who it moves from and to, its files and units as found.
    pub quadlets: std::collections::BTreeMap<String, (Sides, QuadletFacts)>,
}

/// Reads what the plugged capabilities need of the host, for the stacks given as (stack, uid).
/// Never writes.
pub fn observe<'a>(
    root: &Root,
    stacks: impl IntoIterator<Item = (&'a str, u32)> + Clone,
) -> Result<Facts> {
    Ok(Facts {
        limits: crate::limits::observe::observe(root, stacks)?,
        quadlets: Default::default(),
    })
}

/// Reads the quadlet files and units of the stacks that name `quadlets` (a stack without a
/// legacy owner in the accounts is left out: plan refuses it). Never writes.
pub fn observe_quadlets<'a>(
    root: &Root,
    policy: &Policy,
    acc: &Accounts,
    stacks: impl IntoIterator<Item = (&'a StackPolicy, &'a Allocation)>,
    systemd: Option<&dyn SystemdPort>,
) -> Result<std::collections::BTreeMap<String, (Sides, QuadletFacts)>> {
    let mut out = std::collections::BTreeMap::new();
    for (s, a) in stacks {
        if s.handoff.quadlets.is_empty() {
            continue;
        }
        let Some(sides) = crate::quadlet::observe::sides(policy, acc, s, a) else {
            continue;
        };
        let paths: Vec<std::path::PathBuf> =
            s.handoff.quadlets.iter().map(|q| q.value.clone()).collect();
        let facts = crate::quadlet::observe::observe_stack(root, &sides, &paths, systemd)?;
        out.insert(s.name.clone(), (sides, facts));
    }
    Ok(out)
}

/// A quadlet stack's steps: the legacy owner's units parked (`retire`, planned before its data
/// moves, so a reboot between the two never starts them on moved data) and the stack user's
/// installed and started (`install`, after the hand-off brought its images and manager); or
/// why its quadlets cannot move.
pub fn plan_quadlets<S: From<QuadletStep>>(
    retire: &mut Planned<S>,
    install: &mut Planned<S>,
    refusals: &mut Refusals,
    s: &StackPolicy,
    facts: &Facts,
) {
    if s.handoff.quadlets.is_empty() {
        return;
    }
    let kind = RefusalKind::Plugged("quadlet");
    let Some((sides, found)) = facts.quadlets.get(&s.name) else {
        refusals.push(
            kind,
            format!(
                "stack `{}` names `quadlets` but no `legacy_owner` found in the accounts owns them; name the user (or root) whose units they are",
                s.name
            ),
        );
        return;
    };
    if found.podman.is_none() {
        refusals.push(
            kind,
            format!(
                "stack `{}` names `quadlets`, but this host has no quadlet generator (podman 4.4 or newer installs it)",
                s.name
            ),
        );
        return;
    }
    let mut planned = Planned::default();
    let mut texts = Vec::new();
    crate::quadlet::plan::plan_stack(&mut planned, &mut texts, sides, found);
    refusals.extend_texts(kind, texts);
    for step in planned.steps {
        match step {
            QuadletStep::RetireLegacy { .. } => retire.steps.push(step.into()),
            QuadletStep::Install { .. } => install.steps.push(step.into()),
        }
    }
    install.notes.extend(planned.notes);
}

/// The images (`Image=`) and podman volumes (`.volume`) of a quadlet stack's files, which the
/// hand-off copies and moves (none for a compose stack).
pub fn units_images_and_volumes(
    root: &Root,
    s: &StackPolicy,
) -> Result<(Vec<String>, Vec<String>)> {
    if s.handoff.quadlets.is_empty() {
        return Ok(Default::default());
    }
    crate::quadlet::observe::images_and_volumes(root, s)
}

/// `rollback --stack` of a quadlet stack, first half: the stack user's units stop and the files
/// isolate wrote for it go (its containers hold the data).
pub fn rollback_before_data(
    root: &Root,
    stack: &str,
    session: Option<&Session<'_>>,
) -> Result<Vec<String>> {
    crate::quadlet::rollback::stop_stack(root, stack, session)
}

/// Second half, once the data has its old owners: the legacy owner's quadlet files go back
/// and her units start.
pub fn rollback_after_data(
    root: &Root,
    stack: &str,
    session: Option<&Session<'_>>,
) -> Result<Vec<String>> {
    crate::quadlet::rollback::restore_legacy(root, stack, session)
}

/// What a plugged capability's planner gets for one selected stack.
pub struct StackView<'a> {
    pub stack: &'a StackPolicy,
    pub allocation: &'a Allocation,
    pub facts: &'a Facts,
    /// `/etc/NIXOS` under the root.
    pub nixos: bool,
    pub opts: &'a Selection,
}

/// The steps, notes and refusals of every plugged capability for one stack, each step turned
/// into the plan's `Step` (its variant's `From`).
pub fn plan_stack<S: From<LimitsStep>>(
    planned: &mut Planned<S>,
    refusals: &mut Refusals,
    view: &StackView<'_>,
) {
    let mut limits = Planned::default();
    let mut limits_refusals = Vec::new();
    crate::limits::plan::plan_stack(
        &mut limits,
        &mut limits_refusals,
        view.stack,
        view.allocation,
        &crate::limits::plan::Seen {
            facts: &view.facts.limits,
            nixos: view.nixos,
        },
        view.opts,
    );
    absorb(planned, limits);
    refusals.extend_texts(RefusalKind::Plugged("limits"), limits_refusals);
}

fn absorb<S, T: Into<S>>(planned: &mut Planned<S>, from: Planned<T>) {
    planned.steps.extend(from.steps.into_iter().map(Into::into));
    planned.notes.extend(from.notes);
}

/// `rollback --stack`: what each plugged capability set for the stack goes, in the order
/// written here (after the hand-off, before a legacy publish and the data); the lines say what
/// went.
pub fn rollback(
    root: &Root,
    stack: &str,
    systemd: Option<&dyn SystemdPort>,
) -> Result<Vec<String>> {
    // The stack's slice loses its limits drop-in (daemon-reload; the slice keeps running).
    crate::limits::apply::rollback(root, stack, systemd)
}

/// What `export nixos` declares for the plugged capabilities of one stack, from its policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// `[stacks.NAME.limits]`, declared as the slice's `sliceConfig` (src/limits/nixos.rs).
    pub limits: crate::limits::schema::StackLimits,
}

impl Declared {
    /// A stack no longer in the policy declares nothing.
    pub fn of(stack: Option<&StackPolicy>) -> Self {
        Declared {
            limits: stack.map(|s| s.limits.clone()).unwrap_or_default(),
        }
    }
}

/// The Nix lines of the plugged capabilities for one stack's user.
pub fn nixos(w: &mut String, uid: u32, declared: &Declared) {
    crate::limits::nixos::slice(w, uid, &declared.limits);
}
