//! Output: every command gathers a value, and this module prints it in the format chosen with
//! `--format` — readable text (`text`) or JSON with a stable shape (serde); `audit` also
//! speaks Prometheus text exposition (`prometheus`) for node_exporter's textfile collector.
pub mod audit_text;
pub mod plan_json;
pub mod plan_preview;
pub mod prometheus;
pub mod prometheus_usage;
pub mod text;
pub mod usage_text;

use serde::Serialize;
use std::io::Write;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable lines for people.
    #[default]
    Text,
    /// JSON for scripts and monitoring.
    Json,
    /// Prometheus text exposition (`audit` only).
    Prometheus,
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
        Format::Prometheus => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "only `audit` has a Prometheus format",
        )),
    }
}

/// How an error or a refusal reaches stderr: escaped, each of its lines after `isolate: `.
pub fn refusal_lines(text: &str) -> String {
    format!(
        "isolate: {}",
        crate::model::escape::lines(text).replace('\n', "\nisolate: ")
    )
}
