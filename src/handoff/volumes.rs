//! Moving a named volume's data directory from the legacy user's store to the stack user's:
//! a rename on the same filesystem, else a copy (to a side directory, renamed into place once
//! complete) and then removal of the original. Every state a kill -9 can leave is one a re-run
//! finishes from; the state file says which direction the move was going.
//!
//! Both stores belong to their users, who can put a link, a mount or another directory anywhere
//! in them, and whose API sockets answer whatever they like. So isolate computes where a store
//! keeps a volume itself (podman's rootless default below the user's home, see [`data_path`]),
//! reaches it through descriptors pinned beneath that home without following a link or crossing
//! a mount, checks the owner and the identity (device, inode) of the directory it is about to
//! move, and refuses anything else.
use super::error::HandoffError;
use crate::error::{Error, Result};
use crate::ids::IdMaps;
use crate::layout::Root;
use crate::migration::MigrateMode;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where podman keeps a rootless user's volumes (podman's layout, kept with the adapter). The
/// user's own config files and socket answers are hers to write: isolate takes a volume only
/// from here, and refuses a volume a store reports anywhere else.
pub use crate::host::podman::{volume_data_path as data_path, STORE_BELOW_HOME};

/// A volume name as podman accepts it (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`): one path component,
/// never `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(c) if c.is_ascii_alphanumeric())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The home `data` is volume `name`'s data directory below, as [`data_path`] computes it
/// (None: `data` is not such a path, e.g. a record written by an older isolate).
pub fn home_of(data: &Path, name: &str) -> Option<PathBuf> {
    let home = data
        .ancestors()
        .nth(Path::new(STORE_BELOW_HOME).components().count() + 2)?;
    (valid_name(name) && data_path(home, name) == data).then(|| home.to_path_buf())
}

/// A directory's identity: what plan saw is what apply moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirId {
    pub dev: u64,
    pub ino: u64,
}

impl DirId {
    fn of(st: &rustix::fs::Stat) -> DirId {
        DirId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// What stands at a volume's data directory in the legacy store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum VolumeData {
    /// No volume directory, or no `_data` in it: nothing to move.
    Missing,
    /// A real directory, not a mount point, owned by the store's user or her subordinate ids.
    Dir(DirId),
    /// Something isolate never moves, and why.
    Refused(String),
}

/// Where a volume's hand-off stands (in the state file, written before each phase starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumePhase {
    /// The data is on its way from the legacy store to the staging directory.
    Moving,
    /// In staging; its owners are being shifted (the walk's journal records it).
    Shifting,
    /// Shifted; on its way into the stack's store.
    Placing,
    Done,
    /// Rollback: on its way from the stack's store back to staging.
    Unplacing,
    /// Rollback: owners going back.
    Unshifting,
    /// Rollback: the data on its way back to the legacy store.
    MovingBack,
}

/// One named volume handed to a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    /// The legacy store's data directory (`.../volumes/NAME/_data`).
    pub from: PathBuf,
    /// The stack store's data directory.
    pub to: PathBuf,
    /// Where the owners are shifted, below isolate's root-owned state directory.
    pub staging: PathBuf,
    pub phase: VolumePhase,
    pub mode: MigrateMode,
    pub from_maps: IdMaps,
    pub to_maps: IdMaps,
    /// The walk's journal (relative to the root).
    pub journal: PathBuf,
    /// The legacy data directory as the plan saw it (None in records of an older isolate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<DirId>,
}

/// How the data went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moved {
    Renamed,
    Copied,
    /// A previous, interrupted run had already moved it.
    AlreadyThere,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

/// An error of a no-link, no-mount open: a link or a mount on the way is a refusal.
fn pinned_error(what: &str, shown: &Path, e: Errno) -> Error {
    match e {
        Errno::LOOP => Error::Refused(format!(
            "{} is reached through a symbolic link; isolate never follows one in a podman store",
            shown.display()
        )),
        Errno::XDEV => Error::Refused(format!(
            "{} is (or is below) a mount point inside its store; isolate never moves a volume across one",
            shown.display()
        )),
        Errno::NOTDIR => Error::Refused(format!(
            "{} (or a directory above it) is not a directory",
            shown.display()
        )),
        e => io(what, shown, e.into()),
    }
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn open_root(root: &Root) -> Result<OwnedFd> {
    rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", root.path(), e.into()))
}

/// Opens directory `path` (absolute, as on the host) below the root with no symbolic link
/// anywhere on the way (a mount may be crossed: homes and /var/lib often are mounts).
fn open_below_root(root: &Root, path: &Path) -> Result<Option<OwnedFd>> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    match rustix::fs::openat2(
        open_root(root)?.as_fd(),
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        BENEATH,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(pinned_error("open", &root.at(path), e)),
    }
}

fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a directory",
    }
}

/// Where a volume's data is or goes: a name in a directory pinned by a descriptor, so
/// nothing anyone renames or links above it changes which directory isolate acts in.
#[derive(Debug)]
pub struct Place {
    dir: OwnedFd,
    name: OsString,
    /// The path, for messages only (below the root).
    shown: PathBuf,
}

/// The suffix of the side directory a cross-filesystem copy is built in.
const PARTIAL: &str = ".isolate-partial";

impl Place {
    /// Volume `name`'s `_data` in the store below `home`, its volume directory reached
    /// beneath the home without following a link or crossing a mount. None when the store or
    /// the volume directory does not exist.
    pub fn in_store(root: &Root, home: &Path, name: &str) -> Result<Option<Place>> {
        if !valid_name(name) {
            return Err(Error::Refused(format!(
                "{name:?} is not a volume name podman makes; isolate never builds a path from it"
            )));
        }
        let shown = root.at(&data_path(home, name));
        let Some(home_fd) = open_below_root(root, home)? else {
            return Ok(None);
        };
        let store_shown = root.at(&home.join(STORE_BELOW_HOME));
        let store = match rustix::fs::openat2(
            home_fd.as_fd(),
            STORE_BELOW_HOME,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH | ResolveFlags::NO_XDEV,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(pinned_error("open", &store_shown, e)),
        };
        let volume = Place {
            dir: store,
            name: name.into(),
            shown: store_shown.join(name),
        };
        let Some((dir, _)) = volume.pin()? else {
            return Ok(None);
        };
        Ok(Some(Place {
            dir,
            name: "_data".into(),
            shown,
        }))
    }

    /// Like [`Place::in_store`], creating the volume directory (owned by `owner`, mode 0700,
    /// as podman makes it) when the store has none: a rollback gives data back to a volume
    /// removed in between.
    pub fn in_store_creating(
        root: &Root,
        home: &Path,
        name: &str,
        owner: (u32, u32),
    ) -> Result<Place> {
        if let Some(p) = Place::in_store(root, home, name)? {
            return Ok(p);
        }
        let store = home.join(STORE_BELOW_HOME);
        let shown = root.at(&store);
        let home_fd = open_below_root(root, home)?.ok_or_else(|| HandoffError::Missing {
            path: root.at(home),
        })?;
        let store_fd = rustix::fs::openat2(
            home_fd.as_fd(),
            STORE_BELOW_HOME,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH | ResolveFlags::NO_XDEV,
        )
        .map_err(|e| pinned_error("open", &shown, e))?;
        let created = match rustix::fs::mkdirat(&store_fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(io("create", &shown.join(name), e.into())),
        };
        let dir = rustix::fs::openat2(
            store_fd.as_fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH | ResolveFlags::NO_XDEV,
        )
        .map_err(|e| pinned_error("open", &shown.join(name), e))?;
        // Only the directory made here is given to the store's user.
        if created {
            rustix::fs::fchown(
                &dir,
                Some(rustix::fs::Uid::from_raw(owner.0)),
                Some(rustix::fs::Gid::from_raw(owner.1)),
            )
            .map_err(|e| io("chown", &shown.join(name), e.into()))?;
        }
        Ok(Place {
            dir,
            name: "_data".into(),
            shown: shown.join(name).join("_data"),
        })
    }

