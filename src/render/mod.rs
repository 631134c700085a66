//! Human-readable and JSON output helpers shared by every command.
pub mod escape;
