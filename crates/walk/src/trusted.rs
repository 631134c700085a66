//! Opening a data path or a share the walk may trust: one component at a time without
//! following a symlink, below directories only root can write, not on a network or FUSE
//! filesystem; and creating a new stack's data path relative to its verified parent.
use crate::error::{Error, Result};
use crate::sys::WalkSys;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

// statfs f_type values of filesystems where a local root cannot chown.
const NFS_SUPER_MAGIC: i64 = 0x6969;
const SMB_SUPER_MAGIC: i64 = 0x517b;
const CIFS_SUPER_MAGIC: i64 = 0xff53_4d42;
const SMB2_SUPER_MAGIC: i64 = 0xfe53_4d42;
const V9FS_MAGIC: i64 = 0x0102_1997;
/// FUSE, which virtiofs also reports.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

fn remote_fs_name(fs_type: i64) -> Option<&'static str> {
    match fs_type {
        NFS_SUPER_MAGIC => Some("NFS"),
        SMB_SUPER_MAGIC | CIFS_SUPER_MAGIC | SMB2_SUPER_MAGIC => Some("CIFS/SMB"),
        V9FS_MAGIC => Some("9p"),
        FUSE_SUPER_MAGIC => Some("FUSE (or virtiofs)"),
        _ => None,
    }
}

/// Why a path cannot be opened as a trusted directory.
fn open_error(what: &str, path: &Path, e: Errno) -> Error {
    match e {
        Errno::NOENT => Error::Refused(format!("{what} {} does not exist", path.display())),
        Errno::NOTDIR => Error::Refused(format!(
            "{what} {} is not a directory (or a symbolic link stands in it)",
            path.display()
        )),
        Errno::LOOP => Error::Refused(format!(
            "{what} {} goes through a symbolic link; isolate never follows one: \
             name the real directory in the policy",
            path.display()
        )),
        Errno::INVAL => Error::Refused(format!(
            "{what} {} is not in normal form (no `.` or `..`)",
            path.display()
        )),
        e => Error::io(format!("open {what} {}", path.display()), e.into()),
    }
}

/// Opens `path` (absolute, normal form) one component at a time without following a
/// symlink, refusing it unless every directory above it is owned by root and writable by
/// no one else: whoever can write a parent can swap the directory for another between any
/// check and any use (a sticky world-writable directory like /tmp is not enough: the owner
/// of an entry may rename it). `what` names the path in messages ("data path", "share").
/// With `--root`, the root's own ancestors and those inside it are checked alike.
pub fn open_trusted(sys: &dyn WalkSys, path: &Path, what: &str) -> Result<OwnedFd> {
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "{what} {} is not absolute",
            path.display()
        )));
    }
    let mut fd = sys
        .open_root(Path::new("/"))
        .map_err(|e| open_error(what, path, e))?;
    let mut here = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => continue,
            Component::Normal(name) => {
                check_parent(sys, &fd, &here, path, what)?;
                let name = CString::new(name.as_bytes())
                    .map_err(|_| open_error(what, path, Errno::INVAL))?;
                fd = sys
                    .open_dir(fd.as_fd(), &name)
                    .map_err(|e| open_error(what, path, e))?;
                here.push(std::ffi::OsStr::from_bytes(name.as_bytes()));
            }
            _ => return Err(open_error(what, path, Errno::INVAL)),
        }
    }
    Ok(fd)
}

fn check_parent(
    sys: &dyn WalkSys,
    fd: &OwnedFd,
    dir: &Path,
    path: &Path,
    what: &str,
) -> Result<()> {
    let st = sys
        .stat(fd.as_fd(), c"")
        .map_err(|e| Error::io(format!("stat {}", dir.display()), e.into()))?;
    if st.uid == 0 && st.perm() & 0o022 == 0 {
        return Ok(());
    }
    let d = dir.display();
    Err(Error::Refused(format!(
        "{what} {}: the directory {d} above it is owned by uid {} with mode {:04o}; whoever \
         can write it could swap the {what} for another directory while isolate works. Make \
         every directory above the {what} owned by root and writable only by root \
         (`chown root: {d} && chmod go-w {d}`), or move the data below such a directory",
        path.display(),
        st.uid,
        st.perm()
    )))
}

/// Opens the data path after refusing one the walk must not touch: missing, not a
/// directory, below a directory someone else can write, or on a network/FUSE filesystem
/// where chown by a local root fails.
pub(crate) fn open_data_path(sys: &dyn WalkSys, path: &Path) -> Result<OwnedFd> {
    let fd = open_trusted(sys, path, "data path")?;
    let fs_type = sys
        .fs_type(fd.as_fd())
        .map_err(|e| Error::io(format!("statfs {}", path.display()), e.into()))?;
    if let Some(fs) = remote_fs_name(fs_type) {
        return Err(Error::Refused(format!(
            "data path {} is on {fs}: chown there fails with EPERM or is not kept \
             (the server owns the ids); run the migration on the file server itself \
             (shift or reown the export there), or move the data to a local filesystem first",
            path.display()
        )));
    }
    Ok(fd)
}

/// Refuses paths the walk must not touch: missing, not a directory, swappable parents,
/// network/FUSE filesystems.
pub fn check_data_path(sys: &dyn WalkSys, path: &Path) -> Result<()> {
    open_data_path(sys, path).map(drop)
}

/// Whether a data path does not exist yet but can be created safely: its parent is a
/// trusted directory (root-owned and writable by no one else, up to `/`) without an entry of
/// that name. Errors are the parent's refusals.
pub fn data_path_missing(sys: &dyn WalkSys, path: &Path) -> Result<bool> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let dir = open_trusted(sys, parent, "data path")?;
    check_parent(sys, &dir, parent, path, "data path")?;
    let name =
        CString::new(name.as_bytes()).map_err(|_| open_error("data path", path, Errno::INVAL))?;
    Ok(sys.stat(dir.as_fd(), &name) == Err(Errno::NOENT))
}

/// Creates a new stack's data path: `mkdirat` relative to its pinned, verified parent,
/// owned by the stack's container root, mode 0750. Something that appeared there since
/// the plan is an error (it may hold data to migrate: plan again).
pub fn create_data_dir(sys: &dyn WalkSys, path: &Path, uid: u32, gid: u32) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Refused(format!(
            "data path {} has no parent directory",
            path.display()
        )));
    };
    let dir = open_trusted(sys, parent, "data path")?;
    check_parent(sys, &dir, parent, path, "data path")?;
    let name =
        CString::new(name.as_bytes()).map_err(|_| open_error("data path", path, Errno::INVAL))?;
    match sys.mkdir(dir.as_fd(), &name, 0o700) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(Error::Failed(format!(
                "data path {} exists now but did not when planned; run plan again",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("create {}", path.display()), e.into())),
    }
    let created = sys
        .open_dir(dir.as_fd(), &name)
        .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))?;
    sys.chown(created.as_fd(), c"", uid, gid)
        .and_then(|()| sys.chmod(created.as_fd(), c"", 0o750))
        .map_err(|e| Error::io(format!("set the owner of {}", path.display()), e.into()))
}