    /// `path` below isolate's root-owned state directory: its parents are created (0700,
    /// root's) and pinned.
    pub fn private(root: &Root, path: &Path) -> Result<Place> {
        make_private_parent(&root.at(path))?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir = open_below_root(root, parent)?.ok_or_else(|| {
            Error::from(HandoffError::Missing {
                path: root.at(parent),
            })
        })?;
        Ok(Place {
            dir,
            name: path.file_name().unwrap_or_default().to_os_string(),
            shown: root.at(path),
        })
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// The side directory a copy into this place is built in.
    fn partial(&self) -> Result<Place> {
        let mut name = self.name.clone();
        name.push(PARTIAL);
        Ok(Place {
            dir: self
                .dir
                .try_clone()
                .map_err(|e| io("dup", &self.shown, e))?,
            shown: self.shown.with_file_name(&name),
            name,
        })
    }

    /// The directory standing here (None: nothing); anything else is refused.
    fn stat(&self) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Ok(Some(st)),
                FileType::Symlink => Err(Error::Refused(format!(
                    "{} is a symbolic link; isolate never moves a volume through one (what it points to stays where it is): put the volume's data there as a directory, or remove the volume from its store (`podman volume rm`)",
                    self.shown.display()
                ))),
                t => Err(Error::Refused(format!(
                    "{} is {}, not a directory; left as is",
                    self.shown.display(),
                    file_type_name(t)
                ))),
            },
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io("stat", &self.shown, e.into())),
        }
    }

    /// The identity of the directory standing here, if one does (never refuses).
    fn identity(&self) -> Option<DirId> {
        rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            .map(|st| DirId::of(&st))
    }

    /// Opens the directory here: never through a link, never onto a mount point.
    fn open(&self) -> Result<OwnedFd> {
        rustix::fs::openat2(
            self.dir.as_fd(),
            &self.name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH | ResolveFlags::NO_XDEV,
        )
        .map_err(|e| match e {
            Errno::XDEV => Error::Refused(format!(
                "{} is a mount point; isolate never moves a mount: unmount it first",
                self.shown.display()
            )),
            e => pinned_error("open", &self.shown, e),
        })
    }

    /// The directory here, opened and checked to be the one stat saw (None: nothing here).
    fn pin(&self) -> Result<Option<(OwnedFd, rustix::fs::Stat)>> {
        let Some(st) = self.stat()? else {
            return Ok(None);
        };
        let fd = self.open()?;
        let now = rustix::fs::fstat(&fd).map_err(|e| io("stat", &self.shown, e.into()))?;
        if DirId::of(&now) != DirId::of(&st) {
            return Err(Error::Refused(format!(
                "{} changed while isolate looked at it; nothing moved",
                self.shown.display()
            )));
        }
        Ok(Some((fd, now)))
    }

    /// The directory here (None: nothing), refused unless its owner and group are ids of
    /// `owners` (the store user's own and subordinate ids).
    pub fn owned_dir(&self, owners: &IdMaps) -> Result<Option<DirId>> {
        let Some((_, st)) = self.pin()? else {
            return Ok(None);
        };
        if !owners.uid.contains_host(st.st_uid) || !owners.gid.contains_host(st.st_gid) {
            return Err(Error::Refused(format!(
                "{} belongs to {}:{}, which are not the store user's ids (her own or subordinate); isolate moves only what the store's user owns",
                self.shown.display(),
                st.st_uid,
                st.st_gid
            )));
        }
        Ok(Some(DirId::of(&st)))
    }

    /// Refuses the tree here when an inode in it belongs to ids none of `owners` holds (the
    /// store user's own and subordinate ids: whatever else is in her store she moved there,
    /// and it is not hers to give), a file has links outside it (an inode someone else also
    /// names), or a mount point is inside it. Read-only; the walk's own traversal (no link
    /// followed, no mount crossed).
    pub fn check_tree(&self, owners: &[&IdMaps]) -> Result<()> {
        let Some((fd, _)) = self.pin()? else {
            return Ok(());
        };
        let sys = crate::walk::sys::RealSys::new();
        let walked =
            crate::walk::traverse::walk(&sys, &self.shown, fd, &TreeCheck { owners }, None)?;
        let (counts, foreign) = (walked.counts, walked.tally.0);
        let list = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| self.shown.join(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !foreign.is_empty() {
            return Err(Error::Refused(format!(
                "{} holds {} inode(s) owned by ids that are not the store user's (her own or subordinate): {}; isolate gives a stack only what the legacy user owns: give them to her, or remove them, first",
                self.shown.display(),
                foreign.count,
                list(&foreign.samples)
            )));
        }
        if !counts.outside_links.is_empty() {
            return Err(Error::Refused(format!(
                "{} holds {} file(s) with hardlinks outside it: {}; isolate never moves or re-owns an inode that is also linked elsewhere: remove the other links (or copy the files) first",
                self.shown.display(),
                counts.outside_links.count,
                list(&counts.outside_links.samples)
            )));
        }
        if !counts.mounts_skipped.is_empty() {
            return Err(Error::Refused(format!(
                "{} holds mount point(s): {}; isolate never moves a mount: unmount them first",
                self.shown.display(),
                list(&counts.mounts_skipped)
            )));
        }
        // What could not be looked at was not checked: never moved unchecked.
        let unseen = counts.failed.count + counts.raced.count;
        if unseen > 0 {
            let mut samples = counts.failed.samples.clone();
            samples.extend(counts.raced.samples.iter().cloned());
            return Err(Error::Refused(format!(
                "{} could not be checked whole: {unseen} inode(s) failed or changed while isolate looked ({}); try again once nothing writes to it",
                self.shown.display(),
                list(&samples)
            )));
        }
        Ok(())
    }

    /// Whether a directory stands here and holds something.
    pub fn holds_data(&self) -> Result<bool> {
        Ok(match self.pin()? {
            Some((fd, _)) => !is_empty(&fd, &self.shown)?,
            None => false,
        })
    }

    /// Leaves an empty directory here owned by `owner` when nothing stands here (the stack's
    /// store keeps its volume after a rollback).
    pub fn keep_empty_dir(&self, owner: (u32, u32)) -> Result<()> {
        if self.stat()?.is_some() {
            return Ok(());
        }
        rustix::fs::mkdirat(&self.dir, &self.name, Mode::from_raw_mode(0o755))
            .map_err(|e| io("create", &self.shown, e.into()))?;
        let fd = self.open()?;
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
        )
        .map_err(|e| io("chown", &self.shown, e.into()))
    }

    /// Whether a directory stands here.
    pub fn exists(&self) -> bool {
        self.identity().is_some()
    }

    /// Removes the tree here without following links or leaving its filesystem.
    fn remove(&self) -> Result<()> {
        if self.stat()?.is_none() {
            return Ok(());
        }
        let out = tied("rm", &[self.dir.as_raw_fd()])
            .arg("-rf")
            .arg("--one-file-system")
            .arg("--")
            .arg(proc_fd(&self.dir).join(&self.name))
            .output()
            .map_err(|e| io("running rm -rf on", &self.shown, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HandoffError::RemoveFailed {
                path: self.shown.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }
            .into())
        }
    }
}

