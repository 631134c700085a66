//! The words every layer shares and none of them owns: what a step came to (`Outcome`), which
//! stacks a run acts on (`Selection`), the notes a plan carries, what one capability plans
//! (`Planned`), why a run refuses (`Refusals`), the words a policy schema is written in
//! (`policy_words`), and the one escaper every output goes through (`escape`, from crates/model).
//! No I/O and no import of the crate's other modules.
pub mod note;
pub mod outcome;
pub mod planned;
pub mod policy_words;
pub mod refusal;
pub mod selection;

pub use isolate_model::escape;

pub use note::{Note, NoteKind};
pub use outcome::Outcome;
pub use planned::Planned;
pub use policy_words::{Located, PolicyKey, Problem};
pub use refusal::{Refusal, RefusalKind, Refusals};
pub use selection::Selection;
