// isolate's library: everything but argument parsing lives here, so tests reach the core directly.
pub mod error;
pub mod policy;
pub mod ids;
pub mod sys;
pub mod walk;
