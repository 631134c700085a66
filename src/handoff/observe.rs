//! Reads what the hand-off of a stack needs to plan: its env files as they are. Never writes.
use super::{env_files, StackFacts};
use crate::error::Result;
use crate::policy::StackPolicy;
use std::path::Path;

pub fn observe_stack(root: &Path, s: &StackPolicy) -> Result<StackFacts> {
    let mut facts = StackFacts::default();
    for e in &s.handoff.env_files {
        facts
            .env_files
            .insert(e.value.clone(), env_files::observe(root, &e.value)?);
    }
    Ok(facts)
}
