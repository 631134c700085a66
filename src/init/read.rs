//! The files `init` reads on root's behalf, read with the rights of the user who controls the
//! path to them: a compose tree belongs to its legacy user, who can link `.env` or a compose
//! file to a root-only file, name one in `include:` or `extends:`, or hardlink one into her
//! directory. Each read happens in a thread that has taken that user's uid, gid and groups
//! (per-thread credentials, so the kernel decides with her rights: modes, groups, ACLs,
//! every directory on the way), so init reads exactly what she could read herself, and a
//! path she can follow with `..` to another of her stacks stays fine. Only a path that no one
//! but root controls is read as root.
//!
//! Why a thread with her credentials rather than opening beneath the tree as root and
//! checking modes: that would re-implement the kernel's permission check (groups, ACL masks,
//! search rights on every directory) and still need a boundary for `../other-stack`; and
//! rather than a forked child: no fork of a threaded process, no unsafe code. The kernel
//! makes the process non-dumpable when a thread changes uid, so her processes cannot trace
//! it; files on /proc (the process's own) are refused, and every read is bounded: regular
//! files only (a FIFO would block), MAX_FILE_BYTES each, MAX_PROJECT_BYTES,
//! MAX_PROJECT_FILES and MAX_PROJECT_NODES per project with its includes and extends.
use crate::host::accounts::Accounts;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest file init reads.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// All files of one project together (compose file, includes, extends, env files).
pub const MAX_PROJECT_BYTES: u64 = 16 << 20;
/// How many files one project may read (includes and extends may name files many times).
pub const MAX_PROJECT_FILES: usize = 256;
/// Nodes one project may build with its extends and includes merged (each extends copies
/// its base): compose projects have a few thousand.
pub const MAX_PROJECT_NODES: usize = 250_000;
/// Symbolic links followed while finding who controls a path (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A user whose rights a read is made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary one included).
    pub groups: Vec<u32>,
    /// The user's name on the root, if it has one.
    pub name: Option<String>,
}

impl fmt::Display for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: {reader} may not read it ({source}); init reads a file with the rights of the user who controls its path", path.display())]
    Denied {
        path: PathBuf,
        reader: Reader,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: larger than {} MiB", path.display(), MAX_FILE_BYTES >> 20)]
    TooLarge { path: PathBuf },
    #[error("{}: the project reads more than {} MiB with its includes, extends and env files", path.display(), MAX_PROJECT_BYTES >> 20)]
    ProjectTooLarge { path: PathBuf },
    #[error("{}: the project reads more than {MAX_PROJECT_FILES} files with its includes, extends and env files", path.display())]
    TooManyFiles { path: PathBuf },
    #[error("{}: lies below directories of {first} and of {second}; init reads with one user's rights, so run it on each user's tree", path.display())]
    SeveralOwners {
        path: PathBuf,
        first: String,
        second: String,
    },
    #[error("{}: lies below {}, which users other than its owner can write (mode {mode:o}), so no one user's rights decide what it holds", path.display(), dir.display())]
    OthersCanWrite {
        path: PathBuf,
        dir: PathBuf,
        mode: u32,
    },
    #[error("{}: could not take the rights of {reader}: {source}", path.display())]
    Drop {
        path: PathBuf,
        reader: Reader,
        #[source]
        source: std::io::Error,
    },
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }
}

/// Users and groups of the root, to give a reader its groups and name.
pub struct Rights {
    accounts: Option<Accounts>,
    /// init runs as root: reads must give up its rights (otherwise they are the caller's).
    privileged: bool,
}

impl Rights {
    pub fn new(root: &Path) -> Rights {
        Rights {
            accounts: Accounts::read(root).ok(),
            privileged: rustix::process::geteuid().is_root(),
        }
    }

