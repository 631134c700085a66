//! What plan needs to know of the host for limits: each stack's slice drop-in as found, and
//! whether the host runs the unified cgroup hierarchy (v2), where the slice's limits act.
use super::dropin;
use super::error::LimitsError;
use crate::error::Result;
use crate::layout::Root;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Present only on a unified (v2) hierarchy.
pub const CGROUP_V2_MARK: &str = "/sys/fs/cgroup/cgroup.controllers";

/// One stack's drop-in as found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DropIn {
    /// `/etc/systemd/system/user-UID.slice.d/50-isolate.conf`.
    pub path: PathBuf,
    /// Its text; None when there is none.
    pub text: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// Per stack (allocated ones only).
    pub dropins: BTreeMap<String, DropIn>,
    /// `/sys/fs/cgroup/cgroup.controllers` exists under the root.
    pub cgroup_v2: bool,
}

/// A file's text, None when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LimitsError::Read {
            path: path.to_path_buf(),
            source,
        }
        .into()),
    }
}

/// The drop-ins of the stacks given as (stack, uid), and the cgroup version. Never writes.
pub fn observe<'a>(root: &Root, stacks: impl IntoIterator<Item = (&'a str, u32)>) -> Result<Facts> {
    let mut facts = Facts {
        cgroup_v2: root.at(Path::new(CGROUP_V2_MARK)).exists(),
        ..Facts::default()
    };
    for (stack, uid) in stacks {
        let path = dropin::path(uid);
        let text = read_optional(&root.at(&path))?;
        facts
            .dropins
            .insert(stack.to_string(), DropIn { path, text });
    }
    Ok(facts)
}
