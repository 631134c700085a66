//! The words a policy schema is written in: a value with its place in the file (`Located`), a
//! problem at a place (`Problem`), one row of the policy reference (`PolicyKey`). Plain data
//! here, below `policy/`, so a capability's own schema file (`src/NAME/schema.rs`) can use
//! them without importing the policy that picks it up.
use std::ops::Range;

/// A value and the bytes of the policy file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// A problem at a place in the policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub span: Range<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            span,
            message: message.into(),
        }
    }
}

/// One row of the policy reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyKey {
    /// Where the key lives, as a reader writes it: `user_prefix`, `[pools] uid_first`.
    pub key: &'static str,
    /// The default, or `required`, `none`, `allocated`. Inline code in backticks.
    pub default: &'static str,
    /// What it means. Inline code in backticks.
    pub meaning: &'static str,
}
