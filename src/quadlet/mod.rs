//! Quadlet stacks: a stack defined as quadlet unit files (`.container`, `.pod`, `.volume`, ...)
//! instead of compose files. This capability reads those files, rewrites what must change when
//! they move from the legacy user (or root) to the stack user's own quadlet directory, names
//! the units and podman objects they generate, plans the move, carries it out (`apply`) and
//! undoes it (`rollback`).
pub mod apply;
pub mod draft;
pub mod files;
pub mod observe;
pub mod place;
pub mod plan;
pub mod record;
pub mod rewrite;
pub mod rollback;
pub mod status;
pub mod unit;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;

pub use unit::{QuadletFile, QuadletKind};
