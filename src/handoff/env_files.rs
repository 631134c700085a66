//! A stack's env files (its secrets) become the stack user's alone: owner the stack user,
//! mode 0400. Every file is reached without following a symbolic link; only a file the legacy
//! user owns, with one name, that is the very inode plan saw is taken (checked on the pinned
//! descriptor that is then changed, so no swap in between can aim the chown at another file);
//! its original owner and mode are recorded in the state file before it changes, so rollback
//! restores them.
use super::error::HandoffError;
use crate::error::{Error, Result};
use crate::host::accounts::Accounts;
use crate::layout::Root;
pub use crate::state::handoff::{EnvFileRecord, FileId, FileOwner};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use serde::Serialize;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The mode an env file gets: read by its owner, the stack user, and no one else.
pub const ENV_FILE_MODE: u32 = 0o400;

/// What an env file is today.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EnvFileFacts {
    Missing,
    /// A symbolic link stands in its path (the file or a directory above it).
    ThroughSymlink,
    /// Not a regular file (a directory, fifo, device, ...).
    NotRegular {
        file_type: String,
    },
    File(EnvFile),
}

/// A regular file as observation found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EnvFile {
    pub owner: FileOwner,
    /// Its number of names (hard links): more than one and another name may be anywhere.
    pub links: u64,
    pub id: FileId,
}

/// What a file must still be when apply or rollback changes it: its owner, one name, and
/// (when plan saw it) the same inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub uid: u32,
    pub id: Option<FileId>,
}

/// True when the file already is the stack's alone: owner the stack user and mode 0400, or
/// 0440 with the stack's own group.
pub fn is_handed(f: &FileOwner, uid: u32, gid: u32) -> bool {
    f.uid == uid && (f.mode == ENV_FILE_MODE || (f.mode == 0o440 && f.gid == gid))
}

/// The users among `candidates` (name, uid) that can read a file with these owners, by its
/// permission bits and their groups (root aside).
pub fn readers<'a>(f: &FileOwner, acc: &Accounts, candidates: &[(&'a str, u32)]) -> Vec<&'a str> {
    candidates
        .iter()
        .filter(|(name, uid)| {
            if f.uid == *uid {
                return f.mode & 0o400 != 0;
            }
            let in_group = acc.user(name).is_some_and(|u| u.gid == f.gid)
                || acc
                    .group_by_gid(f.gid)
                    .is_some_and(|g| g.members.iter().any(|m| m == name));
            if in_group {
                f.mode & 0o040 != 0
            } else {
                f.mode & 0o004 != 0
            }
        })
        .map(|(name, _)| *name)
        .collect()
}

fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// Opens `path` (absolute, as the policy names it) under `root` as an O_PATH descriptor,
/// refusing a symbolic link anywhere on the way (ELOOP).
fn open_pinned(root: &Root, path: &Path) -> rustix::io::Result<OwnedFd> {
    let dir = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    rustix::fs::openat2(
        dir.as_fd(),
        rel,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Reads what an env file is, without following links. Never writes.
pub fn observe(root: &Root, path: &Path) -> Result<EnvFileFacts> {
    let fd = match open_pinned(root, path) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(EnvFileFacts::Missing),
        Err(rustix::io::Errno::LOOP) => return Ok(EnvFileFacts::ThroughSymlink),
        Err(e) => {
            return Err(Error::io(
                format!("open env file {}", root.at(path).display()),
                e.into(),
            ))
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| {
        Error::io(
            format!("stat env file {}", root.at(path).display()),
            e.into(),
        )
    })?;
    let t = FileType::from_raw_mode(st.st_mode);
    if t == FileType::Symlink {
        return Ok(EnvFileFacts::ThroughSymlink);
    }
    if t != FileType::RegularFile {
        return Ok(EnvFileFacts::NotRegular {
            file_type: file_type_name(t).into(),
        });
    }
    Ok(EnvFileFacts::File(EnvFile {
        owner: FileOwner {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
        },
        links: st.st_nlink,
        id: FileId::of(&st),
    }))
}

/// Why the pinned file is not what `expected` says (None: it is), checked on its descriptor.
fn differs(st: &rustix::fs::Stat, expected: &Expected) -> Option<String> {
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Some("it is no longer a regular file".into());
    }
    if st.st_nlink != 1 {
        return Some(format!(
            "it has {} names (hard links) now; isolate changes only a file with one",
            st.st_nlink
        ));
    }
    if st.st_uid != expected.uid {
        return Some(format!(
            "it belongs to uid {} now, not to uid {}",
            st.st_uid, expected.uid
        ));
    }
    match expected.id {
        Some(id) if id != FileId::of(st) => Some(format!(
            "it is another file now (device {} inode {}, plan saw device {} inode {})",
            st.st_dev, st.st_ino, id.dev, id.ino
        )),
        _ => None,
    }
}

/// Gives the pinned regular file `path` the owner and mode `to`, when that pinned inode is
/// what `expected` says (owner, one name, the inode plan saw): refused otherwise, unchanged.
/// Mode first (so nobody else reads it from that moment), then owner, then the full mode
/// (chown may clear bits); all through the pinned descriptor.
pub fn set_owner(root: &Root, path: &Path, expected: &Expected, to: FileOwner) -> Result<()> {
    let shown = root.at(path);
    let fail = |what: &str, e: rustix::io::Errno| {
        Error::io(format!("{what} {}", shown.display()), e.into())
    };
    let fd = open_pinned(root, path).map_err(|e| match e {
        rustix::io::Errno::LOOP => HandoffError::EnvFileThroughLink {
            path: shown.clone(),
        }
        .into(),
        e => fail("open", e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fail("stat", e))?;
    if let Some(why) = differs(&st, expected) {
        return Err(HandoffError::EnvFileChanged { path: shown, why }.into());
    }
    // chmod through the descriptor's /proc link acts on the pinned inode, never on a path.
    let proc_link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let private = Mode::from_raw_mode(to.mode & st.st_mode & 0o7777 & 0o700);
    rustix::fs::chmod(proc_link.as_str(), private).map_err(|e| fail("chmod", e))?;
    rustix::fs::chownat(
        &fd,
        "",
        Some(rustix::fs::Uid::from_raw(to.uid)),
        Some(rustix::fs::Gid::from_raw(to.gid)),
        AtFlags::EMPTY_PATH,
    )
    .map_err(|e| fail("chown", e))?;
    rustix::fs::chmod(proc_link.as_str(), Mode::from_raw_mode(to.mode))
        .map_err(|e| fail("chmod", e))
}

/// The owner and mode rollback gives back: the recorded ones, but never setuid, setgid or
/// sticky (an env file needs none, and the stack could have written the content since).
pub fn restored(was: FileOwner) -> FileOwner {
    FileOwner {
        mode: was.mode & 0o777,
        ..was
    }
}

/// The content of a regular file (an env or compose file) under `root`, reached without
/// following a symbolic link; anything but a regular file is refused before it is opened for
/// reading (the pinned inode is reopened through its /proc link).
pub fn read_pinned(root: &Root, path: &Path) -> std::io::Result<Vec<u8>> {
    read_checked(root, path, None)
}

/// Like [`read_pinned`], for a file root copies for a stack: refused unless one of `owners`
/// owns it (checked on the pinned inode that is read).
pub fn read_owned(root: &Root, path: &Path, owners: &[u32]) -> std::io::Result<Vec<u8>> {
    read_checked(root, path, Some(owners))
}

fn read_checked(root: &Root, path: &Path, owners: Option<&[u32]>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let pinned = open_pinned(root, path)?;
    let st = rustix::fs::fstat(&pinned)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::other(format!(
            "{} (not a regular file)",
            file_type_name(FileType::from_raw_mode(st.st_mode))
        )));
    }
    if st.st_nlink != 1 {
        return Err(std::io::Error::other(format!(
            "it has {} names (hard links); isolate reads only a file with one (another name could be a file its owner cannot read)",
            st.st_nlink
        )));
    }
    if let Some(owners) = owners.filter(|o| !o.contains(&st.st_uid)) {
        return Err(std::io::Error::other(format!(
            "it belongs to uid {}, which is none of {owners:?} (the legacy user, the stack user, root)",
            st.st_uid
        )));
    }
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pinned));
    let fd = rustix::fs::open(
        link.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_end(&mut out)?;
    Ok(out)
}
