//! A quadlet stack's part of the plan: the legacy owner's units parked (a step before the
//! data moves) and the stack user's installed (returned, absorbed after the hand-off, once
//! its images and manager are there), or why the stack's quadlets cannot move.
use super::{Draft, Step};
use crate::model::{Planned, RefusalKind};
use crate::observe::Observed;
use crate::policy::StackPolicy;
use crate::quadlet::plan::{self, QuadletStep};

/// Pushes the stack's retire step into `draft` and returns its install step (and notes).
pub fn plan_for(draft: &mut Draft, s: &StackPolicy, obs: &Observed) -> Planned<QuadletStep> {
    let mut install = Planned::default();
    if s.handoff.quadlets.is_empty() {
        return install;
    }
    let Some((sides, facts)) = obs.quadlets.get(&s.name) else {
        draft.refusals.push(
            RefusalKind::Handoff,
            format!(
                "stack `{}` names `quadlets` but no `legacy_owner` found in the accounts owns them; name the user (or root) whose units they are",
                s.name
            ),
        );
        return install;
    };
    if facts.podman.is_none() {
        draft.refusals.push(
            RefusalKind::Handoff,
            format!(
                "stack `{}` names `quadlets`, but this host has no quadlet generator (podman 4.4 or newer installs it)",
                s.name
            ),
        );
        return install;
    }
    let mut planned = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut planned, &mut refusals, sides, facts);
    draft.refusals.extend_texts(RefusalKind::Handoff, refusals);
    for step in planned.steps {
        match step {
            QuadletStep::RetireLegacy { .. } => draft.step(Step::Quadlet(step)),
            QuadletStep::Install { .. } => install.steps.push(step),
        }
    }
    install.notes = planned.notes;
    install
}
