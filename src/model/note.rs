//! `Note`: a line a plan carries besides its steps (present, orphaned, skipped, warning).
use serde::Serialize;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Already as the policy wants: nothing to do.
    Present,
    /// Recorded by isolate but no longer in the policy: kept, never deleted.
    Orphaned,
    /// Left out on purpose (e.g. --no-systemd).
    Skipped,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    pub stack: Option<String>,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.kind {
            NoteKind::Present => "=",
            NoteKind::Orphaned => "?",
            NoteKind::Skipped => "-",
            NoteKind::Warning => "!",
        };
        write!(f, "{mark} {}", self.message)
    }
}
