//! `Planned<S>`: what one capability's planner adds for a stack, in its own step type; the
//! plan wraps each step into its closed `Step` enum, so a capability need not know it.
use super::Note;

/// Steps (in order) and notes of one capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned<S> {
    pub steps: Vec<S>,
    pub notes: Vec<Note>,
}

impl<S> Default for Planned<S> {
    fn default() -> Self {
        Planned {
            steps: Vec::new(),
            notes: Vec::new(),
        }
    }
}