/// The walk's read-only traversal of a volume's tree: it collects inodes owned by ids none of
/// `owners` holds; what the traversal counts itself (links outside the tree, mount points
/// inside it) is the rest of the check.
struct TreeCheck<'a> {
    owners: &'a [&'a IdMaps],
}

/// Inodes of a volume's tree owned by someone else.
#[derive(Default)]
struct Foreign(crate::walk::traverse::Samples);

impl crate::walk::traverse::Tally for Foreign {
    fn merge(&mut self, other: Foreign) {
        self.0.merge(other.0);
    }
}

impl crate::walk::traverse::InodeAction for TreeCheck<'_> {
    type Plan = ();
    type Tally = Foreign;
    const CHANGES: bool = false;

    fn plan(
        &self,
        _: &dyn crate::walk::sys::WalkSys,
        entry: &crate::walk::traverse::Entry<'_>,
        tally: &mut Foreign,
    ) -> std::result::Result<Option<()>, crate::walk::traverse::Failure> {
        let st = &entry.stat;
        let uid = self.owners.iter().any(|m| m.uid.contains_host(st.uid));
        let gid = self.owners.iter().any(|m| m.gid.contains_host(st.gid));
        if !(uid && gid) {
            tally.0.add(entry.rel());
        }
        Ok(None)
    }

    fn apply(
        &self,
        _: &dyn crate::walk::sys::WalkSys,
        _: &crate::walk::traverse::Pinned<'_>,
        _: (),
        _: &mut Foreign,
    ) -> std::result::Result<(), crate::walk::traverse::Failure> {
        Ok(())
    }
}

