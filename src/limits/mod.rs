//! Per-stack resource limits: every process of a rootless stack runs below
//! `user.slice/user-UID.slice`, so one slice holds the whole stack, and its `[Slice]` settings
//! are the stack's memory, CPU, task and IO budget. The capability in one folder: its policy
//! table and reference rows (`schema`, placed with the schemas), the drop-in text (`dropin`),
//! what is on the host (`observe`), the steps and notes (`plan`), writing and removing the
//! drop-in with a daemon-reload (`apply`, and its undo `rollback`), the same settings declared
//! for NixOS (`nixos`), and its tests, through plan and apply too. It plugs in through
//! src/plugins.rs. `disk_max` is only carried here (`schema`): its enforcement is the quota
//! capability's.
pub mod apply;
pub mod dropin;
pub mod error;
pub mod nixos;
pub mod observe;
pub mod plan;
pub mod schema;

pub use observe::Facts;
pub use plan::LimitsStep;

#[cfg(test)]
mod aggregate_tests;
#[cfg(test)]
mod tests;
