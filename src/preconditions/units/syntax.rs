//! systemd's unit file syntax, as far as finding what a unit runs needs it: sections, `Key=value`
//! directives with their line numbers (a line ending in `\` continues on the next; comment
//! lines inside a continuation are skipped, as systemd does), an Exec line's prefixes (`-`, `@`,
//! `+`, `!`, `!!`, `:`, `|`) and its words (double and single quotes, backslash escapes).
//! Specifiers (`%h`, `%i`, ...) and `$VARIABLES` are left as written: isolate never guesses
//! what they expand to, so a path written through one is not matched.
use std::path::PathBuf;

/// One `Key=value` of a unit file or drop-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub section: String,
    pub key: String,
    pub value: String,
    /// The file it is written in (as named below the root) and its first line (1-based).
    pub file: PathBuf,
    pub line: usize,
}

/// The directives of one unit file, in file order.
pub fn directives(file: &std::path::Path, text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let mut joined = line.to_string();
        while joined.ends_with('\\') {
            joined.pop();
            joined.push(' ');
            let Some((_, next)) = lines.by_ref().find(|(_, l)| {
                let t = l.trim_start();
                !(t.starts_with('#') || t.starts_with(';'))
            }) else {
                break;
            };
            joined.push_str(next.trim());
        }
        let Some((key, value)) = joined.split_once('=') else {
            continue; // systemd ignores such a line with a warning
        };
        out.push(Directive {
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            file: file.to_path_buf(),
            line: i + 1,
        });
    }
    out
}

/// An Exec line without its prefixes: the words of the command, and whether it runs with
/// full privileges (`+`, `!`, `!!`: the unit's `User=` does not apply to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecLine {
    pub words: Vec<String>,
    pub privileged: bool,
}

/// Parses an Exec value (`ExecStart=` and friends). Several commands separated by a lone `;`
/// (allowed for ExecStartPre/Post) come back as several lines. An empty value (a reset) gives
/// none.
pub fn exec_lines(value: &str) -> Vec<ExecLine> {
    let mut out = Vec::new();
    for command in split_commands(&tokens(value)) {
        let mut words = command;
        let Some(first) = words.first_mut() else {
            continue;
        };
        let mut privileged = false;
        let prefix_len = first
            .chars()
            .take_while(|c| matches!(c, '-' | '@' | '+' | '!' | ':' | '|'))
            .count();
        let prefix: String = first.chars().take(prefix_len).collect();
        if prefix.contains('+') || prefix.contains('!') {
            privileged = true;
        }
        let rest: String = first.chars().skip(prefix_len).collect();
        *first = rest;
        // `@`: the second word is argv[0], not an argument.
        if prefix.contains('@') && words.len() > 1 {
            words.remove(1);
        }
        if words.first().is_some_and(|w| w.is_empty()) {
            words.remove(0);
        }
        if !words.is_empty() {
            out.push(ExecLine { words, privileged });
        }
    }
    out
}

fn split_commands(all: &[(String, bool)]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for (w, plain) in all {
        if *plain && w == ";" {
            out.push(Vec::new());
        } else {
            out.last_mut().expect("never empty").push(w.clone());
        }
    }
    out
}

/// Splits a value into words the way systemd (and, for a script's line, a plain shell) does:
/// whitespace separates, double and single quotes group, a backslash escapes the next
/// character.
pub fn words(value: &str) -> Vec<String> {
    tokens(value).into_iter().map(|(w, _)| w).collect()
}

/// The words, each with whether it was written plainly (no quote, no escape): only a plain
/// `;` separates commands.
fn tokens(value: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut plain = true;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push((std::mem::take(&mut current), plain));
                    in_word = false;
                    plain = true;
                }
            }
            '"' | '\'' => {
                in_word = true;
                plain = false;
                while let Some(q) = chars.next() {
                    if q == c {
                        break;
                    }
                    if q == '\\' && c == '"' {
                        if let Some(e) = chars.next() {
                            current.push(e);
                        }
                        continue;
                    }
                    current.push(q);
                }
            }
            '\\' => {
                in_word = true;
                plain = false;
                if let Some(e) = chars.next() {
                    current.push(e);
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        out.push((current, plain));
    }
    out
}

/// The commands of a shell script's line (or of `sh -c`'s argument): its words, cut at the
/// shell's separators (`;`, `&&`, `||`, `|`, `&`), each command's leading `VAR=value`
/// assignments left out. Comments end the line.
pub fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut spaced = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if spaced.is_empty() || spaced.ends_with(char::is_whitespace) => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                spaced.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                spaced.push(c);
            }
            (None, ';' | '&' | '|') => {
                spaced.push_str(" \u{1} ");
                while chars.peek().is_some_and(|n| matches!(n, '&' | '|')) {
                    chars.next();
                }
            }
            (None, '(' | ')' | '{' | '}') => spaced.push(' '),
            (_, c) => spaced.push(c),
        }
    }
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for w in words(&spaced) {
        if w == "\u{1}" {
            out.push(std::mem::take(&mut current));
        } else if current.is_empty() && is_assignment(&w) {
            continue;
        } else {
            current.push(w);
        }
    }
    out.push(current);
    out.retain(|c| !c.is_empty());
    out
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}
