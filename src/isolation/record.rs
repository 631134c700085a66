//! What isolate changed to isolate stacks, so rollback restores it exactly:
//! ROOT/var/lib/isolate/isolation.json (written atomically, before each change) holds each
//! closed data path's top directory as it was, and each share tree isolate changed, keyed by
//! the share's name and path, with the journal (`isolation::journal`) of every inode there
//! whose ACLs taking isolate's entries out again would not give back (the top always).
use crate::error::{Error, Result};
use crate::host::files::write_atomic;
use crate::layout::Root;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version 2 keys shares by path and journals their inodes; a version 1 record is read when
/// it holds no share (its closed tops are the same).
pub const RECORD_VERSION: u32 = 2;

/// A data path's top directory before isolate closed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedTop {
    pub path: PathBuf,
    /// The inode closed: a rollback never touches another one standing there now.
    pub ino: u64,
    /// Permission bits (with setuid/setgid/sticky) before.
    pub perm: u32,
    /// The access ACL xattr before, hex; None when it had none.
    pub acl_access: Option<String>,
}

/// A share tree isolate changed: the share's name and the path it had then (a share whose
/// path changes in the policy is another tree, taken off before the new one is granted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareTree {
    pub name: String,
    pub path: PathBuf,
    /// The top directory's inode when isolate first changed it.
    pub ino: u64,
    /// The journal's file name in ROOT/var/lib/isolate/shares.
    pub journal: String,
}

impl ShareTree {
    pub fn new(name: &str, path: &Path, ino: u64) -> ShareTree {
        ShareTree {
            name: name.to_string(),
            path: path.to_path_buf(),
            ino,
            journal: journal_name(name, path),
        }
    }
}

/// `NAME-HASH.acl`: the name for people (any byte but `[A-Za-z0-9_-]` as `_`, so a share
/// name never makes a path), a hash of name and path so each tree has its own.
fn journal_name(name: &str, path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let hash = name
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(path.as_os_str().as_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let readable: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{readable}-{hash:016x}.acl")
}

/// Where a share tree's journal lies.
pub fn journal_path(root: &Root, tree: &ShareTree) -> PathBuf {
    root.at(&crate::layout::isolation_record())
        .with_file_name("shares")
        .join(&tree.journal)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// Per stack, its closed data paths.
    #[serde(default)]
    pub closed: BTreeMap<String, Vec<ClosedTop>>,
    /// The share trees isolate changed, in the order it first changed them.
    #[serde(default)]
    pub share_trees: Vec<ShareTree>,
    /// Version 1's shares (name -> top bits, no masks): read only to refuse them.
    #[serde(default, rename = "shares", skip_serializing)]
    pub v1_shares: BTreeMap<String, serde_json::Value>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            version: RECORD_VERSION,
            closed: BTreeMap::new(),
            share_trees: Vec::new(),
            v1_shares: BTreeMap::new(),
        }
    }
}

pub fn record_path(root: &Root) -> PathBuf {
    root.at(&crate::layout::isolation_record())
}

/// Lower-case hex, two digits a byte (a journal of a million ACLs encodes hundreds of
/// megabytes of it: no allocation per byte).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

impl Record {
    /// A missing file is an empty record (nothing closed or shared yet).
    pub fn read(root: &Root) -> Result<Record> {
        let path = record_path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let mut record: Record = serde_json::from_str(&text).map_err(|e| {
            Error::HostState(vec![format!(
                "{}: not a valid isolate isolation record: {e}",
                path.display()
            )])
        })?;
        if !record.v1_shares.is_empty() {
            return Err(Error::HostState(vec![format!(
                "{}: shares {} were recorded by an isolate that kept neither their masks nor \
                 their paths; roll them back with that isolate (`isolate rollback --share NAME`) \
                 before this one applies shares",
                path.display(),
                record
                    .v1_shares
                    .keys()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )]));
        }
        if record.version != RECORD_VERSION && record.version != 1 {
            return Err(Error::HostState(vec![format!(
                "{}: record version {} is not {RECORD_VERSION}",
                path.display(),
                record.version
            )]));
        }
        record.version = RECORD_VERSION;
        Ok(record)
    }

    pub fn write(&self, root: &Root) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("record serialises");
        text.push('\n');
        write_atomic(&record_path(root), text.as_bytes(), 0o600)
    }

    pub fn closed_top(&self, stack: &str, path: &Path) -> Option<&ClosedTop> {
        self.closed.get(stack)?.iter().find(|c| c.path == path)
    }

    /// The trees recorded for share `name` (one, or two while a move is unfinished).
    pub fn shares_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ShareTree> {
        self.share_trees.iter().filter(move |t| t.name == name)
    }

    pub fn share_tree(&self, name: &str, path: &Path) -> Option<&ShareTree> {
        self.share_trees
            .iter()
            .find(|t| t.name == name && t.path == path)
    }

    /// Forgets one tree (after its rollback).
    pub fn forget_share_tree(&mut self, name: &str, path: &Path) {
        self.share_trees
            .retain(|t| !(t.name == name && t.path == path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(Record::read(&root).unwrap(), Record::default());
        let mut r = Record::default();
        r.closed.entry("a".into()).or_default().push(ClosedTop {
            path: "/srv/a".into(),
            ino: 12,
            perm: 0o755,
            acl_access: Some(hex(&[2, 0, 0, 0])),
        });
        r.share_trees
            .push(ShareTree::new("media", Path::new("/srv/media"), 7));
        r.write(&root).unwrap();
        assert_eq!(Record::read(&root).unwrap(), r);
        assert_eq!(r.shares_named("media").count(), 1);
        assert_ne!(
            ShareTree::new("media", Path::new("/srv/other"), 7).journal,
            r.share_trees[0].journal,
            "each path its own journal"
        );
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert!(r.closed_top("a", Path::new("/srv/a")).is_some());
    }

    #[test]
    fn a_version_1_record_reads_without_shares_and_is_refused_with_them() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let v1 = r#"{"version":1,"closed":{"a":[{"path":"/srv/a","ino":3,"perm":493,"acl_access":null}]},"shares":{}}"#;
        write_atomic(&record_path(&root), v1.as_bytes(), 0o600).unwrap();
        let r = Record::read(&root).unwrap();
        assert_eq!((r.version, r.closed["a"].len()), (RECORD_VERSION, 1));
        let v1 =
            r#"{"version":1,"shares":{"media":{"path":"/srv/media","other":5,"group_obj":5}}}"#;
        write_atomic(&record_path(&root), v1.as_bytes(), 0o600).unwrap();
        let err = Record::read(&root).unwrap_err().to_string();
        assert!(
            err.contains("shares `media` were recorded by an isolate"),
            "{err}"
        );
    }
}
