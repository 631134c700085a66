// The real systemd and podman side of a stack, adapted to what observe (LiveProbe) and
// apply (StackManager) need: linger, the user manager, podman.socket, _ping, running
// containers. Built only by the CLI.
use crate::apply::StackManager;
use crate::error::Result;
use crate::observe::LiveProbe;
use crate::plan::{ManagerFacts, RunningContainer};
use crate::sys::podman;
use crate::sys::systemd::{DbusSystemd, Systemd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PODMAN_SOCKET_UNIT: &str = "podman.socket";
/// How long the user manager may take to come up after linger is enabled.
pub const MANAGER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long podman.socket may take to become active.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// The first _ping starts `podman system service` by socket activation: allow for it.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Listing containers when checking what holds a data path.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Live<'a> {
    pub root: &'a Path,
    pub systemd: &'a dyn Systemd,
    /// Whether status-style checks (a real _ping) are wanted in `manager()`.
    pub ping: bool,
}

impl Live<'_> {
    fn socket(&self, uid: u32) -> PathBuf {
        podman::socket_path(self.root, uid)
    }
}

impl LiveProbe for Live<'_> {
    fn manager(&self, user: &str, uid: u32) -> ManagerFacts {
        let facts = match self.systemd.user_facts(uid, user, PODMAN_SOCKET_UNIT) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("cannot read systemd facts of {user}: {e}");
                return ManagerFacts {
                    linger: crate::observe::linger_file(self.root, user).exists(),
                    ..ManagerFacts::default()
                };
            }
        };
        let unit = facts.unit.unwrap_or_default();
        let socket_active = unit.active_state == "active";
        ManagerFacts {
            linger: facts.linger,
            manager_active: facts.manager_state.as_deref() == Some("active"),
            socket_enabled: unit.unit_file_state == "enabled",
            socket_active,
            ping_ok: self.ping
                && socket_active
                && podman::ping(&self.socket(uid), PING_TIMEOUT).is_ok(),
        }
    }

    fn running(&self, owner: &str, uid: u32, paths: &[PathBuf]) -> Vec<RunningContainer> {
        let socket = self.socket(uid);
        if !socket.exists() {
            return Vec::new();
        }
        let listed = match podman::running_container_mounts(&socket, LIST_TIMEOUT) {
            Ok(l) => l,
            Err(e) => {
                // Unknown is not "none": report it as a holder so migration refuses without --force.
                return paths
                    .iter()
                    .map(|p| RunningContainer {
                        owner: owner.into(),
                        name: format!("(cannot list: {e})"),
                        data_path: p.clone(),
                    })
                    .collect();
            }
        };
        let mut out = Vec::new();
        for c in listed {
            for p in paths {
                if c.sources
                    .iter()
                    .any(|s| s.starts_with(p) || p.starts_with(s))
                {
                    out.push(RunningContainer {
                        owner: owner.into(),
                        name: c.name.clone(),
                        data_path: p.clone(),
                    });
                }
            }
        }
        out
    }

    fn stores(&self) -> Option<&dyn crate::handoff::stores::Stores> {
        Some(self)
    }
}

impl StackManager for Live<'_> {
    fn enable_linger(&self, uid: u32) -> Result<()> {
        self.systemd.enable_linger(uid)?;
        self.systemd.wait_user_manager(uid, MANAGER_TIMEOUT)
    }

    fn start_podman_socket(&self, uid: u32) -> Result<()> {
        self.systemd.wait_user_manager(uid, MANAGER_TIMEOUT)?;
        self.systemd
            .enable_and_start_user_unit(uid, PODMAN_SOCKET_UNIT, SOCKET_TIMEOUT)?;
        podman::ping(&self.socket(uid), PING_TIMEOUT)
    }
}

/// The real D-Bus backend for a root.
pub fn dbus(root: &Path) -> DbusSystemd {
    DbusSystemd::new(root)
}
