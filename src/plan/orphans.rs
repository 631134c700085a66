//! Stacks isolate recorded that the policy no longer names: never deleted, only reported, with
//! what an operator would do to retire one.
use super::{Draft, NoteKind};
use crate::observe::Observed;
use crate::policy::Policy;

pub fn note_orphans(draft: &mut Draft, policy: &Policy, obs: &Observed) {
    for (stack, rec) in &obs.state.stacks {
        if policy.stacks.contains_key(stack) {
            continue;
        }
        let a = &rec.allocation;
        let data: Vec<String> = rec
            .migrations
            .iter()
            .map(|m| m.path.display().to_string())
            .collect();
        draft.note(
            NoteKind::Orphaned,
            Some(stack),
            format!(
                "stack `{stack}` is no longer in the policy; kept: user {} (uid {}), subordinate ids {}{}. Its range stays reserved. To retire it for good: stop its containers, `loginctl disable-linger {}`, move its data to another stack (add it back to the policy with `migrate`), then `userdel {}` yourself",
                a.user,
                a.uid,
                a.subids,
                if data.is_empty() { String::new() } else { format!(", data {}", data.join(", ")) },
                a.user,
                a.user
            ),
        );
    }
}
