//! Moving a named volume's data directory from the legacy user's store to the stack user's:
//! a rename on the same filesystem, else a copy (to a side directory, renamed into place once
//! complete) and then removal of the original. Every state a kill -9 can leave is one a re-run
//! finishes from; the state file says which direction the move was going.
//!
//! Both stores belong to their users, who can put a link, a mount or another directory anywhere
//! in them, and whose API sockets answer whatever they like. So isolate computes where a store
//! keeps a volume itself (podman's rootless default below the user's home, see [`data_path`]),
//! reaches it through descriptors pinned beneath that home without following a link or crossing
//! a mount, checks the owner and the identity (device, inode) of the directory it is about to
//! move, and refuses anything else.
use super::error::HandoffError;
use crate::error::{Error, Result};
use crate::ids::IdMaps;
use crate::layout::Root;
pub use crate::state::handoff::{DirId, VolumePhase, VolumeRecord};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use serde::Serialize;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;

mod mover;
mod place;
pub use mover::{check_target, discard_partial, make_private_parent, move_dir};
pub use place::Place;
use place::*;

/// Where podman keeps a rootless user's volumes (podman's layout, kept with the adapter). The
/// user's own config files and socket answers are hers to write: isolate takes a volume only
/// from here, and refuses a volume a store reports anywhere else.
pub use crate::host::podman::{volume_data_path as data_path, STORE_BELOW_HOME};

/// A volume name as podman accepts it (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`): one path component,
/// never `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(c) if c.is_ascii_alphanumeric())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The home `data` is volume `name`'s data directory below, as [`data_path`] computes it
/// (None: `data` is not such a path, e.g. a record written by an older isolate).
pub fn home_of(data: &Path, name: &str) -> Option<PathBuf> {
    let home = data
        .ancestors()
        .nth(Path::new(STORE_BELOW_HOME).components().count() + 2)?;
    (valid_name(name) && data_path(home, name) == data).then(|| home.to_path_buf())
}

/// What stands at a volume's data directory in the legacy store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum VolumeData {
    /// No volume directory, or no `_data` in it: nothing to move.
    Missing,
    /// A real directory, not a mount point, owned by the store's user or her subordinate ids.
    Dir(DirId),
    /// Something isolate never moves, and why.
    Refused(String),
}

/// How the data went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moved {
    Renamed,
    Copied,
    /// A previous, interrupted run had already moved it.
    AlreadyThere,
}

pub fn inspect(
    root: &Root,
    sys: &dyn crate::walk::sys::WalkSys,
    home: &Path,
    name: &str,
    owners: &IdMaps,
) -> Result<VolumeData> {
    let found = Place::in_store(root, home, name).and_then(|p| match p {
        Some(p) => {
            let id = p.owned_dir(owners)?;
            p.check_tree(sys, &[owners])?;
            Ok(id)
        }
        None => Ok(None),
    });
    match found {
        Ok(None) => Ok(VolumeData::Missing),
        Ok(Some(id)) => Ok(VolumeData::Dir(id)),
        Err(Error::Refused(why)) => Ok(VolumeData::Refused(why.to_string())),
        Err(e) => Err(e),
    }
}

/// Whether the store below `home` has a directory that holds something at volume `name`'s
/// data directory (a link or a mount there counts as holding something: never mixed with).
pub fn store_holds_data(root: &Root, home: &Path, name: &str) -> bool {
    match Place::in_store(root, home, name) {
        Ok(Some(p)) => p.holds_data().unwrap_or(true),
        Ok(None) => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_are_computed_from_the_home_and_a_podman_name_only() {
        for ok in ["app_db", "a", "A1.b-c_d"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".x", "-x", "a/b", "../../etc", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let p = data_path(Path::new("/home/alice"), "app_db");
        assert_eq!(
            p,
            Path::new("/home/alice/.local/share/containers/storage/volumes/app_db/_data")
        );
        assert_eq!(home_of(&p, "app_db"), Some(PathBuf::from("/home/alice")));
        assert_eq!(home_of(&p, "other"), None);
        assert_eq!(home_of(Path::new("/root/secret"), "secret"), None);
        assert_eq!(home_of(Path::new("/srv/other/data"), "data"), None);
    }
}
