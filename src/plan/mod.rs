//! plan(): a pure function from (policy, observed host, options) to the ordered steps apply
//! would take. No I/O happens here; tests build `Observed` by hand. Each concern has its own
//! sub-planner: `accounts` (group, user, subordinate ids), `session` (linger, podman.socket),
//! `data` (migrations), `shares` (closed data and shares), `orphans` (recorded stacks the
//! policy no longer names).
pub mod accounts;
pub mod data;
pub mod handoff;
pub mod nixos;
mod orphans;
pub mod preview;
pub mod session;
pub mod shares;
mod step;
mod zones;

pub use step::Step;

use crate::alloc::{self, Allocated};
use crate::error::{Error, Result};
use crate::observe::Observed;
use crate::policy::{Policy, Problem, StackPolicy};
use crate::state::Allocation;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Stacks to act on; empty means every stack in the policy.
    pub stacks: Vec<String>,
    /// Linger and podman.socket steps are planned only with systemd.
    pub systemd: bool,
    /// Migrate even when containers hold the data.
    pub force: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Already as the policy wants: nothing to do.
    Present,
    /// Recorded by isolate but no longer in the policy: kept, never deleted.
    Orphaned,
    /// Left out on purpose (e.g. --no-systemd).
    Skipped,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    pub stack: Option<String>,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.kind {
            NoteKind::Present => "=",
            NoteKind::Orphaned => "?",
            NoteKind::Skipped => "-",
            NoteKind::Warning => "!",
        };
        write!(f, "{mark} {}", self.message)
    }
}

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

/// The policy's stacks that `opts` selects.
pub fn selected<'a>(
    policy: &'a Policy,
    opts: &'a Options,
) -> impl Iterator<Item = &'a StackPolicy> {
    policy
        .stacks
        .values()
        .filter(move |s| opts.stacks.is_empty() || opts.stacks.contains(&s.name))
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
/// [`preview`](mod@preview)). Policy problems are still an error: nothing can be planned.
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
        crate::reach::plan::plan_stack(&mut draft, &ctx);
        handoff::plan_stack(&mut draft, &ctx);
        crate::preconditions::check::plan_stack(&mut draft, &ctx);
    }
    shares::plan(&mut draft, policy, obs, &allocs, opts);
    orphans::note_orphans(&mut draft, policy, obs);
    nixos::note_missing(&mut draft);

    if !draft.problems.is_empty() {
        return Err(policy.error(draft.problems));
    }
    Ok((draft.plan, draft.refusals))
}

#[cfg(test)]
pub(crate) mod tests;
