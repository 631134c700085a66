//! Data migration as a capability: what holds a stack's data, and the engine that shifts its
//! ownership. Its plan is in plan/data.rs, its steps are carried out by apply, and its undo is
//! `apply::rollback`.
mod holders;
mod migrator;
pub mod next;

pub use holders::{mount_holders, RunningContainer};
pub use migrator::Migrator;
