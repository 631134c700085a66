//! The account files checked the way shadow's `pwck -r` and `grpck -r` do, for what a kill -9
//! of an earlier run can leave half done: shadow's tools write passwd before shadow and group
//! before gshadow, and create the home last, so a run killed in between leaves a user without
//! its shadow line, a group without its gshadow line, a member missing from gshadow or a user
//! without a home. For isolate's own accounts (recorded in the state file, and the shared
//! group) such a half-state is repaired through shadow's tools; anything else about them
//! (duplicate names or ids, a shadow line without a user) is refused, naming file and line.
//! Other accounts are the host's business: never repaired, never a reason to refuse.
use crate::error::{Error, Result};
use crate::host::accounts::etc::{byte_lines, name_of, read_optional};
pub use crate::host::accounts::shadow::AccountRepairs;
use crate::layout::Root;
use crate::model::escape;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// One entry of an account file: its line and the fields the checks need.
#[derive(Clone, Debug)]
struct Entry {
    line: usize,
    name: String,
    /// uid (passwd) or gid (group); None in shadow files or when not a number.
    id: Option<u32>,
    /// The home directory (passwd) or the members (group, gshadow).
    rest: Vec<String>,
}

/// Which fields of a line [`read_entries`] keeps beside the name.
struct Layout {
    /// The field holding the numeric id, if the file has one.
    id: Option<usize>,
    /// The field holding the home directory (passwd) ...
    home: Option<usize>,
    /// ... or the comma-separated members (group, gshadow).
    members: Option<usize>,
}

const PASSWD_FIELDS: Layout = Layout {
    id: Some(2),
    home: Some(5),
    members: None,
};
const SHADOW_FIELDS: Layout = Layout {
    id: None,
    home: None,
    members: None,
};
const GROUP_FIELDS: Layout = Layout {
    id: Some(2),
    home: None,
    members: Some(3),
};
const GSHADOW_FIELDS: Layout = Layout {
    id: None,
    home: None,
    members: Some(3),
};

/// An account file as read for the check; `None` when the file does not exist (shadow's
/// tools then do not write it either, and nothing is missing from it).
fn read_entries(root: &Root, rel: &str, layout: &Layout) -> Result<Option<Vec<Entry>>> {
    let path = root.join(rel);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_optional(&path)?;
    let mut out = Vec::new();
    for (i, raw) in byte_lines(&bytes).enumerate() {
        if raw.is_empty() || raw.starts_with(b"+") || raw.starts_with(b"-") {
            continue; // NIS compat lines name no local entry
        }
        let f: Vec<&[u8]> = raw.split(|b| *b == b':').collect();
        let field = |n: Option<usize>| n.and_then(|n| f.get(n).copied());
        let id = field(layout.id)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok());
        let rest = match (field(layout.home), field(layout.members)) {
            (Some(home), _) => vec![name_of(home)],
            (None, Some(members)) => members
                .split(|b| *b == b',')
                .filter(|m| !m.is_empty())
                .map(name_of)
                .collect(),
            (None, None) => Vec::new(),
        };
        out.push(Entry {
            line: i + 1,
            name: name_of(f[0]),
            id,
            rest,
        });
    }
    Ok(Some(out))
}

/// What is wrong, in shadow's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A passwd line without a shadow line (useradd killed between the two writes).
    NoShadowLine { user: String },
    /// A shadow line without a passwd line.
    NoPasswdLine { user: String },
    /// A group line without a gshadow line (groupadd killed between the two writes).
    NoGshadowLine { group: String },
    /// A gshadow line without a group line.
    NoGroupLine { group: String },
    /// A member in /etc/group but not in /etc/gshadow (usermod killed between the writes).
    MemberNotInGshadow { group: String, user: String },
    /// The user's home directory does not exist (useradd killed before creating it).
    NoHome {
        user: String,
        home: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// The same name twice in one file.
    DuplicateName { name: String, first_line: usize },
    /// An id of one of isolate's accounts used by another entry too.
    DuplicateId {
        name: String,
        id: u32,
        other: String,
        other_line: usize,
    },
}

/// A problem at a file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub problem: Problem,
    /// It concerns one of isolate's own accounts.
    pub own: bool,
}

