//! Output: every command gathers a value, and this module prints it in the format chosen with
//! `--format` — readable text (`text`) or JSON with a stable shape (serde).
pub mod escape;
pub mod text;

use serde::Serialize;
use std::io::Write;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable lines for people.
    #[default]
    Text,
    /// JSON for scripts and monitoring.
    Json,
}

/// A value a command prints: JSON through serde, text through its own renderer.
pub trait Render: Serialize {
    fn text(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// Prints `value` on stdout in `format`.
pub fn print<T: Render + ?Sized>(format: Format, value: &T) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Text => value.text(&mut out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)
        }
    }
}
