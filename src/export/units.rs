//! The user units `isolate export nixos` declares for a stack: the compose service apply would
//! install (the very text `handoff::service::render_unit` gives), so that on NixOS the
//! configuration carries it and apply installs none of its own.
use super::UserUnit;
use crate::handoff::service;
use crate::policy::StackPolicy;
use crate::state::Allocation;

/// The compose service of a stack whose policy asks for one (`service = true`); none for a
/// stack no longer in the policy.
pub fn compose_units(stack: Option<&StackPolicy>, alloc: &Allocation) -> Vec<UserUnit> {
    match stack {
        Some(s) if s.handoff.wants_service() => vec![UserUnit {
            name: service::unit_name(&s.handoff.project_of(&s.name)),
            text: service::render_unit(s, alloc),
        }],
        _ => Vec::new(),
    }
}
