//! Output: every command gathers a value, and this module prints it in the format chosen with
//! `--format` — readable text (`text`) or JSON with a stable shape (serde); `audit` also
//! speaks Prometheus text exposition (`prometheus`) for node_exporter's textfile collector.
pub mod audit_text;
pub mod escape;
pub mod prometheus;
pub mod text;

use serde::Serialize;
use std::io::Write;
use std::path::Path;

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

/// A path as printable text: control characters (C0, DEL, C1) and bytes that are not UTF-8
/// become `\xNN` (`\u{NN}` for C1), a backslash is doubled, so a file name can neither move
/// a terminal's cursor nor forge a line of output.
pub fn safe_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        let p = Path::new(OsStr::from_bytes(
            b"/srv/a\nb\x1b[2J\\c\xff\xc2\x85d \xc3\xa9",
        ));
        assert_eq!(safe_path(p), "/srv/a\\x0ab\\x1b[2J\\\\c\\xff\\u{85}d é");
    }
}
