//! The words every layer shares and none of them owns: what a step came to (`Outcome`), which
//! stacks a run acts on (`Selection`), the notes a plan carries, what one capability plans
//! (`Planned`). No I/O and no import of the crate's other modules.
pub mod note;
pub mod outcome;
pub mod planned;
pub mod selection;

pub use note::{Note, NoteKind};
pub use outcome::Outcome;
pub use planned::Planned;
pub use selection::Selection;
