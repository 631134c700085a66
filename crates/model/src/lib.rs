//! isolate's pure vocabulary, a crate of its own so the walk engine can stand on it without
//! the rest of isolate: uid/gid ids and shifts (`ids`), what a migration is asked to do
//! (`migration`), and the one escaper for paths and names shown to people (`escape`). No I/O.
pub mod escape;
pub mod ids;
pub mod migration;
