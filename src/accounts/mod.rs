//! The accounts capability: isolate's own users and groups. The host's files are read and
//! written by the adapter in `host::accounts` (`etc`, `shadow`); here is what isolate makes of
//! them: `check` finishes what a killed run left half done in its own accounts, or refuses.
//! Their plan is `plan/accounts.rs` and their steps are `plan::Step`'s (a closed aggregate),
//! applied by `apply`.
pub mod check;
