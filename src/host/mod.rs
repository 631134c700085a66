//! Adapters to the host: its account files and the tools that write them.
pub mod accounts;
