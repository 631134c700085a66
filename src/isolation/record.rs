//! What isolate changed to isolate stacks, so rollback restores it exactly:
//! ROOT/var/lib/isolate/isolation.json (written atomically, before each change) holds each
//! closed data path's top directory as it was, and each share's top `other` and group bits.
use crate::error::{Error, Result};
use crate::host::files::write_atomic;
use crate::layout::Root;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const RECORD_VERSION: u32 = 1;

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

/// A share's top directory bits before isolate closed it to stacks not granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareTop {
    pub path: PathBuf,
    pub other: u16,
    pub group_obj: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// Per stack, its closed data paths.
    #[serde(default)]
    pub closed: BTreeMap<String, Vec<ClosedTop>>,
    /// Per share name.
    #[serde(default)]
    pub shares: BTreeMap<String, ShareTop>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            version: RECORD_VERSION,
            closed: BTreeMap::new(),
            shares: BTreeMap::new(),
        }
    }
}

pub fn record_path(root: &Root) -> PathBuf {
    root.at(&crate::layout::isolation_record())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
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
        let record: Record = serde_json::from_str(&text).map_err(|e| {
            Error::HostState(vec![format!(
                "{}: not a valid isolate isolation record: {e}",
                path.display()
            )])
        })?;
        if record.version != RECORD_VERSION {
            return Err(Error::HostState(vec![format!(
                "{}: record version {} is not {RECORD_VERSION}",
                path.display(),
                record.version
            )]));
        }
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
        r.shares.insert(
            "media".into(),
            ShareTop {
                path: "/srv/media".into(),
                other: 5,
                group_obj: 5,
            },
        );
        r.write(&root).unwrap();
        assert_eq!(Record::read(&root).unwrap(), r);
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert!(r.closed_top("a", Path::new("/srv/a")).is_some());
    }
}
