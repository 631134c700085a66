//! The text of a draft: TOML strings and keys, comment-safe text, and stack names made from
//! compose project names.
use std::fmt::Write;
use std::path::Path;

/// A basic TOML string.
pub fn toml_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A table key: bare when TOML allows it, quoted otherwise.
pub fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        toml_string(s)
    }
}

/// Text safe inside a `#` comment (one line).
pub fn c(s: &str) -> String {
    s.chars()
        .flat_map(|ch| {
            if ch.is_control() {
                ch.escape_default().collect::<Vec<_>>()
            } else {
                vec![ch]
            }
        })
        .collect()
}

pub fn p(path: &Path) -> String {
    c(&path.display().to_string())
}

/// A stack name from a project name: lower-case, `[a-z0-9_-]`, starting with a letter or `_`,
/// short enough that prefix + name is a valid user name.
pub fn stack_name(project: &str, prefix: &str) -> String {
    let mut s: String = project
        .to_lowercase()
        .chars()
        .map(|ch| {
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-' {
                ch
            } else {
                '-'
            }
        })
        .collect();
    if prefix.is_empty() && !s.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_') {
        s.insert(0, 's');
    }
    if s.is_empty() {
        s.push_str("stack");
    }
    let max = 32usize.saturating_sub(prefix.len()).max(1);
    s.truncate(max);
    s
}
