//! A volume's data directory pinned beneath its user's home (`Place`): reached without
//! following a link or crossing a mount, checked for owner and identity, its tree checked
//! for inodes of anyone else, removed through its descriptor.
use super::*;
use crate::model::RefusalKind;
use crate::walk::sys::WalkSys;

pub(super) fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

/// An error of a no-link, no-mount open: a link or a mount on the way is a refusal.
pub(super) fn pinned_error(what: &str, shown: &Path, e: Errno) -> Error {
    match e {
        Errno::LOOP => Error::refused(RefusalKind::Handoff, format!(
            "{} is reached through a symbolic link; isolate never follows one in a podman store",
            shown.display()
        )),
        Errno::XDEV => Error::refused(RefusalKind::Handoff, format!(
            "{} is (or is below) a mount point inside its store; isolate never moves a volume across one",
            shown.display()
        )),
        Errno::NOTDIR => Error::refused(RefusalKind::Handoff, format!(
            "{} (or a directory above it) is not a directory",
            shown.display()
        )),
        e => io(what, shown, e.into()),
    }
}

pub(super) const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

pub(super) fn open_root(root: &Root) -> Result<OwnedFd> {
    rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", root.path(), e.into()))
}

/// Opens directory `path` (absolute, as on the host) below the root with no symbolic link
/// anywhere on the way (a mount may be crossed: homes and /var/lib often are mounts).
pub(super) fn open_below_root(root: &Root, path: &Path) -> Result<Option<OwnedFd>> {
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

pub(super) fn file_type_name(t: FileType) -> &'static str {
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
    pub(super) dir: OwnedFd,
    pub(super) name: OsString,
    /// The path, for messages only (below the root).
    pub(super) shown: PathBuf,
}

/// The suffix of the side directory a cross-filesystem copy is built in.
pub(super) const PARTIAL: &str = ".isolate-partial";

impl Place {
    /// Volume `name`'s `_data` in the store below `home`, its volume directory reached
    /// beneath the home without following a link or crossing a mount. None when the store or
    /// the volume directory does not exist.
    pub fn in_store(root: &Root, home: &Path, name: &str) -> Result<Option<Place>> {
        if !valid_name(name) {
            return Err(Error::refused(
                RefusalKind::Handoff,
                format!(
                "{name:?} is not a volume name podman makes; isolate never builds a path from it"
            ),
            ));
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
    pub(super) fn partial(&self) -> Result<Place> {
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
    pub(super) fn stat(&self) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Ok(Some(st)),
                FileType::Symlink => Err(Error::refused(RefusalKind::Handoff, format!(
                    "{} is a symbolic link; isolate never moves a volume through one (what it points to stays where it is): put the volume's data there as a directory, or remove the volume from its store (`podman volume rm`)",
                    self.shown.display()
                ))),
                t => Err(Error::refused(RefusalKind::Handoff, format!(
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
    pub(super) fn identity(&self) -> Option<DirId> {
        rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            .map(|st| DirId::of(&st))
    }

    /// Opens the directory here: never through a link, never onto a mount point.
    pub(super) fn open(&self) -> Result<OwnedFd> {
        rustix::fs::openat2(
            self.dir.as_fd(),
            &self.name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH | ResolveFlags::NO_XDEV,
        )
        .map_err(|e| match e {
            Errno::XDEV => Error::refused(
                RefusalKind::Handoff,
                format!(
                    "{} is a mount point; isolate never moves a mount: unmount it first",
                    self.shown.display()
                ),
            ),
            e => pinned_error("open", &self.shown, e),
        })
    }

    /// The directory here, opened and checked to be the one stat saw (None: nothing here).
    pub(super) fn pin(&self) -> Result<Option<(OwnedFd, rustix::fs::Stat)>> {
        let Some(st) = self.stat()? else {
            return Ok(None);
        };
        let fd = self.open()?;
        let now = rustix::fs::fstat(&fd).map_err(|e| io("stat", &self.shown, e.into()))?;
        if DirId::of(&now) != DirId::of(&st) {
            return Err(Error::refused(
                RefusalKind::Handoff,
                format!(
                    "{} changed while isolate looked at it; nothing moved",
                    self.shown.display()
                ),
            ));
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
            return Err(Error::refused(RefusalKind::Handoff, format!(
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
    pub fn check_tree(&self, sys: &dyn WalkSys, owners: &[&IdMaps]) -> Result<()> {
        let Some((fd, _)) = self.pin()? else {
            return Ok(());
        };
        let walked =
            crate::walk::traverse::walk(sys, &self.shown, fd, &TreeCheck { owners }, None)?;
        let (counts, foreign) = (walked.counts, walked.tally.0);
        let list = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| self.shown.join(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !foreign.is_empty() {
            return Err(Error::refused(RefusalKind::Handoff, format!(
                "{} holds {} inode(s) owned by ids that are not the store user's (her own or subordinate): {}; isolate gives a stack only what the legacy user owns: give them to her, or remove them, first",
                self.shown.display(),
                foreign.count,
                list(&foreign.samples)
            )));
        }
        if !counts.outside_links.is_empty() {
            return Err(Error::refused(RefusalKind::Handoff, format!(
                "{} holds {} file(s) with hardlinks outside it: {}; isolate never moves or re-owns an inode that is also linked elsewhere: remove the other links (or copy the files) first",
                self.shown.display(),
                counts.outside_links.count,
                list(&counts.outside_links.samples)
            )));
        }
        if !counts.mounts_skipped.is_empty() {
            return Err(Error::refused(
                RefusalKind::Handoff,
                format!(
                    "{} holds mount point(s): {}; isolate never moves a mount: unmount them first",
                    self.shown.display(),
                    list(&counts.mounts_skipped)
                ),
            ));
        }
        // What could not be looked at was not checked: never moved unchecked.
        let unseen = counts.failed.count + counts.raced.count;
        if unseen > 0 {
            let mut samples = counts.failed.samples.clone();
            samples.extend(counts.raced.samples.iter().cloned());
            return Err(Error::refused(RefusalKind::Handoff, format!(
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
    pub(super) fn remove(&self) -> Result<()> {
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
pub(super) struct TreeCheck<'a> {
    owners: &'a [&'a IdMaps],
}

/// Inodes of a volume's tree owned by someone else.
#[derive(Default)]
pub(super) struct Foreign(crate::walk::traverse::Samples);

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
pub(super) fn is_empty(fd: &OwnedFd, shown: &Path) -> Result<bool> {
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
pub(super) fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A command that is killed when isolate dies (kill -9 included): an orphaned `cp` or `rm`
/// would go on writing while the re-run repairs the same directory. `inherit`: descriptors
/// the child keeps (named as /proc/self/fd/N).
pub(super) fn tied(program: &str, inherit: &[RawFd]) -> Command {
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
