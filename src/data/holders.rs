//! What holds a stack's data: running containers (from a podman socket) and processes with it
//! mounted. Migration refuses while anything does.
use crate::host::accounts::Accounts;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A running container that holds a stack's data path (from a podman socket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunningContainer {
    pub owner: String,
    pub name: String,
    pub data_path: PathBuf,
}

/// Processes holding `path` (or a directory inside it) mounted, as running containers; when
/// they cannot be listed, that is reported as a holder too, so migration refuses.
pub fn mount_holders(acc: &Accounts, path: &Path) -> Vec<RunningContainer> {
    let found = match crate::host::mounts::mount_holders(path) {
        Ok(f) => f,
        Err(e) => {
            return vec![RunningContainer {
                owner: "?".into(),
                name: format!("(cannot look for holders: {e})"),
                data_path: path.to_path_buf(),
            }]
        }
    };
    found
        .into_iter()
        .map(|h| RunningContainer {
            owner: acc
                .user_by_uid(h.uid)
                .map_or_else(|| format!("uid {}", h.uid), |u| u.name.clone()),
            name: format!(
                "pid {} ({}, mounted at {})",
                h.pid,
                h.comm,
                h.mount_point.display()
            ),
            data_path: path.to_path_buf(),
        })
        .collect()
}
