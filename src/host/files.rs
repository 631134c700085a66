//! Writing isolate's own files (state, exports, reports, units, copies) so that a reader or a
//! crash sees the old content or the new, never a mix, and never through a symbolic link.
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes a file so that readers see the old or the new content, never a mix: a temporary
/// file in the same directory, fsync, rename over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().ok_or_else(|| {
        Error::host(NoParent {
            path: path.to_path_buf(),
        })
    })?;
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("isolate"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("writing {}", path.display()), e)
    })
}

/// Opens each directory of `dir` below `root` without following a symbolic link (openat2
/// beneath the parent, no links, no magic links), creating what is missing with
/// `mode_for(path)`; `settle(fd, path, shown, created)` then owns or checks each one (`path`
/// absolute as seen from `root`, `shown` as on this host). Returns the last directory.
pub fn open_dir_chain(
    root: &crate::layout::Root,
    dir: &Path,
    mode_for: impl Fn(&Path) -> u32,
    mut settle: impl FnMut(&std::os::fd::OwnedFd, &Path, &Path, bool) -> Result<()>,
) -> Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use std::os::fd::AsFd;
    let mut fd = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno("open", root.path(), e))?;
    let mut rel = std::path::PathBuf::from("/");
    for part in dir.components().filter_map(|c| match c {
        std::path::Component::Normal(p) => Some(p),
        _ => None,
    }) {
        rel.push(part);
        let shown = root.at(&rel);
        let created =
            match rustix::fs::mkdirat(fd.as_fd(), part, Mode::from_raw_mode(mode_for(&rel))) {
                Ok(()) => true,
                Err(rustix::io::Errno::EXIST) => false,
                Err(e) => return Err(errno("mkdir", &shown, e)),
            };
        let next = rustix::fs::openat2(
            fd.as_fd(),
            part,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| errno("open (no symbolic links followed)", &shown, e))?;
        settle(&next, &rel, &shown, created)?;
        fd = next;
    }
    Ok(fd)
}

/// Replaces `name` in the directory `dirfd` atomically with `bytes`, as `uid:gid` with `mode`:
/// a new file beside it (created 0600, never through a link), chowned, chmodded, written and
/// synced, then renamed over. `shown` names the file in errors.
pub fn replace_beneath(
    dirfd: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
    shown: &Path,
    bytes: &[u8],
    (uid, gid): (u32, u32),
    mode: u32,
) -> Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags};
    use std::os::fd::AsFd;
    let mut tmp = name.to_os_string();
    tmp.push(".isolate-new");
    let _ = rustix::fs::unlinkat(dirfd.as_fd(), tmp.as_os_str(), AtFlags::empty());
    let fd = rustix::fs::openat(
        dirfd.as_fd(),
        tmp.as_os_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| errno("create", shown, e))?;
    rustix::fs::fchown(
        &fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| errno("chown", shown, e))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| errno("chmod", shown, e))?;
    let mut file = fs::File::from(fd);
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(format!("write {}", shown.display()), e))?;
    rustix::fs::renameat(dirfd.as_fd(), tmp.as_os_str(), dirfd.as_fd(), name)
        .map_err(|e| errno("rename into", shown, e))
}

fn errno(what: &str, p: &Path, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {}", p.display()), e.into())
}

/// A file to write whose path has no directory to write it in.
#[derive(Debug, thiserror::Error)]
#[error("{} has no parent", path.display())]
pub struct NoParent {
    pub path: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
