//! Parsers for the host's account files (passwd, group, subuid, subgid) under a root.
//! Reading never changes anything.
use crate::error::{Error, Result};
use crate::ids::SubidRange;
use crate::model::escape;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Who a subordinate line belongs to: shadow accepts a user name or a numeric uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubidOwner {
    Name(String),
    Uid(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubidLine {
    /// 1-based line number in the file, for messages.
    pub line: usize,
    pub owner: SubidOwner,
    pub range: SubidRange,
}

/// One parsed subuid or subgid file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubidFile {
    pub path: PathBuf,
    pub lines: Vec<SubidLine>,
}

impl SubidFile {
    /// Every range that belongs to the user, by name or by uid, in file order (podman's order).
    pub fn ranges_of(&self, name: &str, uid: Option<u32>) -> Vec<SubidRange> {
        self.lines
            .iter()
            .filter(|l| match &l.owner {
                SubidOwner::Name(n) => n == name,
                SubidOwner::Uid(u) => Some(*u) == uid,
            })
            .map(|l| l.range)
            .collect()
    }

    /// Pairs of lines whose ranges overlap: newuidmap refuses such a user with EINVAL,
    /// and a new range could not be proven free. Same-owner duplicates count too.
    pub fn overlaps(&self) -> Vec<(&SubidLine, &SubidLine)> {
        let mut sorted: Vec<&SubidLine> = self.lines.iter().collect();
        sorted.sort_by_key(|l| (l.range.start, l.line));
        let mut out = Vec::new();
        for (i, a) in sorted.iter().enumerate() {
            for b in &sorted[i + 1..] {
                if u64::from(b.range.start) >= a.range.end() {
                    break;
                }
                let (first, second) = if a.line < b.line { (*a, *b) } else { (*b, *a) };
                out.push((first, second));
            }
        }
        out.sort_by_key(|(a, b)| (a.line, b.line));
        out
    }
}

/// The file's bytes; a missing file is empty. Never decoded as a whole: /etc files are bytes
/// (a Latin-1 GECOS is legal), and only the fields isolate needs are decoded, one by one.
pub fn read_optional(path: &Path) -> Result<Vec<u8>> {
    match fs::read(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

fn bad_line(path: &Path, line: usize, why: impl std::fmt::Display) -> String {
    format!("{}:{}: {}", path.display(), line, why)
}

fn number(path: &Path, line: usize, field: &[u8], what: &str) -> std::result::Result<u32, String> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|f| f.parse::<u32>().ok())
        .ok_or_else(|| {
            bad_line(
                path,
                line,
                format!(
                    "{what} \"{}\" is not a number from 0 to 4294967295",
                    escape::bytes(field)
                ),
            )
        })
}

/// A name field as isolate holds it: the text when it is UTF-8, else its escaped form
/// (`\xNN`), which holds a backslash and so never equals a valid user or group name: a
/// name that is not UTF-8 never matches a stack user, and is never written back by isolate.
pub fn name_of(field: &[u8]) -> String {
    escape::held_name(field)
}

/// The lines of an account file as bytes, without their `\n` (and a `\r` before it).
pub fn byte_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    text.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(move |_| !text.is_empty())
}

fn fields(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| *b == b':').collect()
}

