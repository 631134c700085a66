//! What the traversal and an action agree on: the inode handed over ([`Entry`]), the pin a
//! change goes through ([`Pinned`]), the action's trait ([`InodeAction`]) and tally
//! ([`Tally`]), a failed syscall on one inode ([`Failure`]) and sample paths ([`Samples`]).
use crate::error::Error;
use crate::sys::{Stat, WalkSys};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How many sample paths of one kind a summary keeps.
pub const SAMPLES: usize = 10;

/// One inode as the traversal found it.
pub struct Entry<'a> {
    /// The directory holding it (the inode itself, with an empty name, for the data path).
    pub dir: BorrowedFd<'a>,
    /// Its name in `dir`; empty for the data path itself.
    pub name: &'a CStr,
    /// Relative path of `dir` (empty for the data path and its direct entries).
    pub parent: &'a Path,
    pub stat: Stat,
    /// The inode itself, opened for real ([`InodeAction::OPENS_FILES`]) with `stat` its
    /// fstat: reads through it are of exactly this inode, and cheaper than by name.
    pub opened: Option<BorrowedFd<'a>>,
}

impl Entry<'_> {
    /// Relative to the data path; empty for the data path itself. Built on demand: most
    /// inodes never need their path.
    pub fn rel(&self) -> PathBuf {
        rel_join(self.parent, self.name)
    }
}

/// The inode a change goes to, as `fd` and `name` (what every syscall of the change takes).
/// On the pinned path `fd` is an `O_PATH` descriptor (or, for [`InodeAction::OPENS_FILES`],
/// a regular file opened read-only) whose fstat equalled the planned [`Entry::stat`] and
/// `name` is empty. In a locked tree (nobody but root can reach it, so a
/// name keeps naming the inode it was stat'ed as) `fd` is the entry's directory and `name`
/// its name: no pin.
pub struct Pinned<'a> {
    pub fd: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub entry: &'a Entry<'a>,
}

impl Pinned<'_> {
    /// Whether the change goes by name in a locked tree (the plan's reads are the truth).
    pub fn by_name(&self) -> bool {
        !self.name.is_empty()
    }
}

/// A count with up to [`SAMPLES`] example paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples {
    pub count: u64,
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
    pub samples: Vec<PathBuf>,
}

impl Samples {
    pub fn add(&mut self, path: PathBuf) {
        self.count += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(path);
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.count += other.count;
        let room = SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Counts an action keeps for itself, merged across batches and threads.
pub trait Tally: Default + Send {
    fn merge(&mut self, other: Self);
}

impl Tally for () {
    fn merge(&mut self, _: ()) {}
}

/// A failed syscall on one inode.
#[derive(Debug)]
pub struct Failure {
    pub op: &'static str,
    pub rel: PathBuf,
    pub errno: Errno,
}

impl Failure {
    pub fn new(op: &'static str, entry: &Entry<'_>, errno: Errno) -> Failure {
        Failure {
            op,
            rel: entry.rel(),
            errno,
        }
    }
}

/// Whether an errno means "the entry changed under us" (renamed, removed, swapped for a
/// symlink or a mount): the walk skips such an entry instead of failing. EOPNOTSUPP is what
/// chmod and ACL writes with AT_SYMLINK_NOFOLLOW give once a symlink replaced the entry
/// (attributes the walk writes were read from the same entry, so the filesystem has them).
pub fn is_race(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV | Errno::STALE | Errno::OPNOTSUPP
    )
}

/// The per-inode work the traversal carries, with its own tally. `plan` only reads (by
/// name); `before_apply` sees a whole batch's plans before any is applied (a write-ahead
/// journal); `apply` changes one pinned inode; `after_batch` runs once the batch is applied.
/// A read-only action returns no plans.
pub trait InodeAction: Sync {
    type Plan: Send;
    type Tally: Tally;
    /// A read-only action (it never plans a change) is handed a multi-link inode at the
    /// first link found, so inodes with links outside the tree are looked at too; their
    /// links are counted all the same. A changing action gets one at its last link only.
    const READ_ONLY: bool = false;
    /// Whether the action ever changes an inode. A changing walk pins each entry first and
    /// reads its stat through the pin (what it plans is what it changes); the others stat
    /// by name.
    const CHANGES: bool = !Self::READ_ONLY;
    /// On the pinned path, whether a regular file is opened read-only for real
    /// ([`WalkSys::open_file`]) instead of pinned `O_PATH`: for actions whose changes are
    /// xattr reads and writes (shares' ACLs), which cost a `/proc/self/fd` path walk each
    /// through a pin and a plain syscall through an opened file. Only on a `nodev` mount
    /// ([`WalkSys::devices_open`]): elsewhere a name swapped for a device node would open
    /// the device.
    const OPENS_FILES: bool = false;
    /// Whether `plan` must be seen by `before_apply` (written ahead) before it is applied:
    /// such plans wait for the end of the batch and are pinned and checked again then;
    /// the others are applied through the pin right after they are planned.
    fn written_ahead(&self, _plan: &Self::Plan) -> bool {
        false
    }
    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut Self::Tally,
    ) -> Result<Option<Self::Plan>, Failure>;
    fn before_apply(&self, _plans: &[Self::Plan], _tally: &mut Self::Tally) -> Result<(), Error> {
        Ok(())
    }
    fn apply(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        plan: Self::Plan,
        tally: &mut Self::Tally,
    ) -> Result<(), Failure>;
    fn after_batch(&self, _tally: &mut Self::Tally) -> Result<(), Error> {
        Ok(())
    }
}

pub(super) fn rel_join(rel: &Path, name: &CStr) -> PathBuf {
    if name.is_empty() {
        return rel.to_path_buf();
    }
    rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()))
}

/// Turns a failure into the crate's error with the absolute path in its message.
pub fn failure_error(root_path: &Path, failure: &Failure) -> Error {
    let path = if failure.rel.as_os_str().is_empty() {
        root_path.to_path_buf()
    } else {
        root_path.join(&failure.rel)
    };
    Error::io(
        format!("{} {}", failure.op, path.display()),
        std::io::Error::from_raw_os_error(failure.errno.raw_os_error()),
    )
}
