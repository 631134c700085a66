// isolate's library: everything but argument parsing lives here, so tests reach the core directly.
pub mod alloc;
pub mod error;
pub mod ids;
pub mod policy;
pub mod state;
pub mod sys;
pub mod walk;
