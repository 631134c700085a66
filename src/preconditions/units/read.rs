//! Reading unit files and the scripts they run from below `--root`, never leaving it: a system
//! directory's links (NixOS's /etc/systemd/system is links into /nix/store) are resolved with
//! the root as `/` (`RESOLVE_IN_ROOT`: an absolute or `..` link cannot climb out of it); in a
//! directory a user owns (a legacy user's ~/.config/systemd/user) no link is followed at all.
//! Only regular files of a bounded size are read. Never writes.
use crate::layout::Root;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The most of a unit file or script that is read.
const MAX_BYTES: u64 = 1 << 20;

/// How links are met on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Root's own directories: links resolve inside the root.
    InRoot,
    /// A directory someone else can write: no link is followed.
    Refused,
}

fn open(root: &Root, path: &Path, links: Links, flags: OFlags) -> Option<OwnedFd> {
    let dir = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let resolve = match links {
        Links::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        Links::Refused => {
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
        }
    };
    rustix::fs::openat2(
        dir.as_fd(),
        rel,
        flags | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        resolve,
    )
    .ok()
}

/// The names in directory `path` (sorted), or none when it is missing or not a directory.
pub fn list(root: &Root, path: &Path, links: Links) -> Vec<String> {
    let Some(fd) = open(root, path, links, OFlags::RDONLY | OFlags::DIRECTORY) else {
        return Vec::new();
    };
    let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

/// The text of regular file `path`, when it is one, is UTF-8 and not too big.
pub fn text(root: &Root, path: &Path, links: Links) -> Option<String> {
    read(root, path, links, false)
}

/// The text of `path` when it is a script (starts with `#!`); a binary is left after its
/// first two bytes.
pub fn script(root: &Root, path: &Path, links: Links) -> Option<String> {
    read(root, path, links, true)
}

fn read(root: &Root, path: &Path, links: Links, script: bool) -> Option<String> {
    let fd = open(root, path, links, OFlags::RDONLY)?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    if script {
        (&mut file).take(2).read_to_end(&mut bytes).ok()?;
        if bytes != b"#!" {
            return None;
        }
    }
    file.take(MAX_BYTES).read_to_end(&mut bytes).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `path` is a directory (links as `links` says).
pub fn is_dir(root: &Root, path: &Path, links: Links) -> bool {
    open(root, path, links, OFlags::PATH | OFlags::DIRECTORY).is_some()
}