impl Finding {
    /// True when an interrupted isolate run can have left it, and shadow's tools can finish it.
    pub fn repairable(&self) -> bool {
        self.own
            && matches!(
                self.problem,
                Problem::NoShadowLine { .. }
                    | Problem::NoGshadowLine { .. }
                    | Problem::MemberNotInGshadow { .. }
                    | Problem::NoHome { .. }
            )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}:{}", escape::path(&self.file), self.line);
        let n = |s: &str| escape::text(s).into_owned();
        match &self.problem {
            Problem::NoShadowLine { user } => {
                write!(f, "{at}: user `{}` has no line in shadow", n(user))
            }
            Problem::NoPasswdLine { user } => {
                write!(f, "{at}: `{}` has no line in passwd", n(user))
            }
            Problem::NoGshadowLine { group } => {
                write!(f, "{at}: group `{}` has no line in gshadow", n(group))
            }
            Problem::NoGroupLine { group } => {
                write!(f, "{at}: `{}` has no line in group", n(group))
            }
            Problem::MemberNotInGshadow { group, user } => write!(
                f,
                "{at}: `{}` is a member of group `{}` here but not in gshadow",
                n(user),
                n(group)
            ),
            Problem::NoHome { user, home, .. } => write!(
                f,
                "{at}: the home directory {} of `{}` does not exist",
                escape::path(home),
                n(user)
            ),
            Problem::DuplicateName { name, first_line } => {
                write!(f, "{at}: `{}` again (first on line {first_line})", n(name))
            }
            Problem::DuplicateId {
                name,
                id,
                other,
                other_line,
            } => write!(
                f,
                "{at}: id {id} of `{}` is also the id of `{}` (line {other_line})",
                n(name),
                n(other)
            ),
        }
    }
}

fn duplicates(file: &Path, entries: &[Entry], own: &BTreeSet<String>, out: &mut Vec<Finding>) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_id: BTreeMap<u32, &Entry> = BTreeMap::new();
    for e in entries {
        if let Some(&line) = first.get(e.name.as_str()) {
            out.push(Finding {
                file: file.to_path_buf(),
                line: e.line,
                problem: Problem::DuplicateName {
                    name: e.name.clone(),
                    first_line: line,
                },
                own: own.contains(&e.name),
            });
        } else {
            first.insert(&e.name, e.line);
        }
        let Some(id) = e.id else { continue };
        match by_id.get(&id) {
            Some(other) if other.name != e.name => {
                // Shared ids are legal for other accounts; never for isolate's.
                if own.contains(&e.name) || own.contains(&other.name) {
                    out.push(Finding {
                        file: file.to_path_buf(),
                        line: e.line,
                        problem: Problem::DuplicateId {
                            name: e.name.clone(),
                            id,
                            other: other.name.clone(),
                            other_line: other.line,
                        },
                        own: true,
                    });
                }
            }
            Some(_) => {}
            None => {
                by_id.insert(id, e);
            }
        }
    }
}

/// Pairs a file with its shadow file: every entry of each needs one in the other.
fn pair(
    (file, main): (&Path, &[Entry]),
    (shadow_file, shadow): (&Path, &[Entry]),
    own: &BTreeSet<String>,
    missing_in_shadow: impl Fn(String) -> Problem,
    missing_in_main: impl Fn(String) -> Problem,
    out: &mut Vec<Finding>,
) {
    let main_names: BTreeSet<&str> = main.iter().map(|e| e.name.as_str()).collect();
    let shadow_names: BTreeSet<&str> = shadow.iter().map(|e| e.name.as_str()).collect();
    for e in main
        .iter()
        .filter(|e| !shadow_names.contains(e.name.as_str()))
    {
        out.push(Finding {
            file: file.to_path_buf(),
            line: e.line,
            problem: missing_in_shadow(e.name.clone()),
            own: own.contains(&e.name),
        });
    }
    for e in shadow
        .iter()
        .filter(|e| !main_names.contains(e.name.as_str()))
    {
        out.push(Finding {
            file: shadow_file.to_path_buf(),
            line: e.line,
            problem: missing_in_main(e.name.clone()),
            own: own.contains(&e.name),
        });
    }
}

