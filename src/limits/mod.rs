//! Per-stack resource limits (issue 22): every process of a rootless stack runs below
//! `user.slice/user-UID.slice`, so one slice holds the whole stack, and its `[Slice]` settings
//! are the stack's memory, CPU, task and IO budget. The capability in one folder: the drop-in
//! text (`dropin`), what is on the host (`observe`), the steps and notes (`plan`), writing and
//! removing the drop-in with a daemon-reload (`apply`, and its undo `rollback`), and the same
//! settings declared for NixOS (`nixos`). `disk_max` is only carried here (policy::limits): its
//! enforcement is the quota capability's.
pub mod apply;
pub mod dropin;
pub mod error;
pub mod nixos;
pub mod observe;
pub mod plan;

pub use observe::Facts;
pub use plan::LimitsStep;

#[cfg(test)]
mod tests;
