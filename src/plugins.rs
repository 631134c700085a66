//! The capabilities that plug into a stack's run beside the core ones (today `limits`): the one
//! place where observe, plan, `rollback --stack` and `export nixos` reach them. A new one is its
//! folder, its table in `policy::STACK_TABLES`, its `Step` variant (plan/step.rs) with its arm
//! in apply, and its lines here; tests/layers.rs counts the files outside the folder that name it.
use crate::error::Result;
use crate::host::systemd::SystemdPort;
use crate::layout::Root;
use crate::limits::LimitsStep;
use crate::model::{Planned, RefusalKind, Refusals, Selection};
use crate::policy::StackPolicy;
use crate::state::Allocation;

/// What observe found for the plugged capabilities (one field of `observe::Observed`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Each stack's slice drop-in and the host's cgroup version.
    pub limits: crate::limits::Facts,
}

/// Reads what the plugged capabilities need of the host, for the stacks given as (stack, uid).
/// Never writes.
pub fn observe<'a>(
    root: &Root,
    stacks: impl IntoIterator<Item = (&'a str, u32)> + Clone,
) -> Result<Facts> {
    Ok(Facts {
        limits: crate::limits::observe::observe(root, stacks)?,
    })
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
