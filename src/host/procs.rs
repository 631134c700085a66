//! Which processes hold something inside a data path: a working directory, a root directory,
//! an open descriptor, or a mount namespace with (part of) it mounted, for any user in any
//! namespace, from /proc. A process already inside keeps its access whatever the top's mode
//! becomes (and every process of its uid reaches the files through /proc/PID/cwd and
//! /proc/PID/fd), so migrating or closing a data path refuses while one is there.
//!
//! "Inside" is decided by the inodes themselves, never by a path string another namespace
//! wrote: from the place a process holds (opened through its /proc link), isolate climbs `..`
//! (through the mounts of that process's namespace) comparing device and inode with each data
//! path's top. Where the climb leaves a mount whose root is on a data path's filesystem (a bind
//! mount of a directory inside the data, in any namespace, or one lazily unmounted), it goes on
//! from the same directory reopened by file handle on this namespace's mount of that
//! filesystem. A file's place is its directory, resolved in the process's own root and checked
//! to hold that very inode.
use crate::error::{Error, Result};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How a process holds a place inside a data path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Its working directory (or a thread's) is inside.
    Cwd,
    /// Its root directory (chroot, a container's root) is inside.
    Root,
    /// Open descriptor N leads inside (a directory inside, or a file whose directory is).
    Fd(u32),
    /// Its mount namespace (inode `mntns`) has the data path or a directory inside it mounted.
    Mount { mntns: u64 },
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            How::Cwd => write!(f, "working directory"),
            How::Root => write!(f, "root directory"),
            How::Fd(n) => write!(f, "open file {n}"),
            How::Mount { mntns } => write!(f, "bind mount in mount namespace {mntns}"),
        }
    }
}

/// A process's user ids as /proc/PID/status shows them: real, effective, saved, filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Uids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub fs: u32,
}

impl Uids {
    /// Each id, for "are they all ..." questions.
    pub fn all(&self) -> [u32; 4] {
        [self.real, self.effective, self.saved, self.fs]
    }
}

/// One process holding one place inside one of the paths asked about.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: u32,
    /// The real uid (the user the process runs for).
    pub uid: u32,
    pub uids: Uids,
    /// /proc/PID/comm (the process names it itself: print it escaped).
    pub comm: String,
    pub how: How,
    /// Which of the paths asked about it is inside (as asked).
    pub path: PathBuf,
}

/// The port: who holds something inside `paths` (real absolute paths on this host; a path
/// that does not exist is held by no one). Never the calling process itself.
pub trait ProcPort {
    fn holders_inside(&self, paths: &[PathBuf]) -> Result<Vec<Holder>>;
}

/// The real /proc of this host.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealProcs;

impl ProcPort for RealProcs {
    fn holders_inside(&self, paths: &[PathBuf]) -> Result<Vec<Holder>> {
        holders_inside(paths)
    }
}

/// Every process (other than this one) holding something inside one of `paths`, sorted by
/// path, pid and how; one entry per (process, place): a process with its working directory
/// and three descriptors inside is four entries.
pub fn holders_inside(paths: &[PathBuf]) -> Result<Vec<Holder>> {
    let mut tops = Tops::default();
    for (i, p) in paths.iter().enumerate() {
        tops.add(i, p)?;
    }
    if tops.index.is_empty() {
        return Ok(Vec::new());
    }
    let mut finder = Finder {
        tops: &tops,
        memo: HashMap::new(),
        hopped: HashSet::new(),
    };
    let own = std::process::id();
    let mut out = Vec::new();
    for pid in pids()? {
        if pid == own {
            continue;
        }
        // Processes come and go while we look: whatever vanished holds nothing.
        let places = finder.places_of(pid);
        if places.is_empty() {
            continue;
        }
        let Some((uids, comm)) = identity(pid) else {
            continue;
        };
        for (how, i) in places {
            out.push(Holder {
                pid,
                uid: uids.real,
                uids,
                comm: comm.clone(),
                how,
                path: paths[i].clone(),
            });
        }
    }
    for (i, p) in paths.iter().enumerate() {
        if !tops.index.values().any(|v| *v == i) {
            continue;
        }
        let mounted = crate::host::mounts::mount_holders(p)?;
        for m in mounted.into_iter().filter(|m| m.pid != own) {
            let uids = identity(m.pid).map(|(u, _)| u).unwrap_or(Uids {
                real: m.uid,
                effective: m.uid,
                saved: m.uid,
                fs: m.uid,
            });
            out.push(Holder {
                pid: m.pid,
                uid: m.uid,
                uids,
                comm: m.comm,
                how: How::Mount { mntns: m.mntns },
                path: p.clone(),
            });
        }
    }
    let order = |h: &Holder| {
        paths
            .iter()
            .position(|p| *p == h.path)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|h| (order(h), h.pid, h.how));
    out.dedup();
    Ok(out)
}

/// The tops of the paths asked about: (device, inode) -> index, and per device a descriptor
/// of this namespace's mount to reopen file handles on.
#[derive(Default)]
struct Tops {
    index: HashMap<(u64, u64), usize>,
    /// device -> (a top on it opened for reading, its mount id)
    mounts: HashMap<u64, (OwnedFd, u64)>,
}

