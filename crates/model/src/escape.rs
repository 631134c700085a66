//! Names and paths from the host (file names a container planted, /etc fields) made safe for a
//! terminal: the one escaping every human-readable line goes through, so no name can move the
//! cursor, clear the screen or forge an output line. JSON needs no escaping of its own (serde
//! escapes controls), only a defined form for paths that are not UTF-8: [`json_path`].
//!
//! The text form: every byte that is not part of a printable UTF-8 character is written as
//! `\xNN` (lower-case hex), and a backslash as `\\`, so the original bytes can always be read
//! back. Escaped are: C0 controls (0x00-0x1f, including newline, carriage return and ESC),
//! DEL (0x7f), C1 controls (U+0080-U+009F, each as its two UTF-8 bytes), every character that
//! reorders or hides text (as its UTF-8 bytes): the bidirectional embeddings, overrides,
//! isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), the line and
//! paragraph separators (U+2028, U+2029), zero-width and invisible format characters (U+200B-
//! U+200D, U+2060-U+206F, U+180E, U+FEFF, U+FFF9-U+FFFB), and every byte of invalid UTF-8.
//! There is no second escaper: the audit's sample paths come from [`path_text`] too.
use serde::Serializer;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// True for characters a terminal would act on rather than show.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
        || c == '\\'
}

fn push_bytes(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "\\x{b:02x}");
    }
}

/// `bytes` in the escaped text form; borrowed when nothing needed escaping.
pub fn bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return text(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&text(chunk.valid()));
        push_bytes(&mut out, chunk.invalid());
    }
    Cow::Owned(out)
}

/// `s` in the escaped text form; borrowed when nothing needed escaping.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            push_bytes(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A name from an /etc file as isolate holds it: the text itself when it is UTF-8 (valid
/// names need no escaping, and the name must compare equal to what tools print), else the
/// escaped form, which holds a backslash and so never equals a valid user or group name.
pub fn held_name(field: &[u8]) -> String {
    match std::str::from_utf8(field) {
        Ok(s) => s.to_string(),
        Err(_) => bytes(field).into_owned(),
    }
}

/// A path in the escaped text form (its bytes, not a lossy conversion).
pub fn path(p: &Path) -> Cow<'_, str> {
    bytes(p.as_os_str().as_bytes())
}

/// [`path`] as an owned string (what a report keeps to print later).
pub fn path_text(p: &Path) -> String {
    path(p).into_owned()
}

/// A message of several lines: each line escaped, the line breaks kept.
pub fn lines(s: &str) -> String {
    s.split('\n').map(text).collect::<Vec<_>>().join("\n")
}

/// JSON form of a path: a string when it is UTF-8 (exact; serde escapes controls), otherwise
/// `{"bytes": [N, ...]}` holding every byte, so no path is ever lost or made up.
pub fn json_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match p.to_str() {
        Some(text) => s.serialize_str(text),
        None => {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("bytes", p.as_os_str().as_bytes())?;
            m.end()
        }
    }
}

/// [`json_path`] for a list of paths (`#[serde(serialize_with = ...)]`).
pub fn json_paths<S: Serializer>(ps: &[std::path::PathBuf], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct One<'a>(&'a Path);
    impl serde::Serialize for One<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            json_path(self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(ps.len()))?;
    for p in ps {
        seq.serialize_element(&One(p))?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(text("immich/data/ä €.jpg"), Cow::Borrowed(_)));
        assert!(matches!(bytes(b"a/b c"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_del_c1_bidi_backslash_and_invalid_bytes_are_escaped() {
        assert_eq!(text("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(text("x\ry\nz\t\0"), "x\\x0dy\\x0az\\x09\\x00");
        assert_eq!(text("del\x7f"), "del\\x7f");
        assert_eq!(text("csi\u{9b}2J"), "csi\\xc2\\x9b2J");
        assert_eq!(text("rlo\u{202e}txt"), "rlo\\xe2\\x80\\xaetxt");
        assert_eq!(
            text("lri\u{2066}x\u{2069}"),
            "lri\\xe2\\x81\\xa6x\\xe2\\x81\\xa9"
        );
        assert_eq!(
            text("m\u{200e}\u{200f}\u{061c}"),
            "m\\xe2\\x80\\x8e\\xe2\\x80\\x8f\\xd8\\x9c"
        );
        assert_eq!(text("z\u{200b}\u{feff}"), "z\\xe2\\x80\\x8b\\xef\\xbb\\xbf");
        assert_eq!(
            text("ok \u{00e9}\u{05d0}\u{0627}"),
            "ok \u{00e9}\u{05d0}\u{0627}"
        );
        assert_eq!(text("a\\x41"), "a\\\\x41");
        assert_eq!(bytes(b"Jos\xe9\x1b"), "Jos\\xe9\\x1b");
        assert_eq!(bytes(b"\xff\xfe/ok"), "\\xff\\xfe/ok");
        assert_eq!(
            path(Path::new(OsStr::from_bytes(b"d/\xe9\n"))),
            "d/\\xe9\\x0a"
        );
    }

    #[test]
    fn lines_keep_their_breaks_and_escape_the_rest() {
        assert_eq!(lines("one\x1b\ntwo\r"), "one\\x1b\ntwo\\x0d");
    }

    #[test]
    fn json_paths_are_exact_strings_or_bytes() {
        #[derive(serde::Serialize)]
        struct P {
            #[serde(serialize_with = "json_paths")]
            p: Vec<std::path::PathBuf>,
        }
        let v = P {
            p: vec![
                "a\x1bb".into(),
                std::path::PathBuf::from(OsStr::from_bytes(b"x\xe9")),
            ],
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"p":["a\u001bb",{"bytes":[120,233]}]}"#
        );
    }
}
