//! The stacks of the policy a run acts on (`--stack`, or every stack).
use super::{Policy, StackPolicy};
use crate::model::Selection;

/// The policy's stacks that `opts` selects.
pub fn selected<'a>(
    policy: &'a Policy,
    opts: &'a Selection,
) -> impl Iterator<Item = &'a StackPolicy> {
    policy
        .stacks
        .values()
        .filter(move |s| opts.stacks.is_empty() || opts.stacks.contains(&s.name))
}
