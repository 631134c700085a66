//! `isolate audit`: who owns which data and who can reach it, read-only. Attribution of every
//! id through every mapping the host knows, findings, and the access matrix predicted from
//! modes and ACLs beside the policy's intent. Output goes through `render`.
pub mod access;
pub mod attribution;
pub mod inspect;
pub mod intent;
pub mod model;
pub mod records;
pub mod run;
pub mod tree_walk;
