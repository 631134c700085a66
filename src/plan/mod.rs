//! plan(): a pure function from (policy, observed host, options) to the ordered steps apply
//! would take. No I/O happens here; tests build `Observed` by hand. Each concern has its own
//! sub-planner: `accounts` (group, user, subordinate ids), `session` (linger, podman.socket),
//! `data` (migrations), `shares` (closed data and shares), `orphans` (recorded stacks the
//! policy no longer names).
pub mod accounts;
pub mod data;
pub mod nixos;
mod orphans;
mod preconditions;
mod reach;
mod reach_legacy;
pub mod session;
mod step;
mod undoing;
pub mod volatile;
mod zones;

/// The selection under the name the planners have always used for it.
pub use crate::model::Selection as Options;
pub use crate::model::{Note, NoteKind};
pub use crate::plugins::QuadletStep;
pub use crate::policy::select::selected;
pub use step::{step_kind, step_span, Step};

use crate::alloc::{self, Allocated, Allocs};
use crate::error::{Error, Result};
use crate::isolation::plan::IsolationStep;
use crate::model::{RefusalKind, Refusals};
use crate::observe::Observed;
pub use crate::policy::select::check_selection;
use crate::policy::{Policy, Problem, StackPolicy};
use crate::state::Allocation;
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
    /// On NixOS: the account steps the host's configuration must declare (`export nixos`)
    /// before apply may go on; apply refuses while this is not empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nixos_missing: Vec<String>,
}

/// A plan being built: the sub-planners add steps and notes, and collect refusals (the host is
/// not as isolate can build on) and policy problems, all reported at once at the end.
#[derive(Default)]
pub struct Draft {
    pub plan: Plan,
    pub refusals: Refusals,
    pub problems: Vec<Problem>,
}

impl Draft {
    pub fn step(&mut self, step: Step) {
        self.plan.steps.push(step);
    }

    pub fn note(&mut self, kind: NoteKind, stack: Option<&str>, message: String) {
        self.plan.notes.push(Note {
            kind,
            stack: stack.map(str::to_string),
            message,
        });
    }

    /// Takes in what one capability planned, each step wrapped into the plan's `Step`.
    pub fn absorb<S>(&mut self, planned: crate::model::Planned<S>, wrap: impl Fn(S) -> Step) {
        self.plan.steps.extend(planned.steps.into_iter().map(wrap));
        self.plan.notes.extend(planned.notes);
    }

    pub fn present(&mut self, stack: Option<&str>, message: String) {
        self.note(NoteKind::Present, stack, message);
    }
}

/// What a sub-planner gets for one selected stack.
pub struct StackCtx<'a> {
    pub policy: &'a Policy,
    pub obs: &'a Observed,
    pub opts: &'a Options,
    pub stack: &'a StackPolicy,
    pub allocation: &'a Allocation,
    pub allocated: &'a Allocated,
}

impl StackCtx<'_> {
    pub fn name(&self) -> &str {
        &self.stack.name
    }
}

/// The steps that bring the host to the policy, for the selected stacks, in order; an error
/// when anything is refused (apply's view).
pub fn plan(policy: &Policy, obs: &Observed, opts: &Options) -> Result<Plan> {
    check_selection(policy, opts)?;
    let allocs = alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks)?;
    plan_allocated(policy, obs, &allocs, opts)
}

/// `plan` with the allocation observe made for this run (`observe::Observation`): a run
/// allocates once and carries it.
pub fn plan_allocated(
    policy: &Policy,
    obs: &Observed,
    allocs: &Allocs,
    opts: &Options,
) -> Result<Plan> {
    let (plan, refusals) = preview_allocated(policy, obs, allocs, opts)?;
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals));
    }
    Ok(plan)
}

/// The whole plan that can be made and, apart, every refusal (`plan`'s view, see
/// `render::plan_preview`). Policy problems are still an error: nothing can be planned.
pub fn preview(policy: &Policy, obs: &Observed, opts: &Options) -> Result<(Plan, Refusals)> {
    check_selection(policy, opts)?;
    let allocs = alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks)?;
    preview_allocated(policy, obs, &allocs, opts)
}