pub fn parse_passwd(
    path: &Path,
    text: impl AsRef<[u8]>,
) -> std::result::Result<Vec<PasswdEntry>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in byte_lines(text.as_ref()).enumerate() {
        let n = i + 1;
        if raw.is_empty() || raw.starts_with(b"+") || raw.starts_with(b"-") {
            continue; // NIS compat lines name no local account
        }
        let f = fields(raw);
        if f.len() != 7 {
            errs.push(bad_line(
                path,
                n,
                format!("expected 7 fields, found {}", f.len()),
            ));
            continue;
        }
        match (number(path, n, f[2], "uid"), number(path, n, f[3], "gid")) {
            (Ok(uid), Ok(gid)) => out.push(PasswdEntry {
                name: name_of(f[0]),
                uid,
                gid,
                home: name_of(f[5]),
                shell: name_of(f[6]),
            }),
            (a, b) => errs.extend(a.err().into_iter().chain(b.err())),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

pub fn parse_group(
    path: &Path,
    text: impl AsRef<[u8]>,
) -> std::result::Result<Vec<GroupEntry>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in byte_lines(text.as_ref()).enumerate() {
        let n = i + 1;
        if raw.is_empty() || raw.starts_with(b"+") || raw.starts_with(b"-") {
            continue;
        }
        let f = fields(raw);
        if f.len() != 4 {
            errs.push(bad_line(
                path,
                n,
                format!("expected 4 fields, found {}", f.len()),
            ));
            continue;
        }
        match number(path, n, f[2], "gid") {
            Ok(gid) => out.push(GroupEntry {
                name: name_of(f[0]),
                gid,
                members: f[3]
                    .split(|b| *b == b',')
                    .filter(|m| !m.is_empty())
                    .map(name_of)
                    .collect(),
            }),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Parses `/etc/subuid` or `/etc/subgid`: `owner:start:count` per line, owner a user name or a
/// numeric uid. shadow's parser has no comments, so a `#` line is an error rather than skipped:
/// silently skipping it would hide a range newuidmap does not see the way the admin thinks.
pub fn parse_subid(
    path: &Path,
    text: impl AsRef<[u8]>,
) -> std::result::Result<SubidFile, Vec<String>> {
    let mut lines = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in byte_lines(text.as_ref()).enumerate() {
        let n = i + 1;
        if raw.trim_ascii().is_empty() {
            continue;
        }
        if raw.trim_ascii_start().starts_with(b"#") {
            errs.push(bad_line(
                path,
                n,
                "comments are not allowed: shadow's subordinate id files have no comment syntax; remove the line",
            ));
            continue;
        }
        let f = fields(raw);
        if f.len() != 3 {
            errs.push(bad_line(
                path,
                n,
                format!("expected owner:start:count, found {} fields", f.len()),
            ));
            continue;
        }
        if f[0].is_empty() {
            errs.push(bad_line(path, n, "the owner is empty"));
            continue;
        }
        let owner = if f[0].iter().all(|b| b.is_ascii_digit()) {
            match number(path, n, f[0], "owner uid") {
                Ok(u) => SubidOwner::Uid(u),
                Err(e) => {
                    errs.push(e);
                    continue;
                }
            }
        } else {
            SubidOwner::Name(name_of(f[0]))
        };
        let (start, count) = match (
            number(path, n, f[1], "start"),
            number(path, n, f[2], "count"),
        ) {
            (Ok(s), Ok(c)) => (s, c),
            (a, b) => {
                errs.extend(a.err().into_iter().chain(b.err()));
                continue;
            }
        };
        match SubidRange::new(start, count) {
            Ok(range) => lines.push(SubidLine {
                line: n,
                owner,
                range,
            }),
            Err(e) => errs.push(bad_line(path, n, e)),
        }
    }
    if errs.is_empty() {
        Ok(SubidFile {
            path: path.to_path_buf(),
            lines,
        })
    } else {
        Err(errs)
    }
}

/// The account files of one root, parsed. Problems in any of them are collected together.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    pub passwd: Vec<PasswdEntry>,
    pub group: Vec<GroupEntry>,
    pub subuid: SubidFile,
    pub subgid: SubidFile,
}

impl Accounts {
    pub fn read(root: &Path) -> Result<Self> {
        let mut errs = Vec::new();
        let p = root.join("etc/passwd");
        let passwd = parse_passwd(&p, &read_optional(&p)?).unwrap_or_else(|e| {
            errs.extend(e);
            Vec::new()
        });
        let g = root.join("etc/group");
        let group = parse_group(&g, &read_optional(&g)?).unwrap_or_else(|e| {
            errs.extend(e);
            Vec::new()
        });
        let su = root.join("etc/subuid");
        let subuid = parse_subid(&su, &read_optional(&su)?).unwrap_or_else(|e| {
            errs.extend(e);
            SubidFile::default()
        });
        let sg = root.join("etc/subgid");
        let subgid = parse_subid(&sg, &read_optional(&sg)?).unwrap_or_else(|e| {
            errs.extend(e);
            SubidFile::default()
        });
        if !errs.is_empty() {
            return Err(Error::HostState(errs));
        }
        Ok(Accounts {
            passwd,
            group,
            subuid,
            subgid,
        })
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.passwd.iter().find(|p| p.name == name)
    }
    pub fn user_by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.passwd.iter().find(|p| p.uid == uid)
    }
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.group.iter().find(|g| g.name == name)
    }
    pub fn group_by_gid(&self, gid: u32) -> Option<&GroupEntry> {
        self.group.iter().find(|g| g.gid == gid)
    }

    /// The gid `groupadd --system` would pick with shadow's defaults (the highest free one of
    /// 101..=999), also clear of every uid and of what `taken` holds; chosen by isolate itself so
    /// that it is recorded before the group exists.
    pub fn free_system_gid(&self, taken: impl Fn(u32) -> bool) -> Option<u32> {
        (101..=999).rev().find(|&id| {
            self.group_by_gid(id).is_none()
                && self.user_by_uid(id).is_none()
                && !self.passwd.iter().any(|u| u.gid == id)
                && !taken(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subid(text: &str) -> std::result::Result<SubidFile, Vec<String>> {
        parse_subid(Path::new("/etc/subuid"), text)
    }

    #[test]
    fn odd_but_valid_subid_lines_parse() {
        let f = subid("alice:100000:65536\n\n1001:165536:65536\nstk-a:4294967295:1\n").unwrap();
        assert_eq!(f.lines.len(), 3);
        assert_eq!(f.lines[1].owner, SubidOwner::Uid(1001));
        assert_eq!(f.lines[1].line, 3);
        assert_eq!(
            f.ranges_of("bob", Some(1001)),
            vec![SubidRange {
                start: 165536,
                count: 65536
            }]
        );
        assert_eq!(
            f.ranges_of("alice", Some(1000)),
            vec![SubidRange {
                start: 100000,
                count: 65536
            }]
        );
    }

    #[test]
    fn comments_and_broken_lines_are_rejected_with_their_line() {
        let errs = subid("# mine\nalice:100000\nbob:x:1\ncarol:1:0\ndave:4294967295:2\n:1:1\n")
            .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "/etc/subuid:1: comments are not allowed: shadow's subordinate id files have no comment syntax; remove the line",
                "/etc/subuid:2: expected owner:start:count, found 2 fields",
                "/etc/subuid:3: start \"x\" is not a number from 0 to 4294967295",
                "/etc/subuid:4: a subordinate range needs at least one id",
                "/etc/subuid:5: range 4294967295+2 ends past the largest id 4294967295",
                "/etc/subuid:6: the owner is empty",
            ]
        );
    }

    #[test]
    fn overlapping_lines_are_found_including_same_owner_duplicates() {
        let f = subid("alice:100000:65536\nbob:300000:10\nalice:100000:65536\ncarol:300009:5\n")
            .unwrap();
        let pairs: Vec<(usize, usize)> =
            f.overlaps().iter().map(|(a, b)| (a.line, b.line)).collect();
        assert_eq!(pairs, vec![(1, 3), (2, 4)]);
        assert!(subid("a:1:10\nb:11:10\n").unwrap().overlaps().is_empty());
    }

    #[test]
    fn passwd_and_group_parse() {
        let p = parse_passwd(Path::new("p"), "root:x:0:0:root:/root:/bin/bash\n+::::::\n").unwrap();
        assert_eq!(p[0].uid, 0);
        let g = parse_group(Path::new("g"), "media:x:500:a,b\n").unwrap();
        assert_eq!(g[0].members, vec!["a", "b"]);
        assert_eq!(
            parse_passwd(Path::new("p"), "x:x:y:0:::\n").unwrap_err(),
            vec!["p:1: uid \"y\" is not a number from 0 to 4294967295"]
        );
    }

    #[test]
    fn fields_isolate_does_not_need_may_be_any_bytes() {
        let p = parse_passwd(
            Path::new("p"),
            b"jose:x:1001:1001:Jos\xe9 Garc\xeda:/home/jose:/bin/bash\r\ncaf\xe9:x:1002:1002::/:/bin/sh\n",
        )
        .unwrap();
        assert_eq!((p[0].name.as_str(), p[0].uid), ("jose", 1001));
        // A name that is not UTF-8 is held escaped: it never equals a valid user name.
        assert_eq!(p[1].name, "caf\\xe9");
        let g = parse_group(Path::new("g"), b"m\xfcsik:x:600:jose,caf\xe9\n").unwrap();
        assert_eq!(g[0].members, vec!["jose", "caf\\xe9"]);
        let f = parse_subid(Path::new("s"), b"caf\xe9:100000:10\n").unwrap();
        assert_eq!(f.lines[0].owner, SubidOwner::Name("caf\\xe9".into()));
    }

    #[test]
    fn a_needed_field_that_is_not_utf8_is_named_escaped() {
        assert_eq!(
            parse_passwd(Path::new("p"), b"x:x:1\xe9:0:::\n").unwrap_err(),
            vec!["p:1: uid \"1\\xe9\" is not a number from 0 to 4294967295"]
        );
    }
}
