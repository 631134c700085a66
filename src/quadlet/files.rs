//! The quadlet files isolate reads and writes as root, never through a symbolic link: each is
//! opened beneath the root with no link followed anywhere in its path (openat2), so a legacy
//! user who swaps her quadlet directory for a link to /etc gets an error, not root's write.
use crate::error::{Error, Result};
use crate::layout::Root;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A regular file's text and who owned it with which mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub text: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Why a quadlet file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{what} {} (no symbolic link followed): {source}", path.display())]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a regular file", path.display())]
    NotRegular { path: std::path::PathBuf },
}

impl From<FileError> for Error {
    fn from(e: FileError) -> Self {
        Error::host(e)
    }
}

fn io(what: &'static str, path: &Path, e: impl Into<std::io::Error>) -> Error {
    FileError::Io {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
    .into()
}

fn root_fd(root: &Root) -> Result<OwnedFd> {
    rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", root.path(), e))
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Opens `path` (absolute, as seen from `root`) beneath the root, no link followed.
fn open_beneath(root: &Root, path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let dir = root_fd(root).map_err(|_| rustix::io::Errno::BADF)?;
    rustix::fs::openat2(
        dir.as_fd(),
        relative(path),
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// The file at `path`, None when it (or a directory on its way) does not exist.
pub fn read(root: &Root, path: &Path) -> Result<Option<Found>> {
    let shown = root.at(path);
    let fd = match open_beneath(root, path, OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io("open", &shown, e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io("stat", &shown, e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(FileError::NotRegular { path: shown }.into());
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| io("read", &shown, e))?;
    Ok(Some(Found {
        text,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
    }))
}

/// The directory `dir` opened beneath the root, no link followed (None: it does not exist).
pub fn open_dir(root: &Root, dir: &Path) -> Result<Option<OwnedFd>> {
    match open_beneath(root, dir, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(io("open", &root.at(dir), e)),
    }
}

/// Removes `path` (a file isolate moved or wrote); gone already is fine.
pub fn remove(root: &Root, path: &Path) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let Some(fd) = open_dir(root, dir)? else {
        return Ok(());
    };
    match rustix::fs::unlinkat(fd.as_fd(), name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(io("remove", &root.at(path), e)),
    }
}

/// Writes `text` to `path` as `uid:gid` with `mode`, atomically; the directories on its way
/// must exist already or are created root-owned 0755 (`create`), none followed as a link.
pub fn write(
    root: &Root,
    path: &Path,
    text: &str,
    owner: (u32, u32),
    mode: u32,
    create: bool,
) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io("write", path, std::io::ErrorKind::InvalidInput));
    };
    let fd = if create {
        crate::host::files::open_dir_chain(root, dir, |_| 0o755, |_, _, _, _| Ok(()))?
    } else {
        open_dir(root, dir)?.ok_or_else(|| io("open", &root.at(dir), rustix::io::Errno::NOENT))?
    };
    crate::host::files::replace_beneath(&fd, name, &root.at(path), text.as_bytes(), owner, mode)
}
