//! What isolate did with a stack's quadlets, kept in `/var/lib/isolate/stacks/NAME/quadlets.json`
//! before each change: the legacy files' places and owners (so rollback puts them back as
//! they were) and the files written for the stack user (so rollback removes only those).
use super::place;
use crate::error::{Error, Result};
use crate::layout::Root;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One legacy quadlet file isolate parked: where it was and as whom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The legacy owner's uid (0: root, the system manager).
    pub legacy_uid: u32,
    pub sources: Vec<Source>,
    /// The units the legacy files made, started again by rollback.
    pub legacy_units: Vec<String>,
    /// The stack user's uid, once its files are written.
    pub stack_uid: Option<u32>,
    /// The stack user's quadlet directory and the files isolate wrote there.
    pub dir: Option<PathBuf>,
    pub installed: Vec<String>,
    /// The units started in the stack user's manager.
    pub units: Vec<String>,
}

/// Where the record of `stack` lives (absolute, as seen from the root).
pub fn path(stack: &str) -> PathBuf {
    place::parked_dir(stack)
        .parent()
        .map(|p| p.join("quadlets.json"))
        .unwrap_or_default()
}

impl Record {
    pub fn read(root: &Root, stack: &str) -> Result<Option<Record>> {
        let Some(found) = super::files::read(root, &path(stack))? else {
            return Ok(None);
        };
        serde_json::from_str(&found.text).map(Some).map_err(|e| {
            Error::io(
                format!("reading {}", root.at(&path(stack)).display()),
                e.into(),
            )
        })
    }

    pub fn write(&self, root: &Root, stack: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::io("serializing the quadlet record", e.into()))?;
        crate::host::files::write_atomic(&root.at(&path(stack)), text.as_bytes(), 0o600)
    }

    pub fn remove(root: &Root, stack: &str) -> Result<()> {
        super::files::remove(root, &path(stack))
    }

    /// Records (or updates) where a legacy file was and as whom.
    pub fn keep_source(&mut self, path: &Path, found: &super::files::Found) {
        let s = Source {
            path: path.to_path_buf(),
            uid: found.uid,
            gid: found.gid,
            mode: found.mode,
        };
        match self.sources.iter_mut().find(|x| x.path == path) {
            Some(x) => *x = s,
            None => self.sources.push(s),
        }
    }
}