    /// The reader for uid: its primary group and the groups that list it, from the root's
    /// passwd and group; a uid the root does not know reads with no group (65534, nogroup).
    pub fn reader(&self, uid: u32) -> Reader {
        let user = self.accounts.as_ref().and_then(|a| a.user_by_uid(uid));
        let gid = user.map_or(65534, |u| u.gid);
        let mut groups = vec![gid];
        if let (Some(u), Some(a)) = (user, &self.accounts) {
            groups.extend(
                a.group
                    .iter()
                    .filter(|g| g.members.contains(&u.name))
                    .map(|g| g.gid),
            );
        }
        groups.sort_unstable();
        groups.dedup();
        Reader {
            uid,
            gid,
            groups,
            name: user.map(|u| u.name.clone()),
        }
    }

    fn describe(&self, uid: u32) -> String {
        self.reader(uid).to_string()
    }

    /// Who controls `path`: None when only root can change what it names (every directory
    /// looked in on the way, links followed, is root's and no one else can write it), else
    /// the one user who can. A path below two users' directories, or below a directory
    /// others can write with no user to read as, is refused.
    pub fn controller(&self, path: &Path) -> Result<Option<u32>, ReadError> {
        let abs = std::path::absolute(path).map_err(|e| ReadError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut todo: std::collections::VecDeque<OsString> = components(&abs).collect();
        let mut dir = PathBuf::from("/");
        let mut owners = BTreeSet::new();
        let mut writable: Option<(PathBuf, u32)> = None;
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                dir.pop();
                continue;
            }
            let Ok(dmd) = rustix::fs::lstat(&dir) else {
                break;
            };
            // Whoever can write this directory decides what `name` in it is.
            if dmd.st_uid != 0 {
                owners.insert(dmd.st_uid);
            }
            let mode = dmd.st_mode;
            let others_write = mode & 0o022 != 0;
            let sticky = mode & 0o1000 != 0;
            if others_write && !sticky && writable.is_none() {
                writable = Some((dir.clone(), mode & 0o7777));
            }
            let next = dir.join(&name);
            let Ok(md) = rustix::fs::lstat(&next) else {
                // Missing: in a directory others can write, anyone may create it next.
                if others_write && writable.is_none() {
                    writable = Some((dir.clone(), mode & 0o7777));
                }
                break;
            };
            // In a sticky directory others can write, an entry is its owner's.
            if others_write && sticky && md.st_uid != 0 {
                owners.insert(md.st_uid);
            }
            match rustix::fs::FileType::from_raw_mode(md.st_mode) {
                rustix::fs::FileType::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        break;
                    }
                    if md.st_uid != 0 {
                        owners.insert(md.st_uid);
                    }
                    let Ok(target) = std::fs::read_link(&next) else {
                        break;
                    };
                    if target.is_absolute() {
                        dir = PathBuf::from("/");
                    }
                    for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                        todo.push_front(c);
                    }
                }
                rustix::fs::FileType::Directory => dir = next,
                _ => break,
            }
        }
        let mut it = owners.iter();
        match (it.next(), it.next()) {
            (Some(a), Some(b)) => Err(ReadError::SeveralOwners {
                path: path.to_path_buf(),
                first: self.describe(*a),
                second: self.describe(*b),
            }),
            (Some(a), None) => Ok(Some(*a)),
            (None, _) => match writable {
                Some((dir, mode)) => Err(ReadError::OthersCanWrite {
                    path: path.to_path_buf(),
                    dir,
                    mode,
                }),
                None => Ok(None),
            },
        }
    }

    /// The contents of `path`, read with `reader`'s rights (None: with the rights of
    /// whoever controls the path, root only if no one else does).
    pub fn read(&self, reader: Option<&Reader>, path: &Path) -> Result<Vec<u8>, ReadError> {
        if !self.privileged {
            return read_regular(path, None);
        }
        let reader = match reader {
            Some(r) => r.clone(),
            None => match self.controller(path)? {
                Some(uid) => self.reader(uid),
                None => return read_regular(path, None),
            },
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                use rustix::process::{Gid, Uid};
                let gids: Vec<Gid> = reader.groups.iter().map(|g| Gid::from_raw(*g)).collect();
                let g = Gid::from_raw(reader.gid);
                let u = Uid::from_raw(reader.uid);
                // Groups and gid first: after the uid, the thread may change neither.
                rustix::thread::set_thread_groups(&gids)
                    .and_then(|()| rustix::thread::set_thread_res_gid(g, g, g))
                    .and_then(|()| rustix::thread::set_thread_res_uid(u, u, u))
                    .map_err(std::io::Error::from)
                    // The kernel clears the capabilities of a thread leaving uid 0; clear
                    // them again in case securebits kept them (CAP_DAC_OVERRIDE reads all).
                    .and_then(|()| {
                        for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
                            caps::clear(None, set).map_err(std::io::Error::other)?;
                        }
                        Ok(())
                    })
                    .map_err(|e| ReadError::Drop {
                        path: path.to_path_buf(),
                        reader: reader.clone(),
                        source: e,
                    })?;
                read_regular(path, Some(&reader))
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

fn components(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// Opens and reads a regular file of at most MAX_FILE_BYTES, with the calling thread's
/// rights (`reader` names them for a refusal). O_NONBLOCK: opening a FIFO must not wait.
fn read_regular(path: &Path, reader: Option<&Reader>) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| match (e.kind(), reader) {
        (std::io::ErrorKind::NotFound, _) => ReadError::NotFound {
            path: path.to_path_buf(),
        },
        (std::io::ErrorKind::PermissionDenied, Some(r)) => ReadError::Denied {
            path: path.to_path_buf(),
            reader: r.clone(),
            source: e,
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let md = f.metadata().map_err(io)?;
    // A file of /proc is the reading process's own (`/proc/self/environ` is isolate's
    // environment, readable by its threads whatever their uid while it is dumpable): never
    // compose input.
    let fs_type = rustix::fs::fstatfs(&f).map_err(|e| io(e.into()))?.f_type;
    #[allow(clippy::unnecessary_cast)] // f_type is i64 or u32 depending on the target
    let on_proc = fs_type as i64 == libc::PROC_SUPER_MAGIC as i64;
    if !md.is_file() || on_proc {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if md.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The reads of one project: with the rights of the user who controls its compose file
/// (or per file when root does), within the project's budgets.
pub struct Files<'a> {
    rights: &'a Rights,
    reader: Option<Reader>,
    bytes: u64,
    files: usize,
    nodes: usize,
}

impl<'a> Files<'a> {
    /// The reads of the project whose compose file is `file`.
    pub fn for_project(rights: &'a Rights, file: &Path) -> Result<Files<'a>, ReadError> {
        let reader = rights.controller(file)?.map(|uid| rights.reader(uid));
        Ok(Files {
            rights,
            reader,
            bytes: 0,
            files: 0,
            nodes: 0,
        })
    }

    /// Reads of files named on the command line: each with its own controller's rights.
    pub fn per_file(rights: &'a Rights) -> Files<'a> {
        Files {
            rights,
            reader: None,
            bytes: 0,
            files: 0,
            nodes: 0,
        }
    }

    /// The reader of the project (None: root controls it, each file is read with the rights
    /// of whoever controls that file's path).
    pub fn reader(&self) -> Option<&Reader> {
        self.reader.as_ref()
    }

    /// `path` as UTF-8 text, within the budgets.
    pub fn read(&mut self, path: &Path) -> Result<String, ReadError> {
        self.files += 1;
        if self.files > MAX_PROJECT_FILES {
            return Err(ReadError::TooManyFiles {
                path: path.to_path_buf(),
            });
        }
        let bytes = self.rights.read(self.reader.as_ref(), path)?;
        self.bytes += bytes.len() as u64;
        if self.bytes > MAX_PROJECT_BYTES {
            return Err(ReadError::ProjectTooLarge {
                path: path.to_path_buf(),
            });
        }
        String::from_utf8(bytes).map_err(|e| ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Counts `n` more nodes built for the project (extends copy their base); false once
    /// the project holds more than MAX_PROJECT_NODES.
    pub fn charge_nodes(&mut self, n: usize) -> bool {
        self.nodes += n;
        self.nodes <= MAX_PROJECT_NODES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};

    /// Root's own directory (0755) in /tmp, and a Rights that knows alice (1000) in group
    /// media (2000).
    fn setup() -> (tempfile::TempDir, Rights) {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "alice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(etc.join("group"), "alice:x:1000:\nmedia:x:2000:bob,alice\n").unwrap();
        let rights = Rights::new(d.path());
        (d, rights)
    }

    fn dir(at: &Path, uid: u32, mode: u32) -> PathBuf {
        std::fs::create_dir(at).unwrap();
        chown(at, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode)).unwrap();
        at.to_path_buf()
    }

    #[test]
    fn a_reader_has_its_primary_and_listed_groups() {
        let (_d, rights) = setup();
        let r = rights.reader(1000);
        assert_eq!(
            (r.uid, r.gid, r.groups.clone()),
            (1000, 1000, vec![1000, 2000])
        );
        assert_eq!(r.to_string(), "alice (uid 1000)");
        let unknown = rights.reader(1234);
        assert_eq!((unknown.gid, unknown.groups), (65534, vec![65534]));
    }

    #[test]
    fn the_controller_is_whoever_owns_a_directory_looked_in() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (d, rights) = setup();
        let r = d.path();
        assert_eq!(rights.controller(&r.join("etc/passwd")).unwrap(), None);
        let alice = dir(&r.join("alice"), 1000, 0o755);
        dir(&alice.join("sub"), 0, 0o755);
        // Root's directory below hers is still hers to swap.
        assert_eq!(rights.controller(&alice.join("sub/x")).unwrap(), Some(1000));
        // A root link into her tree, then `..` from where it led: physical, as the kernel.
        symlink(alice.join("sub"), r.join("link")).unwrap();
        assert_eq!(rights.controller(&r.join("link/../x")).unwrap(), Some(1000));
        // Her link out of her tree to root's file: still hers.
        symlink(r.join("etc/passwd"), alice.join("l")).unwrap();
        lchown(alice.join("l"), Some(1000), Some(1000)).unwrap();
        assert_eq!(rights.controller(&alice.join("l")).unwrap(), Some(1000));
        // Two users on one path.
        dir(&alice.join("bobs"), 1001, 0o755);
        assert!(matches!(
            rights.controller(&alice.join("bobs/compose.yaml")),
            Err(ReadError::SeveralOwners { .. })
        ));
    }

    #[test]
    fn a_root_path_through_a_directory_others_can_write_is_refused() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (d, rights) = setup();
        let r = d.path();
        let open = dir(&r.join("open"), 0, 0o777);
        std::fs::write(open.join("f"), "").unwrap();
        assert!(matches!(
            rights.controller(&open.join("f")),
            Err(ReadError::OthersCanWrite { mode: 0o777, .. })
        ));
        let group = dir(&r.join("group"), 0, 0o775);
        assert!(matches!(
            rights.controller(&group.join("f")),
            Err(ReadError::OthersCanWrite { mode: 0o775, .. })
        ));
        // Sticky: an entry root owns stays root's; a missing one anyone may create.
        let sticky = dir(&r.join("sticky"), 0, 0o1777);
        std::fs::write(sticky.join("f"), "").unwrap();
        assert_eq!(rights.controller(&sticky.join("f")).unwrap(), None);
        assert!(matches!(
            rights.controller(&sticky.join("missing")),
            Err(ReadError::OthersCanWrite { .. })
        ));
        std::fs::write(sticky.join("hers"), "").unwrap();
        chown(sticky.join("hers"), Some(1000), Some(1000)).unwrap();
        assert_eq!(rights.controller(&sticky.join("hers")).unwrap(), Some(1000));
    }

    #[test]
    fn a_read_with_a_users_rights_is_refused_what_she_may_not_read() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (d, rights) = setup();
        let r = d.path();
        let secret = r.join("secret");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let alice = rights.reader(1000);
        assert!(matches!(
            rights.read(Some(&alice), &secret),
            Err(ReadError::Denied { .. })
        ));
        // Group media may read it: so may she, through her supplementary group.
        chown(&secret, Some(0), Some(2000)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(rights.read(Some(&alice), &secret).unwrap(), b"x");
        // The process kept its own rights.
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(rights.read(None, &secret).unwrap(), b"x");
        assert!(matches!(
            rights.read(None, r),
            Err(ReadError::NotRegular { .. })
        ));
    }
}
