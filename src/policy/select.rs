//! The stacks of the policy a run acts on (`--stack`, or every stack).
use super::{Policy, StackPolicy};
use crate::error::{Error, Result};
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

/// Checks `--stack` names against the policy: unknown names are bad input.
pub fn check_selection(policy: &Policy, opts: &Selection) -> Result<()> {
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
