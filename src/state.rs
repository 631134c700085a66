// isolate's own record of what it allocated and migrated (ROOT/var/lib/isolate/state.json),
// and the lock that keeps two runs from interleaving. Allocations recorded here are never
// changed, removed or handed to another stack.
use crate::error::{Error, Result};
use crate::ids::{IdMaps, SubidRange};
use crate::sys::etc::write_atomic;
use crate::walk::MigrateMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = "var/lib/isolate";
pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subids: SubidRange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationPhase {
    /// Recorded before the first chown: a crash leaves this, and the next apply finishes.
    Migrating,
    Done,
    /// Recorded before rollback starts; a crash leaves this and `rollback` finishes it.
    RollingBack,
    RolledBack,
}

/// One data path's move from one mapping to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub path: PathBuf,
    pub mode: MigrateMode,
    pub from: IdMaps,
    pub to: IdMaps,
    pub phase: MigrationPhase,
    /// Where the original owners of reowned inodes are journalled (relative to the root).
    pub journal: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRecord {
    pub allocation: Allocation,
    #[serde(default)]
    pub migrations: Vec<Migration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub stacks: BTreeMap<String, StackRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            stacks: BTreeMap::new(),
        }
    }
}

pub fn state_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("state.json")
}

impl State {
    /// Reads the state file; a missing file is an empty state (nothing allocated yet).
    pub fn read(root: &Path) -> Result<State> {
        let path = state_path(root);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let state: State = serde_json::from_str(&text).map_err(|e| {
            Error::HostState(vec![format!(
                "{}: not a valid isolate state file: {e}",
                path.display()
            )])
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::HostState(vec![format!(
                "{}: state version {} is not {} (written by another isolate version)",
                path.display(),
                state.version,
                STATE_VERSION
            )]));
        }
        Ok(state)
    }

    pub fn write(&self, root: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("state serialises");
        text.push('\n');
        write_atomic(&state_path(root), text.as_bytes(), 0o600)
    }

    /// Every subordinate range ever recorded, for any stack.
    pub fn recorded_ranges(&self) -> impl Iterator<Item = (&str, SubidRange)> {
        self.stacks
            .iter()
            .map(|(n, r)| (n.as_str(), r.allocation.subids))
    }

    pub fn migration(&self, stack: &str, path: &Path) -> Option<&Migration> {
        self.stacks
            .get(stack)?
            .migrations
            .iter()
            .rev()
            .find(|m| m.path == path)
    }
}

/// An exclusive lock on the root directory itself (`flock` on its descriptor), held until
/// dropped: two runs never interleave. Locking the directory creates nothing, so a run that
/// refuses leaves the root exactly as it found it (a lock file would be a change of its own).
pub struct RunLock {
    _dir: fs::File,
}

impl RunLock {
    pub fn acquire(root: &Path) -> Result<RunLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root)
            .map_err(|e| Error::io(format!("opening {}", root.display()), e))?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Locked(root.to_path_buf()));
            }
            return Err(Error::io(format!("locking {}", root.display()), err));
        }
        Ok(RunLock { _dir: dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(State::read(d.path()).unwrap(), State::default());
        let mut s = State::default();
        s.stacks.insert(
            "a".into(),
            StackRecord {
                allocation: Allocation {
                    user: "stk-a".into(),
                    uid: 800,
                    gid: 800,
                    subids: SubidRange::new(200000, 65536).unwrap(),
                },
                migrations: vec![],
            },
        );
        s.write(d.path()).unwrap();
        assert_eq!(State::read(d.path()).unwrap(), s);
    }

    #[test]
    fn a_second_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _held = RunLock::acquire(d.path()).unwrap();
        match RunLock::acquire(d.path()) {
            Err(Error::Locked(p)) => assert_eq!(p, d.path()),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn locking_creates_nothing() {
        let d = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(d.path()).unwrap();
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        drop(held);
        RunLock::acquire(d.path()).unwrap();
    }

    #[test]
    fn garbage_state_is_host_state_error() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(STATE_DIR)).unwrap();
        fs::write(state_path(d.path()), "{").unwrap();
        assert_eq!(State::read(d.path()).unwrap_err().exit_code(), 2);
    }
}