impl Tops {
    fn add(&mut self, i: usize, path: &Path) -> Result<()> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::io(
                    format!("opening {} to look for processes inside", path.display()),
                    e.into(),
                ))
            }
        };
        let n = node(fd.as_fd()).map_err(|e| {
            Error::io(
                format!("stat of {} to look for processes inside", path.display()),
                e.into(),
            )
        })?;
        self.index.entry((n.dev, n.ino)).or_insert(i);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.mounts.entry(n.dev) {
            // open_by_handle_at takes no O_PATH descriptor: the top opened for reading (a
            // directory: nothing happens), through the very inode just checked.
            let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(readable) = rustix::fs::openat(&fd, ".", dir, Mode::empty()) {
                slot.insert((readable, n.mnt));
            }
        }
        Ok(())
    }
}

/// What a climb compares: an inode, its device and the mount it was reached through.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Node {
    mnt: u64,
    dev: u64,
    ino: u64,
    dir: bool,
}

fn node(fd: BorrowedFd<'_>) -> rustix::io::Result<Node> {
    // Cached attributes are enough (type, inode, device, mount) and never wait on a stuck
    // network or FUSE server.
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID,
    )?;
    Ok(Node {
        mnt: st.stx_mnt_id,
        dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        ino: st.stx_ino,
        dir: u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR,
    })
}

/// How many `..` steps a climb takes at most (a path deeper than this is not a real tree).
const CLIMB_LIMIT: usize = 4096;

struct Finder<'a> {
    tops: &'a Tops,
    /// (mount, device, inode) -> which top is above it, for every directory already climbed.
    memo: HashMap<(u64, u64, u64), Option<usize>>,
    /// Mount roots already reopened by handle (once each: the climb from there is memoised).
    hopped: HashSet<(u64, u64)>,
}

impl Finder<'_> {
    /// The places inside a top that `pid` holds: each thread's working directory and root,
    /// and every open descriptor. Empty when the process is gone or cannot be read.
    fn places_of(&mut self, pid: u32) -> Vec<(How, usize)> {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let mut out = Vec::new();
        let tasks: Vec<PathBuf> = match std::fs::read_dir(base.join("task")) {
            Ok(rd) => rd.filter_map(|e| Some(e.ok()?.path())).collect(),
            Err(_) => vec![base.clone()],
        };
        for (link, how) in [("cwd", How::Cwd), ("root", How::Root)] {
            let found = tasks
                .iter()
                .find_map(|t| self.dir_link(&t.join(link)).flatten());
            if let Some(i) = found {
                out.push((how, i));
            }
        }
        let Ok(fds) = std::fs::read_dir(base.join("fd")) else {
            return out;
        };
        for e in fds.flatten() {
            let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(i) = self.fd_link(&base, n) {
                out.push((How::Fd(n), i));
            }
        }
        out
    }

    /// The top above the directory a /proc link (cwd, root) leads to. None: gone or unreadable.
    fn dir_link(&mut self, link: &Path) -> Option<Option<usize>> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(link, flags, Mode::empty()).ok()?;
        Some(self.climb(fd))
    }

    /// The top above what descriptor `n` of the process at `base` leads to.
    fn fd_link(&mut self, base: &Path, n: u32) -> Option<usize> {
        let link = base.join("fd").join(n.to_string());
        // O_PATH: nothing is opened for real (no device, no FIFO, no side effect).
        let fd = rustix::fs::open(&link, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let target = node(fd.as_fd()).ok()?;
        if target.dir {
            return self.climb(fd);
        }
        // A file is inside only on a top's filesystem (one in a mount below a top is not the
        // data, and a file gives no way up).
        if !self.tops.index.keys().any(|(dev, _)| *dev == target.dev) {
            return None;
        }
        let dir = file_dir(base, &link, target)?;
        self.climb(dir)
    }

    /// Climbs `..` from directory `fd` and returns the index of the first top met.
    fn climb(&mut self, fd: OwnedFd) -> Option<usize> {
        let mut chain = Vec::new();
        let mut cur = fd;
        let found = 'climb: loop {
            if chain.len() > CLIMB_LIMIT {
                break None;
            }
            let Ok(here) = node(cur.as_fd()) else {
                break None;
            };
            let key = (here.mnt, here.dev, here.ino);
            if let Some(known) = self.memo.get(&key) {
                break *known;
            }
            chain.push(key);
            if let Some(i) = self.tops.index.get(&(here.dev, here.ino)) {
                break Some(*i);
            }
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let Ok(parent) = rustix::fs::openat(&cur, "..", flags, Mode::empty()) else {
                break None;
            };
            let Ok(up) = node(parent.as_fd()) else {
                break None;
            };
            let stuck = (up.mnt, up.dev, up.ino) == key;
            if stuck || up.mnt != here.mnt {
                // `here` is the root of its mount: on a top's filesystem, the directories
                // above it there may be the data (a bind mount of a directory inside).
                if let Some(reopened) = self.hop(&cur, here) {
                    if let Some(i) = self.climb(reopened) {
                        break 'climb Some(i);
                    }
                }
            }
            if stuck {
                break None;
            }
            cur = parent;
        };
        for key in chain {
            self.memo.insert(key, found);
        }
        found
    }

    /// `fd` (the root of a mount, `here`) reopened by file handle through this namespace's
    /// mount of the same filesystem, where its parents are the filesystem's own.
    fn hop(&mut self, fd: &OwnedFd, here: Node) -> Option<OwnedFd> {
        let (mount_fd, mount_id) = self.tops.mounts.get(&here.dev)?;
        if *mount_id == here.mnt || !self.hopped.insert((here.dev, here.ino)) {
            return None;
        }
        reopen_by_handle(fd.as_fd(), mount_fd.as_fd())
    }
}

