//! Operations that span capabilities: each takes its backends as arguments (the CLI builds the
//! real ones) and returns what it did for the CLI to render.
pub mod rollback;
