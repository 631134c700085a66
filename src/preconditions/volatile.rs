//! Env files on a filesystem the system rewrites: a tmpfs (`/run`, `/run/user/...`: empty at
//! every boot, its files made again by whatever writes them, with that writer's owner) or a
//! path a NixOS secrets module writes at every activation and boot (sops-nix: /run/secrets*,
//! agenix: /run/agenix*). Handing such a file to the stack user would not last, so plan
//! refuses it with the declarative fix (`plan::volatile`). Observation: the path's prefix and
//! the filesystem type (statfs) of the file, or of its nearest existing directory, reached
//! without following a link. Never writes.
use crate::layout::Root;
use serde::Serialize;
use std::path::{Path, PathBuf};

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Who rewrites the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "rewriter", rename_all = "snake_case")]
pub enum Rewriter {
    /// sops-nix, as secret `name` (its path relative to /run/secrets).
    SopsNix { name: String },
    /// agenix, as secret `name`.
    Agenix { name: String },
    /// A tmpfs (or ramfs): emptied at every boot.
    Tmpfs,
}

/// The secret name below a secrets module's directory: `/run/secrets/NAME`, or its generation
/// directory `/run/secrets.d/N/NAME`.
fn secret_name(path: &Path, dir: &str) -> Option<String> {
    let generations = format!("{dir}.d");
    if let Ok(rest) = path.strip_prefix(dir) {
        return Some(rest.display().to_string()).filter(|n| !n.is_empty());
    }
    let rest = path.strip_prefix(&generations).ok()?;
    let mut c = rest.components();
    c.next()?;
    Some(c.as_path().display().to_string()).filter(|n| !n.is_empty())
}

/// Who rewrites `path` by its name alone (a secrets module's directory).
pub fn by_name(path: &Path) -> Option<Rewriter> {
    if let Some(name) = secret_name(path, "/run/secrets") {
        return Some(Rewriter::SopsNix { name });
    }
    if let Some(name) = secret_name(path, "/run/agenix") {
        return Some(Rewriter::Agenix { name });
    }
    None
}

/// Who rewrites `path` (absolute, below `root`): its name first, then its filesystem.
pub fn observe(root: &Root, path: &Path) -> Option<Rewriter> {
    if let Some(r) = by_name(path) {
        return Some(r);
    }
    let mut at: PathBuf = path.to_path_buf();
    loop {
        if let Some(kind) = fs_type(root, &at) {
            return (kind == TMPFS_MAGIC || kind == RAMFS_MAGIC).then_some(Rewriter::Tmpfs);
        }
        if !at.pop() {
            return None;
        }
    }
}

/// The filesystem type of `path`, reached without a link (None: missing or through a link).
fn fs_type(root: &Root, path: &Path) -> Option<i64> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let dir = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let fd = if rel.as_os_str().is_empty() {
        dir
    } else {
        rustix::fs::openat2(
            &dir,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?
    };
    let st = rustix::fs::fstatfs(&fd).ok()?;
    #[allow(clippy::unnecessary_cast)]
    Some(st.f_type as i64)
}