/// `preview` with the allocation observe made for this run.
pub fn preview_allocated(
    policy: &Policy,
    obs: &Observed,
    allocs: &Allocs,
    opts: &Options,
) -> Result<(Plan, Refusals)> {
    let mut draft = Draft::default();
    if !allocs.is_empty() {
        accounts::shared_group(&mut draft, policy, obs);
    }
    let legacy = data::legacy_maps(policy, &obs.accounts);
    // Disk budgets are set last, after closing and sharing: over its limit a btrfs subvolume
    // refuses even the ACL and owner changes those make (EDQUOT).
    let mut quota = crate::model::Planned::default();
    for stack in selected(policy, opts) {
        let allocated = &allocs[&stack.name];
        let ctx = StackCtx {
            policy,
            obs,
            opts,
            stack,
            allocation: &allocated.allocation,
            allocated,
        };
        accounts::plan_stack(&mut draft, &ctx);
        zones::plan_stack(&mut draft, &ctx);
        session::plan_stack(&mut draft, &ctx);
        // A quadlet stack's legacy units are parked before its data moves (a reboot between
        // the two must not start them on the moved data); its own start after the hand-off.
        let mut quadlet_retire = crate::model::Planned::default();
        let mut quadlet_install = crate::model::Planned::default();
        crate::plugins::plan_quadlets(
            &mut quadlet_retire,
            &mut quadlet_install,
            &mut draft.refusals,
            stack,
            &obs.plugged,
        );
        draft.absorb(quadlet_retire, |step: Step| step);
        data::plan_stack(&mut draft, &ctx, legacy.as_ref());
        let mut quota_refusals = Vec::new();
        crate::quota::plan::plan_stack(
            &mut quota,
            &mut quota_refusals,
            &crate::quota::plan::StackQuota {
                stack: &stack.name,
                disk_max: crate::quota::observe::disk_max(stack),
                trees: obs.quota.get(&stack.name).map_or(&[], Vec::as_slice),
                recorded: obs.state.quota.get(&stack.name),
            },
        );
        draft
            .refusals
            .extend_texts(RefusalKind::Quota, quota_refusals);
        reach::plan_stack(&mut draft, &ctx);
        let mut handoff = crate::model::Planned::default();
        let mut handoff_refusals = Vec::new();
        let seen = crate::handoff::plan::Seen {
            accounts: &obs.accounts,
            state: &obs.state,
            handoff: &obs.handoff,
        };
        crate::handoff::plan::plan_stack(
            &mut handoff,
            &mut handoff_refusals,
            policy,
            stack,
            &allocated.allocation,
            &seen,
            opts,
        );
        draft.absorb(handoff, Step::Handoff);
        draft
            .refusals
            .extend_texts(RefusalKind::Handoff, handoff_refusals);
        draft.absorb(quadlet_install, |step: Step| step);
        let mut plugged = crate::model::Planned::default();
        crate::plugins::plan_stack(
            &mut plugged,
            &mut draft.refusals,
            &crate::plugins::StackView {
                stack,
                allocation: &allocated.allocation,
                facts: &obs.plugged,
                nixos: obs.nixos,
                opts,
            },
        );
        draft.absorb(plugged, |step: Step| step);
        preconditions::plan_stack(&mut draft, &ctx);
        undoing::plan_stack(&mut draft, &ctx);
        volatile::plan_stack(&mut draft, &ctx);
    }
    // Paths migrated or created in this apply: isolation closes them right after.
    let migrating_now: Vec<(String, std::path::PathBuf)> = draft
        .plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Migrate { stack, path, .. } | Step::CreateData { stack, path, .. } => {
                Some((stack.clone(), path.clone()))
            }
            _ => None,
        })
        .collect();
    let mut isolation = crate::model::Planned::default();
    let mut isolation_refusals = Vec::new();
    crate::isolation::plan::plan(
        &mut crate::isolation::plan::Draft {
            planned: &mut isolation,
            refusals: &mut isolation_refusals,
        },
        policy,
        &crate::isolation::plan::Seen {
            accounts: &obs.accounts,
            state: &obs.state,
            isolation: &obs.isolation,
        },
        allocs,
        opts,
        &migrating_now,
    );
    draft
        .refusals
        .extend_texts(RefusalKind::Isolation, isolation_refusals);
    draft.absorb(isolation, |step| match step {
        IsolationStep::Close(c) => Step::CloseData(c),
        IsolationStep::Open(o) => Step::OpenData(o),
        IsolationStep::Share(s) => Step::Share(s),
    });
    draft.absorb(quota, Step::Quota);
    orphans::note_orphans(&mut draft, policy, obs);
    nixos::declared_services(&mut draft, obs);
    nixos::note_missing(&mut draft);

    if !draft.problems.is_empty() {
        return Err(policy.error(draft.problems));
    }
    Ok((draft.plan, draft.refusals))
}

#[cfg(test)]
mod quota_tests;
#[cfg(test)]
mod shares_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod undoing_tests;
