//! `Outcome`: what one step of apply came to. Every capability's apply returns it, and the
//! report prints it; it lives here so a capability need not import the apply that runs it.
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// The precondition showed the change was already made (by another tool, or a rerun).
    AlreadyPresent,
    Failed {
        error: String,
    },
    /// Nothing to act on, reported but not a failure (an image the legacy store lacks).
    NotFound {
        detail: String,
    },
    /// An earlier step of the same stack failed.
    Skipped,
}
