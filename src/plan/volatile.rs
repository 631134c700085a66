//! Env files on a filesystem the system rewrites (`preconditions::volatile`): handing one to
//! the stack user would hold only until the next boot or activation, when its writer makes it
//! again with its own owner. Apply does not pretend: unless the file already is the stack
//! user's (its writer was told so), the hand-off is refused (exit 2, nothing changed) with the
//! declarative fix. Not copied elsewhere either: a secret kept on a tmpfs is kept off the disk
//! on purpose.
use super::{Draft, StackCtx, Step};
use crate::handoff::HandoffStep;
use crate::model::RefusalKind;
use crate::preconditions::volatile::Rewriter;
use std::path::Path;

/// Replaces the hand-over of each rewritten env file by a refusal; a file already handed (or
/// refused for another reason) keeps what the hand-off planned, with the fix beside.
pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let Some(facts) = ctx.obs.preconditions.get(ctx.name()) else {
        return;
    };
    let user = &ctx.allocation.user;
    for (path, rewriter) in &facts.rewritten {
        let handed = |s: &Step| {
            matches!(s, Step::Handoff(HandoffStep::EnvFile { stack, path: p, .. })
                if stack == ctx.name() && p == path)
        };
        let planned = draft.plan.steps.iter().any(handed);
        let refused = draft.refusals.iter().any(|r| {
            r.text.starts_with(&format!(
                "stack `{}`: env file {} ",
                ctx.name(),
                path.display()
            ))
        });
        if planned || refused {
            draft.plan.steps.retain(|s| !handed(s));
            draft.refusals.push(
                RefusalKind::Handoff,
                refusal(ctx.name(), user, path, rewriter),
            );
        }
    }
}

/// Why the env file `path` of `stack` is not handed over, and the declarative fix.
pub fn refusal(stack: &str, user: &str, path: &Path, r: &Rewriter) -> String {
    let shown = path.display();
    let module = |what: &str, option: &str, name: &str| {
        format!(
            "stack `{stack}`: env file {shown} is {what} secret: {} writes it again at every activation and boot, with the owner its declaration gives, so handing it to {user} now would not last; apply does not pretend it did (and does not copy a secret kept off the disk onto it). Declare it in the NixOS configuration: `{option}.\"{name}\".owner = \"{user}\";` (and `{option}.\"{name}\".path = \"{shown}\";` to keep its path), run `nixos-rebuild switch`, then `isolate apply` again",
            what.trim_start_matches("a ").trim_start_matches("an ")
        )
    };
    match r {
        Rewriter::SopsNix { name } => module("a sops-nix", "sops.secrets", name),
        Rewriter::Agenix { name } => module("an agenix", "age.secrets", name),
        Rewriter::Tmpfs => format!(
            "stack `{stack}`: env file {shown} is on a tmpfs, emptied at every boot and written again by whatever writes it, with that writer's owner, so handing it to {user} now would not last; apply does not pretend it did. Make its writer give it to {user} (owner {user}, mode 0400: a `systemd-tmpfiles` line, or the unit that writes it), or keep it on a persistent filesystem, then `isolate apply` again"
        ),
    }
}