/// Every problem of the account files under `root`; `own` names isolate's users and groups.
pub fn check(root: &Root, own: &BTreeSet<String>) -> Result<Vec<Finding>> {
    let files = |rel: &str| root.join(rel);
    let passwd = read_entries(root, "etc/passwd", &PASSWD_FIELDS)?.unwrap_or_default();
    let shadow = read_entries(root, "etc/shadow", &SHADOW_FIELDS)?;
    let group = read_entries(root, "etc/group", &GROUP_FIELDS)?.unwrap_or_default();
    let gshadow = read_entries(root, "etc/gshadow", &GSHADOW_FIELDS)?;
    let mut out = Vec::new();
    duplicates(&files("etc/passwd"), &passwd, own, &mut out);
    duplicates(&files("etc/group"), &group, own, &mut out);
    if let Some(shadow) = &shadow {
        duplicates(&files("etc/shadow"), shadow, own, &mut out);
        pair(
            (&files("etc/passwd"), &passwd),
            (&files("etc/shadow"), shadow),
            own,
            |user| Problem::NoShadowLine { user },
            |user| Problem::NoPasswdLine { user },
            &mut out,
        );
    }
    if let Some(gshadow) = &gshadow {
        duplicates(&files("etc/gshadow"), gshadow, own, &mut out);
        pair(
            (&files("etc/group"), &group),
            (&files("etc/gshadow"), gshadow),
            own,
            |group| Problem::NoGshadowLine { group },
            |group| Problem::NoGroupLine { group },
            &mut out,
        );
        for g in &group {
            let Some(s) = gshadow.iter().find(|s| s.name == g.name) else {
                continue;
            };
            for m in g.rest.iter().filter(|m| !s.rest.contains(m)) {
                out.push(Finding {
                    file: files("etc/group"),
                    line: g.line,
                    problem: Problem::MemberNotInGshadow {
                        group: g.name.clone(),
                        user: m.clone(),
                    },
                    own: own.contains(&g.name) || own.contains(m),
                });
            }
        }
    }
    for u in passwd.iter().filter(|u| own.contains(&u.name)) {
        let (Some(uid), Some(home)) = (u.id, u.rest.first()) else {
            continue;
        };
        let home = PathBuf::from(home);
        if !root.at(&home).is_dir() {
            let gid = group
                .iter()
                .find(|g| g.name == u.name)
                .and_then(|g| g.id)
                .unwrap_or(uid);
            out.push(Finding {
                file: files("etc/passwd"),
                line: u.line,
                problem: Problem::NoHome {
                    user: u.name.clone(),
                    home,
                    uid,
                    gid,
                },
                own: true,
            });
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(out)
}

/// On NixOS the configuration declares the accounts and isolate never creates one, so no
/// isolate run can have left one half made, and shadow's tools must not touch them.
fn nixos(root: &Root) -> bool {
    root.join("etc/NIXOS").exists()
}

/// Finishes what an interrupted earlier run left half done in isolate's own accounts, or
/// refuses (exit 2, nothing changed) when one of them is wrong in a way no interrupted run
/// leaves. Returns one line per repair made.
pub fn repair_or_refuse(
    root: &Root,
    own: &BTreeSet<String>,
    repairs: &dyn AccountRepairs,
) -> Result<Vec<String>> {
    if nixos(root) {
        return Ok(Vec::new());
    }
    let found: Vec<Finding> = check(root, own)?.into_iter().filter(|f| f.own).collect();
    let refused: Vec<String> = found
        .iter()
        .filter(|f| !f.repairable())
        .map(|f| format!("{f}: an interrupted isolate run does not leave this, so isolate does not repair it; fix it (pwck -R / grpck -R show it) and run again"))
        .collect();
    if !refused.is_empty() {
        return Err(Error::HostState(refused));
    }
    let mut done = Vec::new();
    for f in &found {
        match &f.problem {
            Problem::NoShadowLine { user } => repairs.add_shadow_line(user)?,
            Problem::NoGshadowLine { group } => repairs.add_gshadow_line(group)?,
            Problem::MemberNotInGshadow { group, user } => repairs.add_member(user, group)?,
            Problem::NoHome { home, uid, gid, .. } => repairs.create_home(home, *uid, *gid)?,
            _ => unreachable!("only repairable findings are left"),
        }
        done.push(format!("repaired (left by an interrupted run): {f}"));
    }
    if !done.is_empty() {
        let left: Vec<String> = check(root, own)?
            .into_iter()
            .filter(|f| f.own)
            .map(|f| f.to_string())
            .collect();
        if !left.is_empty() {
            return Err(Error::host(StillInconsistent { left }));
        }
    }
    Ok(done)
}

/// What is wrong with isolate's own accounts after apply's account steps (empty when
/// shadow's tools left everything consistent), for apply to report as a failure.
pub fn own_problems(root: &Root, own: &BTreeSet<String>) -> Result<Vec<String>> {
    if nixos(root) {
        return Ok(Vec::new());
    }
    Ok(check(root, own)?
        .into_iter()
        .filter(|f| f.own)
        .map(|f| f.to_string())
        .collect())
}

/// Repairs were made, and the account files still show problems of isolate's own accounts.
#[derive(Debug, thiserror::Error)]
#[error("the account files are still inconsistent after repair:\n{}", left.join("\n"))]
pub struct StillInconsistent {
    /// Each problem as pwck/grpck would report it.
    pub left: Vec<String>,
}

#[cfg(test)]
mod tests;
