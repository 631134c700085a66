//! Adapters to the host: the only code that talks to shadow-utils, systemd, podman and the
//! kernel's mount table. Each takes the root it works on.
pub mod accounts;
pub mod files;
pub mod identity;
pub mod journal;
pub mod mounts;
pub mod podman;
pub mod procs;
pub mod quota;
pub mod session;
pub mod systemd;
pub mod unix;
