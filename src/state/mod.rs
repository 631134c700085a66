//! isolate's own record of what it allocated and migrated (ROOT/var/lib/isolate/state.json),
//! and the lock that keeps two runs from interleaving. Allocations recorded here are never
//! changed, removed or handed to another stack.
pub mod handoff;
pub mod quota;

use crate::error::{Error, Result};
use crate::host::files::write_atomic;
use crate::ids::{IdMaps, Mapping, SubidRange};
use crate::layout::Root;
use crate::migration::MigrateMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subids: SubidRange,
}

impl Allocation {
    /// The mapping the stack's containers get: uid 0 -> the stack user, 1.. -> its range.
    pub fn maps(&self) -> IdMaps {
        IdMaps {
            uid: Mapping::new(self.uid, vec![self.subids]),
            gid: Mapping::new(self.gid, vec![self.subids]),
        }
    }
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

impl MigrationPhase {
    /// The word the state file and `status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationPhase::Migrating => "migrating",
            MigrationPhase::Done => "done",
            MigrationPhase::RollingBack => "rolling_back",
            MigrationPhase::RolledBack => "rolled_back",
        }
    }
}

/// One data path's move from one mapping to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub path: PathBuf,
    pub mode: MigrateMode,
    pub from: IdMaps,
    pub to: IdMaps,
    pub phase: MigrationPhase,
    /// Where the original owners of reowned inodes are journalled (a host path; older state
    /// files hold it relative to the root, which `Root::at` reads the same).
    pub journal: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRecord {
    pub allocation: Allocation,
    #[serde(default)]
    pub migrations: Vec<Migration>,
}

/// The shared group's gid, once isolate chose it itself (a NixOS export declares the group
/// before it exists); never changes after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub stacks: BTreeMap<String, StackRecord>,
    /// Per stack: what the hand-off (env files, volumes, service) changed, for rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub handoff: BTreeMap<String, handoff::HandoffRecord>,
    /// Per stack: the disk limits isolate set (`disk_max`), for removal and rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quota: BTreeMap<String, quota::QuotaRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_group: Option<GroupRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            stacks: BTreeMap::new(),
            handoff: BTreeMap::new(),
            quota: BTreeMap::new(),
            shared_group: None,
        }
    }
}

impl State {
    /// Reads the state file; a missing file is an empty state (nothing allocated yet).
    pub fn read(root: &Root) -> Result<State> {
        let path = root.state_file();
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

    pub fn write(&self, root: &Root) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("state serialises");
        text.push('\n');
        write_atomic(&root.state_file(), text.as_bytes(), 0o600)
    }

    /// isolate's own account names: every recorded stack user (and its group of the same name)
    /// and the shared group.
    pub fn own_names(&self, shared_group: Option<&str>) -> std::collections::BTreeSet<String> {
        self.stacks
            .values()
            .map(|r| r.allocation.user.clone())
            .chain(shared_group.map(str::to_string))
            .collect()
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
    pub fn acquire(root: &Root) -> Result<RunLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root.path())
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
        let t = tempfile::tempdir().unwrap();
        let d = Root::new(t.path());
        assert_eq!(State::read(&d).unwrap(), State::default());
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
        s.write(&d).unwrap();
        assert_eq!(State::read(&d).unwrap(), s);
    }

    #[test]
    fn a_second_lock_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = Root::new(t.path());
        let _held = RunLock::acquire(&d).unwrap();
        match RunLock::acquire(&d) {
            Err(Error::Locked(p)) => assert_eq!(p, t.path()),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn locking_creates_nothing() {
        let t = tempfile::tempdir().unwrap();
        let d = Root::new(t.path());
        let held = RunLock::acquire(&d).unwrap();
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
        drop(held);
        RunLock::acquire(&d).unwrap();
    }

    #[test]
    fn phase_words_are_the_state_files_words() {
        for phase in [
            MigrationPhase::Migrating,
            MigrationPhase::Done,
            MigrationPhase::RollingBack,
            MigrationPhase::RolledBack,
        ] {
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::Value::from(phase.as_str())
            );
        }
    }

    #[test]
    fn garbage_state_is_host_state_error() {
        let t = tempfile::tempdir().unwrap();
        let d = Root::new(t.path());
        fs::create_dir_all(d.state_dir()).unwrap();
        fs::write(d.state_file(), "{").unwrap();
        assert_eq!(State::read(&d).unwrap_err().exit_code(), 2);
    }
}
