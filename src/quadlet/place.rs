//! Where quadlet files live: the stack user's own quadlet directory (by podman's version), the
//! legacy owner's directories `init` drafts from, and where apply parks the legacy files so
//! her manager generates none of them again (rollback puts them back).
use std::path::{Path, PathBuf};

/// The first podman with quadlet, and with `/etc/containers/systemd/users/UID/`.
pub const QUADLET_SINCE: (u32, u32) = (4, 4);

/// The rootful quadlet directory (root's units).
pub const ROOTFUL_DIR: &str = "/etc/containers/systemd";

/// The directory below which `users/UID/` holds one user's rootless units; files directly in
/// `users/` are every user's.
pub const USERS_DIR: &str = "/etc/containers/systemd/users";

/// The stack user's quadlet directory: `/etc/containers/systemd/users/UID/` (root-owned, so
/// the stack cannot change its own units) when podman is known to be 4.4 or newer, else
/// `HOME/.config/containers/systemd/`.
pub fn stack_dir(podman: Option<(u32, u32)>, uid: u32, home: &Path) -> PathBuf {
    match podman {
        Some(v) if v >= QUADLET_SINCE => Path::new(USERS_DIR).join(uid.to_string()),
        _ => home.join(".config/containers/systemd"),
    }
}

/// The rootless quadlet directories of a user (`init` reads them): her own and her `users/UID`.
pub fn user_dirs(uid: u32, home: &Path) -> Vec<PathBuf> {
    vec![
        home.join(".config/containers/systemd"),
        Path::new(USERS_DIR).join(uid.to_string()),
    ]
}

/// Where apply keeps a stack's legacy quadlet files while the stack runs as its own user.
pub fn parked_dir(stack: &str) -> PathBuf {
    Path::new(crate::layout::STATE_DIR)
        .join("stacks")
        .join(stack)
        .join("quadlets-legacy")
}

/// Why a legacy quadlet file cannot be a stack's source, if it cannot: files directly in
/// `/etc/containers/systemd/users/` run for every user, the stack user too.
pub fn source_problem(path: &Path) -> Option<String> {
    (path.parent() == Some(Path::new(USERS_DIR))).then(|| {
        format!(
            "a file directly in {USERS_DIR} runs for every user, the stack user too; move it to {USERS_DIR}/UID of its owner first"
        )
    })
}
