//! Every syscall the walk makes, behind one trait, so tests can record the mutating calls,
//! inject failures mid-walk and fake a filesystem type without mounting one: the trait and what
//! it returns here, the real kernel in `real`, the recording fake in `recording`.
mod real;
mod recording;

pub use real::RealSys;
pub use recording::{Call, Op, RecordingSys};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::ffi::CStr;
use std::path::Path;

/// What the walk needs to know about one inode (from statx, never following a symlink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub mnt_id: u64,
    pub ino: u64,
    /// Full st_mode: file type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    /// Last status change: any write, chmod, chown, xattr or link change moves it, and
    /// userspace cannot set it back.
    pub ctime: (i64, u32),
    /// Last content change: only a write (which sets it to now) or the owner (or root)
    /// moves it.
    pub mtime: (i64, u32),
    /// Creation time where the filesystem records it: with the inode number, it tells a
    /// file from a later one that got the same (reused) inode number.
    pub btime: Option<(i64, u32)>,
    /// statx attributes (immutable, append-only, mount root).
    pub attributes: u64,
}

impl Stat {
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }
    /// Permission bits including setuid/setgid/sticky.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
    /// chattr +i or +a: chown and chmod fail with EPERM even for root.
    pub fn immutable(&self) -> bool {
        self.attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND) != 0
    }
    /// The same inode, unchanged in every way the walk acts on: identity, type, owner,
    /// mode, link count and status-change time.
    pub fn unchanged(&self, other: &Stat) -> bool {
        (
            self.dev, self.ino, self.mode, self.uid, self.gid, self.nlink, self.ctime,
        ) == (
            other.dev,
            other.ino,
            other.mode,
            other.uid,
            other.gid,
            other.nlink,
            other.ctime,
        )
    }
}

const STATX_ATTR_IMMUTABLE: u64 = 0x10;
const STATX_ATTR_APPEND: u64 = 0x20;

/// The syscalls of the walk. `name` is relative to `dir`; an empty name means `dir` itself
/// (AT_EMPTY_PATH). No method ever follows a symlink in `name`.
pub trait WalkSys: Send + Sync {
    /// Opens the data path itself (an administrator's path, so symlinks in it are followed).
    fn open_root(&self, path: &Path) -> Result<OwnedFd, Errno>;
    /// Opens one directory component of an administrator's path: never a symlink (ELOOP),
    /// but it may be a mount point (the data path may sit on its own filesystem).
    fn open_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno>;
    /// Opens a subdirectory of `dir` without following symlinks or crossing mounts
    /// (a mount point gives EXDEV, a symlink ELOOP).
    fn open_subdir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno>;
    /// statfs f_type of the filesystem `fd` is on.
    fn fs_type(&self, fd: BorrowedFd<'_>) -> Result<i64, Errno>;
    /// Calls `each` for every entry but "." and ".." with its d_type.
    fn read_dir(
        &self,
        dir: BorrowedFd<'_>,
        each: &mut dyn FnMut(&CStr, FileType),
    ) -> Result<(), Errno>;
    fn stat(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno>;
    /// Pins one entry: an `O_PATH|O_NOFOLLOW` descriptor of exactly the inode `name` names
    /// now (a symlink itself, never its target). A mount on `name` is crossed: callers
    /// refuse a pin whose mount id is not the data path's. The walk plans from the pin's
    /// stat and changes the inode only through it (the methods below with an empty name).
    /// An empty name pins `dir` itself.
    fn pin(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno>;
    /// Whether a device node on the mount of `fd` can be opened as a device (the mount is
    /// not `nodev`).
    fn devices_open(&self, fd: BorrowedFd<'_>) -> Result<bool, Errno>;
    /// Opens one entry its directory listing calls a regular file, read-only, non-blocking,
    /// with no controlling terminal and never through a symlink (ELOOP), for a change made
    /// through the file's own descriptor: the xattr calls on it are the kernel's direct
    /// ones, where each on an `O_PATH` pin walks a `/proc/self/fd` path. Like a pin it is
    /// exactly the inode the name names now, and the caller plans from its fstat. A name
    /// swapped meanwhile for a FIFO opens without blocking and a socket is refused (ENXIO).
    /// A device node swapped in would be opened (a tape rewinds when closed), so the walk
    /// opens files only on a `nodev` mount ([`WalkSys::devices_open`]), where the kernel
    /// refuses to open any device (EACCES); elsewhere it pins. The default pins.
    fn open_file(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.pin(dir, name)
    }
    /// Creates directory `name` in `dir` (mode before umask is `perm`).
    fn mkdir(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno>;
    /// Names of all extended attributes, NUL-separated as the kernel returns them.
    fn list_xattrs(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno>;
    /// One attribute's value, or None when the inode has none.
    fn get_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
    ) -> Result<Option<Vec<u8>>, Errno>;
    fn set_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
        value: &[u8],
    ) -> Result<(), Errno>;
    fn chown(&self, dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> Result<(), Errno>;
    /// Sets permission bits of a non-symlink (used to put back setuid/setgid after chown).
    fn chmod(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno>;
}
