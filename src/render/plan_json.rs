//! Plan's JSON for tools that show it to people (the Ansible module's diff): every step carries
//! the line `isolate plan` prints for it, so no tool re-renders the steps itself. The line is
//! exact (like every JSON string isolate writes); a tool escapes it for a terminal.
use super::Render;
use crate::plan::Plan;
use serde::ser::{Error as _, Serialize, Serializer};
use std::io::{Result, Write};

/// A plan whose JSON steps each gain a `line`; its text is the plan's own.
pub struct WithLines<'a>(pub &'a Plan);

impl Serialize for WithLines<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(self.0).map_err(S::Error::custom)?;
        if let Some(steps) = value.get_mut("steps").and_then(|s| s.as_array_mut()) {
            for (json, step) in steps.iter_mut().zip(&self.0.steps) {
                if let Some(fields) = json.as_object_mut() {
                    fields.insert("line".into(), step.to_string().into());
                }
            }
        }
        value.serialize(serializer)
    }
}

impl Render for WithLines<'_> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        self.0.text(out)
    }
}
