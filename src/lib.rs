//! isolate's library: everything but the thin `main` lives here, so tests reach the core
//! directly. The flow: `policy` + `observe` -> `plan` (pure) -> `apply` through `host`
//! backends and the `walk` engine; `render` prints what a command gathered.
pub mod accounts;
pub mod alloc;
pub mod apply;
pub mod audit;
pub mod cli;
pub mod data;
pub mod error;
pub mod export;
pub mod handoff;
pub mod host;
pub mod idmap;
pub use isolate_model::{ids, migration};
pub mod init;
pub mod isolation;
pub mod layout;
pub mod limits;
pub mod logging;
pub mod model;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod plugins;
pub mod policy;
pub mod preconditions;
pub mod privilege;
pub mod quadlet;
pub mod quota;
pub mod reach;
pub mod render;
pub mod stacks;
pub mod state;
pub mod status;
pub mod usage;
pub use isolate_walk as walk;
