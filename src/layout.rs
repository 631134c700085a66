//! Every host path isolate reads or writes, in one place, and `Root`: the directory it works
//! on (`--root`), under which each of those paths is found. A path in the policy or the state
//! file is a host path ("/srv/immich"); `Root::at` gives where it lies under the root.
use std::ffi::OsStr;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// isolate's own directory: state file, lock, journals.
pub const STATE_DIR: &str = "/var/lib/isolate";
/// Where stack users' homes are made.
pub const HOME_BASE: &str = "/var/lib/isolate/home";
/// logind's and the system manager's bus.
pub const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// NixOS marks its hosts with this file.
pub const NIXOS_MARKER: &str = "/etc/NIXOS";
/// shadow's settings, SUB_UID_MIN..SUB_UID_MAX among them.
pub const LOGIN_DEFS: &str = "/etc/login.defs";
/// The unit that gives each stack its podman API socket.
pub const PODMAN_SOCKET_UNIT: &str = "podman.socket";

/// isolate's state file.
pub fn state_file() -> PathBuf {
    Path::new(STATE_DIR).join("state.json")
}

/// What isolate changed to isolate stacks (closed tops, share tops), for exact rollback.
pub fn isolation_record() -> PathBuf {
    Path::new(STATE_DIR).join("isolation.json")
}

/// The lock two runs take in turn.
pub fn lock_file() -> PathBuf {
    Path::new(STATE_DIR).join("lock")
}

/// logind's mark that `user` lingers.
pub fn linger_file(user: &str) -> PathBuf {
    Path::new("/var/lib/systemd/linger").join(user)
}

/// A user's runtime directory (`XDG_RUNTIME_DIR`).
pub fn runtime_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/run/user/{uid}"))
}

/// A user manager's private socket; it accepts uid 0 (systemd checks `uid == 0 || uid == geteuid()`).
pub fn user_manager_socket(uid: u32) -> PathBuf {
    runtime_dir(uid).join("systemd/private")
}

/// Root's podman API socket (the system `podman.socket`): rootful containers' store.
pub const ROOTFUL_PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Where a user's socket-activated podman API listens (root's: the system podman.socket).
pub fn podman_socket(uid: u32) -> PathBuf {
    if uid == 0 {
        return PathBuf::from(ROOTFUL_PODMAN_SOCKET);
    }
    runtime_dir(uid).join("podman/podman.sock")
}

/// The environment a compose tool (or any podman client) needs to reach a user's own podman:
/// runtime dir and socket, with the literal uid.
pub fn podman_env(uid: u32) -> std::collections::BTreeMap<&'static str, String> {
    let host = format!("unix://{}", podman_socket(uid).display());
    [
        ("XDG_RUNTIME_DIR", runtime_dir(uid).display().to_string()),
        ("DOCKER_HOST", host.clone()),
        ("CONTAINER_HOST", host),
    ]
    .into_iter()
    .collect()
}

/// A stack user's home.
pub fn home(user: &str) -> PathBuf {
    Path::new(HOME_BASE).join(user)
}

/// The journal of one migrated data path: one file per (stack, path). Bytes of the path other
/// than letters, digits, `_` and `.` are written `\xNN`, `/` as `-`.
pub fn journal(stack: &str, path: &Path) -> PathBuf {
    let mut name = String::new();
    let bytes = path.as_os_str().as_bytes();
    let bytes = bytes.strip_prefix(b"/").unwrap_or(bytes);
    for &b in bytes {
        match b {
            b'/' => name.push('-'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => name.push(b as char),
            _ => name.push_str(&format!("\\x{b:02x}")),
        }
    }
    Path::new(STATE_DIR)
        .join("journal")
        .join(stack)
        .join(format!("{name}.journal"))
}

/// The directory isolate works on. Derefs to its `Path` for reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Root {
        Root(path.into())
    }

    /// The running system.
    pub fn host() -> Root {
        Root(PathBuf::from("/"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether this is the running system (where processes, mounts and buses are live).
    pub fn is_host(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// Where the host path `path` lies under this root. Only normal components are kept, so
    /// nothing can climb out of the root.
    pub fn at(&self, path: &Path) -> PathBuf {
        let mut out = self.0.clone();
        for c in path.components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }

    pub fn state_file(&self) -> PathBuf {
        self.at(&state_file())
    }

    pub fn state_dir(&self) -> PathBuf {
        self.at(Path::new(STATE_DIR))
    }

    pub fn lock_file(&self) -> PathBuf {
        self.at(&lock_file())
    }

    pub fn linger_file(&self, user: &str) -> PathBuf {
        self.at(&linger_file(user))
    }

    pub fn system_bus_socket(&self) -> PathBuf {
        self.at(Path::new(SYSTEM_BUS_SOCKET))
    }

    pub fn user_manager_socket(&self, uid: u32) -> PathBuf {
        self.at(&user_manager_socket(uid))
    }

    pub fn podman_socket(&self, uid: u32) -> PathBuf {
        self.at(&podman_socket(uid))
    }

    /// The root is a NixOS host.
    pub fn is_nixos(&self) -> bool {
        self.at(Path::new(NIXOS_MARKER)).exists()
    }

    /// The first nologin shell the root has, as shadow's tools would be given it.
    pub fn nologin(&self) -> String {
        [
            "/usr/sbin/nologin",
            "/sbin/nologin",
            "/run/current-system/sw/bin/nologin",
            "/usr/bin/nologin",
        ]
        .into_iter()
        .find(|p| self.at(Path::new(p)).exists())
        .unwrap_or("/usr/sbin/nologin")
        .to_string()
    }
}

impl Deref for Root {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Root {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for Root {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

/// The override file of a stack (root-owned; the stack user reads it).
pub const REACH_OVERRIDE_FILE: &str = "reaches.compose.yaml";

/// Where a stack's `reaches` override is (src/reach writes it, the hand-off's unit names it).
pub fn reach_override_path(stack: &str) -> PathBuf {
    Path::new(STATE_DIR)
        .join("stacks")
        .join(stack)
        .join(REACH_OVERRIDE_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_lie_under_the_root_and_cannot_climb_out() {
        let root = Root::new("/tmp/r");
        assert_eq!(root.at(Path::new("/srv/a")), Path::new("/tmp/r/srv/a"));
        assert_eq!(
            root.at(Path::new("/srv/../../etc")),
            Path::new("/tmp/r/srv/etc")
        );
        assert_eq!(
            root.state_file(),
            Path::new("/tmp/r/var/lib/isolate/state.json")
        );
        assert_eq!(
            Root::host().podman_socket(801),
            Path::new("/run/user/801/podman/podman.sock")
        );
        assert_eq!(
            root.user_manager_socket(801),
            Path::new("/tmp/r/run/user/801/systemd/private")
        );
    }

    #[test]
    fn journal_names_are_one_flat_file_per_path() {
        assert_eq!(
            journal("a", Path::new("/srv/my data/x-y")),
            Path::new("/var/lib/isolate/journal/a/srv-my\\x20data-x\\x2dy.journal")
        );
    }
}