/// What volume `name` has at its data directory in the store below `home`, seen without
/// following a link or crossing a mount; `owners` are the ids it may belong to.
pub fn inspect(root: &Root, home: &Path, name: &str, owners: &IdMaps) -> Result<VolumeData> {
    let found = Place::in_store(root, home, name).and_then(|p| match p {
        Some(p) => {
            let id = p.owned_dir(owners)?;
            p.check_tree(&[owners])?;
            Ok(id)
        }
        None => Ok(None),
    });
    match found {
        Ok(None) => Ok(VolumeData::Missing),
        Ok(Some(id)) => Ok(VolumeData::Dir(id)),
        Err(Error::Refused(why)) => Ok(VolumeData::Refused(why)),
        Err(e) => Err(e),
    }
}

/// Whether the store below `home` has a directory that holds something at volume `name`'s
/// data directory (a link or a mount there counts as holding something: never mixed with).
pub fn store_holds_data(root: &Root, home: &Path, name: &str) -> bool {
    match Place::in_store(root, home, name) {
        Ok(Some(p)) => p.holds_data().unwrap_or(true),
        Ok(None) => false,
        Err(_) => true,
    }
}

fn is_empty(fd: &OwnedFd, shown: &Path) -> Result<bool> {
    let mut dir = rustix::fs::Dir::read_from(fd).map_err(|e| io("list", shown, e.into()))?;
    for entry in dir.by_ref() {
        let entry = entry.map_err(|e| io("list", shown, e.into()))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `/proc/self/fd/N`: the child names a directory isolate holds open, not a path anyone
/// could change.
fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A command that is killed when isolate dies (kill -9 included): an orphaned `cp` or `rm`
/// would go on writing while the re-run repairs the same directory. `inherit`: descriptors
/// the child keeps (named as /proc/self/fd/N).
fn tied(program: &str, inherit: &[RawFd]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    let parent = std::process::id();
    let inherit = inherit.to_vec();
    // SAFETY: only async-signal-safe calls (prctl, getppid, fcntl, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            for &fd in &inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Creates the (root-owned, 0700) directories above a staging directory.
pub fn make_private_parent(staging: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(parent) = staging.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| io("create", parent, e))
}

/// Refuses a target that already holds something (a volume the stack made itself).
pub fn check_target(to: &Place) -> Result<()> {
    if to.holds_data()? {
        return Err(HandoffError::TargetHoldsData {
            path: to.shown.clone(),
        }
        .into());
    }
    Ok(())
}

/// Removes what an interrupted cross-filesystem copy into `to` left.
pub fn discard_partial(to: &Place) -> Result<()> {
    to.partial()?.remove()
}

/// Moves the directory at `from` to `to`. `to` may be missing or an empty directory (which
/// the move replaces). `expect`: the identity `from` must have (what the plan saw); the
/// directory moved is checked to be that one. Re-runnable after a crash at any point:
/// - `from` gone and `to` present: already moved;
/// - a side copy left over: thrown away and made again;
/// - `from` and a non-empty `to` both present while `resuming`: the copy was complete and
///   renamed into place (that rename is the copy's commit point), only the removal of `from`
///   was cut short.
pub fn move_dir(from: &Place, to: &Place, resuming: bool, expect: Option<DirId>) -> Result<Moved> {
    let partial = to.partial()?;
    let to_full = to.holds_data()?;
    if to_full && resuming {
        // The move was complete (a rename, or a copy's commit); only the removal of the
        // original may have been cut short. Only the directory the plan saw is removed.
        if let Some(id) = from.identity() {
            if expect.is_none_or(|want| want == id) {
                from.remove()?;
            }
        }
        partial.remove()?;
        return Ok(Moved::AlreadyThere);
    }
    let Some(from_st) = from.stat()? else {
        return if to.stat()?.is_some() {
            partial.remove()?;
            Ok(Moved::AlreadyThere)
        } else {
            Err(HandoffError::DataGone {
                first: from.shown.clone(),
                second: to.shown.clone(),
            }
            .into())
        };
    };
    let from_id = DirId::of(&from_st);
    if let Some(want) = expect {
        if want != from_id {
            return Err(Error::Refused(format!(
                "{} is not the directory the plan saw (device {} inode {}, now device {} inode {}); nothing moved: plan again",
                from.shown.display(),
                want.dev,
                want.ino,
                from_id.dev,
                from_id.ino
            )));
        }
    }
    if to_full {
        return Err(HandoffError::TargetHoldsData {
            path: to.shown.clone(),
        }
        .into());
    }
    if to.stat()?.is_some() {
        rustix::fs::unlinkat(&to.dir, &to.name, AtFlags::REMOVEDIR)
            .map_err(|e| io("remove the empty", &to.shown, e.into()))?;
    }
    match rustix::fs::renameat_with(
        &from.dir,
        &from.name,
        &to.dir,
        &to.name,
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => {
            if to.identity() != Some(from_id) {
                // Swapped between the check and the rename: give it back untouched.
                let _ = rustix::fs::renameat_with(
                    &to.dir,
                    &to.name,
                    &from.dir,
                    &from.name,
                    RenameFlags::NOREPLACE,
                );
                return Err(Error::Refused(format!(
                    "{} was replaced while isolate moved it; put back, nothing moved",
                    from.shown.display()
                )));
            }
            return Ok(Moved::Renamed);
        }
        Err(Errno::XDEV) => {}
        Err(e) => {
            return Err(io(
                &format!("rename to {}:", to.shown.display()),
                &from.shown,
                e.into(),
            ))
        }
    }
    // Another filesystem: copy everything (owners, modes, ACLs, xattrs, hardlinks, links as
    // links) from the pinned source into the pinned side directory, put it in place, then
    // remove the original.
    partial.remove()?;
    rustix::fs::mkdirat(&to.dir, &partial.name, Mode::from_raw_mode(0o700))
        .map_err(|e| io("create", &partial.shown, e.into()))?;
    let dst = partial.open()?;
    let src = from.open()?;
    let src_id = rustix::fs::fstat(&src).map_err(|e| io("stat", &from.shown, e.into()))?;
    if DirId::of(&src_id) != from_id {
        return Err(Error::Refused(format!(
            "{} was replaced while isolate moved it; nothing moved",
            from.shown.display()
        )));
    }
    let out = tied("cp", &[src.as_raw_fd(), dst.as_raw_fd()])
        .args([
            "-a",
            "--no-dereference",
            "--one-file-system",
            "--no-target-directory",
            "--",
        ])
        .arg(proc_fd(&src).join("."))
        .arg(proc_fd(&dst).join("."))
        .output()
        .map_err(|e| io("running cp -a on", &from.shown, e))?;
    if !out.status.success() {
        return Err(HandoffError::CopyFailed {
            from: from.shown.clone(),
            to: partial.shown.clone(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    // The copy is on disk before it is put in place.
    rustix::fs::syncfs(&dst).map_err(|e| io("syncfs", &partial.shown, e.into()))?;
    rustix::fs::renameat_with(
        &to.dir,
        &partial.name,
        &to.dir,
        &to.name,
        RenameFlags::NOREPLACE,
    )
    .map_err(|e| {
        io(
            &format!("rename to {}:", to.shown.display()),
            &partial.shown,
            e.into(),
        )
    })?;
    rustix::fs::fsync(&to.dir).map_err(|e| io("sync", &to.shown, e.into()))?;
    let copy = rustix::fs::fstat(&dst).map_err(|e| io("stat", &partial.shown, e.into()))?;
    if to.identity() != Some(DirId::of(&copy)) {
        return Err(HandoffError::NotOurCopy {
            copy: to.shown.clone(),
            original: from.shown.clone(),
        }
        .into());
    }
    // Only the directory that was copied is removed.
    if from.identity() == Some(from_id) {
        from.remove()?;
    }
    Ok(Moved::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_are_computed_from_the_home_and_a_podman_name_only() {
        for ok in ["app_db", "a", "A1.b-c_d"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".x", "-x", "a/b", "../../etc", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let p = data_path(Path::new("/home/alice"), "app_db");
        assert_eq!(
            p,
            Path::new("/home/alice/.local/share/containers/storage/volumes/app_db/_data")
        );
        assert_eq!(home_of(&p, "app_db"), Some(PathBuf::from("/home/alice")));
        assert_eq!(home_of(&p, "other"), None);
        assert_eq!(home_of(Path::new("/root/secret"), "secret"), None);
        assert_eq!(home_of(Path::new("/srv/other/data"), "data"), None);
    }
}