/// The directory holding the file descriptor `link` leads to, resolved beneath the process's
/// own root without following links, and only if it holds that very inode under that name.
fn file_dir(base: &Path, link: &Path, target: Node) -> Option<OwnedFd> {
    let shown = std::fs::read_link(link).ok()?;
    let shown = shown.as_os_str().as_encoded_bytes();
    // Unlinked: no longer in any tree. Not a path: a socket, a pipe, an anonymous inode.
    if shown.ends_with(b" (deleted)") || !shown.starts_with(b"/") {
        return None;
    }
    let shown = Path::new(std::ffi::OsStr::from_bytes(shown));
    let (parent, name) = (shown.parent()?, shown.file_name()?);
    let root_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = rustix::fs::open(base.join("root"), root_flags, Mode::empty()).ok()?;
    let rel = parent.strip_prefix("/").ok()?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let dir = rustix::fs::openat2(
        &root,
        rel,
        root_flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let there = rustix::fs::statx(
        &dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE | StatxFlags::INO,
    )
    .ok()?;
    let dev = (u64::from(there.stx_dev_major) << 32) | u64::from(there.stx_dev_minor);
    ((dev, there.stx_ino) == (target.dev, target.ino)).then_some(dir)
}

/// `fd` reopened (O_PATH) through `mount_fd`'s mount by its file handle.
fn reopen_by_handle(fd: BorrowedFd<'_>, mount_fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    const MAX_HANDLE: usize = 128;
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, 4-aligned.
    let mut buf = vec![0u32; 2 + MAX_HANDLE / 4];
    buf[0] = MAX_HANDLE as u32;
    let handle = buf.as_mut_ptr().cast::<libc::file_handle>();
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `handle` points at a buffer of 8 + MAX_HANDLE bytes whose handle_bytes says
    // MAX_HANDLE; the path is an empty C string used with AT_EMPTY_PATH on a valid descriptor.
    let named = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            handle,
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if named != 0 {
        return None;
    }
    // SAFETY: `handle` was filled by name_to_handle_at above; mount_fd is a valid descriptor.
    let raw = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            handle,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: open_by_handle_at returned a new descriptor that nothing else owns.
    Some(unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(raw) })
}

/// Every process id in /proc now (thread-group leaders).
fn pids() -> Result<Vec<u32>> {
    let rd = std::fs::read_dir("/proc").map_err(|e| Error::io("listing /proc", e))?;
    let mut pids: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// A process's user ids and command name; None when it is gone.
fn identity(pid: u32) -> Option<(Uids, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .filter_map(|u| u.parse().ok())
        .collect();
    let [real, effective, saved, fs] = ids[..] else {
        return None;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some((
        Uids {
            real,
            effective,
            saved,
            fs,
        },
        comm.trim_end_matches('\n').to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(cwd: &Path) -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("60")
            .current_dir(cwd)
            .spawn()
            .unwrap()
    }

    fn settle(pid: u32, dir: &Path) {
        let want = std::fs::canonicalize(dir).unwrap();
        for _ in 0..500 {
            if std::fs::read_link(format!("/proc/{pid}/cwd"))
                .ok()
                .as_deref()
                == Some(&want)
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end() == "sleep")
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{pid} never settled");
    }

    #[test]
    fn a_child_in_the_tree_is_found_and_one_beside_it_is_not() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let beside = t.path().join("data-beside");
        std::fs::create_dir_all(data.join("a/b")).unwrap();
        std::fs::create_dir_all(&beside).unwrap();
        let mut inside = sleeper(&data.join("a/b"));
        let mut outside = sleeper(&beside);
        settle(inside.id(), &data.join("a/b"));
        settle(outside.id(), &beside);
        let found = holders_inside(std::slice::from_ref(&data)).unwrap();
        let pids: Vec<(u32, How)> = found.iter().map(|h| (h.pid, h.how)).collect();
        assert!(pids.contains(&(inside.id(), How::Cwd)), "{found:?}");
        assert!(!pids.iter().any(|(p, _)| *p == outside.id()), "{found:?}");
        assert!(found.iter().all(|h| h.path == data && h.comm == "sleep"));
        for c in [&mut inside, &mut outside] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        // A missing path is held by no one; this process never counts.
        assert!(holders_inside(&[t.path().join("nothing")])
            .unwrap()
            .is_empty());
    }
}
