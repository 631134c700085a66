//! A stack user's session as observe and apply need it — linger, the user manager,
//! podman.socket, `_ping`, running containers — built on systemd over D-Bus and the podman
//! API. `LiveSession` is the real one; `OfflineSession` answers for roots without systemd.
use crate::apply::{narrate, StackManager};
use crate::error::Result;
use crate::host::journal;
use crate::host::podman;
use crate::host::systemd::DbusSystemd;
use crate::layout::{Root, PODMAN_SOCKET_UNIT};
use crate::observe::{LiveProbe, ManagerFacts, RunningContainer};
use std::path::PathBuf;
use std::time::Duration;

/// How long the user manager may take to come up after linger is enabled.
pub const MANAGER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long podman.socket may take to become active.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// The first _ping starts `podman system service` by socket activation: allow for it.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Listing containers when checking what holds a data path.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LiveSession<'a> {
    pub root: &'a Root,
    pub systemd: &'a DbusSystemd,
    /// Whether status-style checks (a real _ping) are wanted in `manager()`.
    pub ping: bool,
}

impl LiveProbe for LiveSession<'_> {
    fn manager(&self, user: &str, uid: u32) -> ManagerFacts {
        let facts = match self.systemd.user_facts(uid, user, PODMAN_SOCKET_UNIT) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("cannot read systemd facts of {user}: {e}");
                return OfflineSession { root: self.root }.manager(user, uid);
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
                && podman::ping(&self.root.podman_socket(uid), PING_TIMEOUT).is_ok(),
        }
    }

    fn running(&self, owner: &str, uid: u32, paths: &[PathBuf]) -> Vec<RunningContainer> {
        let socket = self.root.podman_socket(uid);
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

impl LiveSession<'_> {
    /// Waits (narrated) for the user manager of `uid`; a failure carries its journal lines.
    pub fn wait_manager(&self, uid: u32) -> Result<()> {
        let unit = format!("user@{uid}.service");
        let _wait = narrate::wait(
            format!("{unit} (the user manager of uid {uid})"),
            MANAGER_TIMEOUT,
        );
        self.systemd
            .wait_user_manager(uid, MANAGER_TIMEOUT)
            .map_err(|e| journal::annotate(e, &self.journal(), &journal::Unit::System(unit)))
    }

    pub fn journal(&self) -> journal::Journalctl<'_> {
        journal::Journalctl { root: self.root }
    }
}

impl StackManager for LiveSession<'_> {
    fn enable_linger(&self, uid: u32) -> Result<()> {
        self.systemd.enable_linger(uid)?;
        self.wait_manager(uid)
    }

    fn start_podman_socket(&self, uid: u32) -> Result<()> {
        self.wait_manager(uid)?;
        let user_unit = |unit: &str| journal::Unit::User {
            uid,
            unit: unit.to_string(),
        };
        {
            let _wait = narrate::wait(format!("{PODMAN_SOCKET_UNIT} of uid {uid}"), SOCKET_TIMEOUT);
            self.systemd
                .enable_and_start_user_unit(uid, PODMAN_SOCKET_UNIT, SOCKET_TIMEOUT)
                .map_err(|e| {
                    journal::annotate(e, &self.journal(), &user_unit(PODMAN_SOCKET_UNIT))
                })?;
        }
        let _wait = narrate::wait(
            format!("podman's API of uid {uid} to answer (podman.service)"),
            PING_TIMEOUT,
        );
        podman::ping(&self.root.podman_socket(uid), PING_TIMEOUT)
            .map_err(|e| journal::annotate(e, &self.journal(), &user_unit("podman.service")))
    }
}

/// The answer without systemd (`--no-systemd`, or a root with no bus): only the linger file
/// can be seen, nothing runs.
pub struct OfflineSession<'a> {
    pub root: &'a Root,
}

impl LiveProbe for OfflineSession<'_> {
    fn manager(&self, user: &str, _uid: u32) -> ManagerFacts {
        ManagerFacts {
            linger: self.root.linger_file(user).exists(),
            ..ManagerFacts::default()
        }
    }
    fn running(&self, _owner: &str, _uid: u32, _paths: &[PathBuf]) -> Vec<RunningContainer> {
        Vec::new()
    }
}

impl crate::audit::run::LiveCheck for LiveSession<'_> {
    /// Linger, `user@UID` and a real `_ping` (when `ping` is set).
    fn check(&self, user: &str, uid: u32) -> crate::audit::run::Liveness {
        let facts = self.manager(user, uid);
        crate::audit::run::Liveness {
            linger: facts.linger,
            manager_active: Some(facts.manager_active),
            socket_answers: self.ping.then_some(facts.ping_ok),
        }
    }

    fn project_runs(
        &self,
        uid: u32,
        project: &str,
    ) -> Option<crate::handoff::service::ProjectRuns> {
        Some(crate::handoff::service::project_runs(self, uid, project))
    }
}
