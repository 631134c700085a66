// isolate's library: everything but argument parsing lives here, so tests reach the core directly.
pub mod alloc;
pub mod apply;
pub mod cli;
pub mod error;
pub mod host;
pub mod ids;
pub mod live;
pub mod observe;
pub mod plan;
pub mod policy;
pub mod privilege;
pub mod render;
pub mod state;
pub mod sys;
pub mod walk;
