//! Root's podman (rootful containers, issue 24): where it keeps named volumes differs from a
//! rootless user's (its API socket too: `layout::podman_socket`), and nothing else about a
//! legacy store does. A store is
//! reached through its anchor (a user's home, or root's /var/lib/containers) and the path below
//! it, pinned without following a link or crossing a mount.
use std::path::{Path, PathBuf};

/// Where root's podman keeps its storage: the anchor isolate pins root's store beneath.
pub const ROOTFUL_STORE_ANCHOR: &str = "/var/lib/containers";
/// Root's volumes below [`ROOTFUL_STORE_ANCHOR`] (podman's default `volume_path`).
pub const ROOTFUL_VOLUMES_BELOW: &str = "storage/volumes";

/// The directory a store's volumes are below `anchor` in: root's store below
/// /var/lib/containers, a rootless user's below her home.
pub fn volumes_below(anchor: &Path) -> &'static str {
    if anchor == Path::new(ROOTFUL_STORE_ANCHOR) {
        ROOTFUL_VOLUMES_BELOW
    } else {
        super::STORE_BELOW_HOME
    }
}

/// The anchor of the store of the user `uid` whose home is `home`: root's podman keeps its
/// store outside root's home.
pub fn store_anchor(uid: u32, home: &Path) -> PathBuf {
    if uid == 0 {
        PathBuf::from(ROOTFUL_STORE_ANCHOR)
    } else {
        home.to_path_buf()
    }
}
