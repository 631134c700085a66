//! Parsers for the host's account files (passwd, group, subuid, subgid) under a root.
//! Reading never changes anything.
use crate::error::{Error, Result};
use crate::ids::SubidRange;
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

fn read_optional(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

fn bad_line(path: &Path, line: usize, why: impl std::fmt::Display) -> String {
    format!("{}:{}: {}", path.display(), line, why)
}

fn number(path: &Path, line: usize, field: &str, what: &str) -> std::result::Result<u32, String> {
    field.parse::<u32>().map_err(|_| {
        bad_line(
            path,
            line,
            format!("{what} {field:?} is not a number from 0 to 4294967295"),
        )
    })
}

pub fn parse_passwd(path: &Path, text: &str) -> std::result::Result<Vec<PasswdEntry>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.is_empty() || raw.starts_with('+') || raw.starts_with('-') {
            continue; // NIS compat lines name no local account
        }
        let f: Vec<&str> = raw.split(':').collect();
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
                name: f[0].to_string(),
                uid,
                gid,
                home: f[5].to_string(),
                shell: f[6].to_string(),
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

pub fn parse_group(path: &Path, text: &str) -> std::result::Result<Vec<GroupEntry>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.is_empty() || raw.starts_with('+') || raw.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = raw.split(':').collect();
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
                name: f[0].to_string(),
                gid,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
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
pub fn parse_subid(path: &Path, text: &str) -> std::result::Result<SubidFile, Vec<String>> {
    let mut lines = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if raw.trim_start().starts_with('#') {
            errs.push(bad_line(
                path,
                n,
                "comments are not allowed: shadow's subordinate id files have no comment syntax; remove the line",
            ));
            continue;
        }
        let f: Vec<&str> = raw.split(':').collect();
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
        let owner = if f[0].bytes().all(|b| b.is_ascii_digit()) {
            match number(path, n, f[0], "owner uid") {
                Ok(u) => SubidOwner::Uid(u),
                Err(e) => {
                    errs.push(e);
                    continue;
                }
            }
        } else {
            SubidOwner::Name(f[0].to_string())
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
}
