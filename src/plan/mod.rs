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
mod zones;

/// The selection under the name the planners have always used for it.
pub use crate::model::Selection as Options;
pub use crate::model::{Note, NoteKind};
pub use crate::policy::select::selected;
pub use step::{step_kind, step_span, Step};

use crate::alloc::{self, Allocated};
use crate::error::{Error, Result};
use crate::isolation::plan::IsolationStep;
use crate::observe::Observed;
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
    pub refusals: Vec<String>,
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

/// Checks `--stack` names against the policy: unknown names are bad input.
pub fn check_selection(policy: &Policy, opts: &Options) -> Result<()> {
    let unknown: Vec<String> = opts
        .stacks
        .iter()
        .filter(|s| !policy.stacks.contains_key(*s))
        .map(|s| {
            format!(
                "--stack {s}: the policy {} defines no such stack",
                policy.file.display()
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(unknown.join("\n")))
    }
}

/// The steps that bring the host to the policy, for the selected stacks, in order; an error
/// when anything is refused (apply's view).
pub fn plan(policy: &Policy, obs: &Observed, opts: &Options) -> Result<Plan> {
    let (plan, refusals) = preview(policy, obs, opts)?;
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals.join("\n")));
    }
    Ok(plan)
}

/// The whole plan that can be made and, apart, every refusal (`plan`'s view, see
/// `render::plan_preview`). Policy problems are still an error: nothing can be planned.
pub fn preview(policy: &Policy, obs: &Observed, opts: &Options) -> Result<(Plan, Vec<String>)> {
    check_selection(policy, opts)?;
    let allocs = alloc::allocate(policy, &obs.accounts, &obs.state, &opts.stacks)?;
    let mut draft = Draft::default();
    if !allocs.is_empty() {
        accounts::shared_group(&mut draft, policy, obs);
    }
    let legacy = data::legacy_maps(policy, &obs.accounts);
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
        data::plan_stack(&mut draft, &ctx, legacy.as_ref());
        reach::plan_stack(&mut draft, &ctx);
        let mut handoff = crate::model::Planned::default();
        let seen = crate::handoff::plan::Seen {
            accounts: &obs.accounts,
            state: &obs.state,
            handoff: &obs.handoff,
        };
        crate::handoff::plan::plan_stack(
            &mut handoff,
            &mut draft.refusals,
            policy,
            stack,
            &allocated.allocation,
            &seen,
            opts,
        );
        draft.absorb(handoff, Step::Handoff);
        let mut limits = crate::model::Planned::default();
        crate::limits::plan::plan_stack(
            &mut limits,
            &mut draft.refusals,
            stack,
            &allocated.allocation,
            &crate::limits::plan::Seen {
                facts: &obs.limits,
                nixos: obs.nixos,
            },
            opts,
        );
        draft.absorb(limits, Step::Limits);
        preconditions::plan_stack(&mut draft, &ctx);
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
    crate::isolation::plan::plan(
        &mut crate::isolation::plan::Draft {
            planned: &mut isolation,
            refusals: &mut draft.refusals,
        },
        policy,
        &crate::isolation::plan::Seen {
            accounts: &obs.accounts,
            state: &obs.state,
            isolation: &obs.isolation,
        },
        &allocs,
        opts,
        &migrating_now,
    );
    draft.absorb(isolation, |step| match step {
        IsolationStep::Close(c) => Step::CloseData(c),
        IsolationStep::Open(o) => Step::OpenData(o),
        IsolationStep::Share(s) => Step::Share(s),
    });
    orphans::note_orphans(&mut draft, policy, obs);
    nixos::note_missing(&mut draft);

    if !draft.problems.is_empty() {
        return Err(policy.error(draft.problems));
    }
    Ok((draft.plan, draft.refusals))
}

#[cfg(test)]
mod shares_tests;
#[cfg(test)]
pub(crate) mod tests;
