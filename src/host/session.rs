//! The one session isolate holds with a user's side of the host: the systemd port (linger, the
//! user manager, units) and the podman port (the user's API socket), and the few steps that
//! need both (start podman.socket and prove it with `_ping`). Consumers take a `Session` and
//! build their own facts from it; nothing here knows what observe, apply, audit or the
//! hand-off make of the answers.
use crate::error::{Error, Result};
use crate::host::journal;
use crate::host::podman::store::{Copied, ProjectContainer, VolumeInfo};
use crate::host::podman::PodmanPort;
use crate::host::systemd::{SystemdPort, UserFacts};
use crate::layout::PODMAN_SOCKET_UNIT;
use crate::logging::narrate;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long the user manager may take to come up after linger is enabled.
pub const MANAGER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long podman.socket may take to become active.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a compose service may take to bring its project up (images are local).
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a user manager that is not running is waited for before a legacy store counts as
/// unreachable.
pub const LEGACY_MANAGER_TIMEOUT: Duration = Duration::from_secs(5);

/// A podman store that cannot be reached: its socket is silent and its manager is down.
#[derive(Debug, thiserror::Error)]
#[error("the podman store of uid {uid} cannot be reached: its API socket {} does not answer and its user manager is not running ({source}); log the user in or enable its linger, then apply again", socket.display())]
pub struct Unreachable {
    pub uid: u32,
    pub socket: PathBuf,
    #[source]
    pub source: Box<Error>,
}

/// Root's podman store (rootful containers) cannot be reached: its system socket is silent.
/// isolate never starts root's podman service itself.
#[derive(Debug, thiserror::Error)]
#[error("root's podman store cannot be reached: its API socket {} does not answer ({source}); start it with `systemctl start podman.socket`, then apply again", socket.display())]
pub struct RootfulUnreachable {
    pub socket: PathBuf,
    #[source]
    pub source: Box<Error>,
}

/// The two ports of the session. Copy: pass it by value.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    pub systemd: &'a dyn SystemdPort,
    pub podman: &'a dyn PodmanPort,
}

impl<'a> Session<'a> {
    /// logind SetUserLinger, then wait (bounded) for user@UID.service and its manager.
    pub fn enable_linger(&self, uid: u32) -> Result<()> {
        self.systemd.enable_linger(uid)?;
        self.wait_manager(uid)
    }

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

    /// Enable and start podman.socket in the user's manager, then prove it: GET /_ping == OK.
    /// Each wait is narrated; a failed one carries the unit's journal lines.
    pub fn start_podman_socket(&self, uid: u32) -> Result<()> {
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
            crate::host::podman::port::PING_TIMEOUT,
        );
        self.podman
            .ping(uid)
            .map_err(|e| journal::annotate(e, &self.journal(), &user_unit("podman.service")))
    }

    /// The journal as the systemd port reads it.
    pub fn journal(&self) -> PortJournal<'a> {
        PortJournal(self.systemd)
    }

    /// Linger, the manager's state and podman.socket in it.
    pub fn socket_facts(&self, user: &str, uid: u32) -> Result<UserFacts> {
        self.systemd.user_facts(uid, user, PODMAN_SOCKET_UNIT)
    }

    /// Whether the user's API socket exists (observation never starts one).
    pub fn socket_listening(&self, uid: u32) -> bool {
        self.podman.socket_exists(uid)
    }

    /// Makes the user's API socket answer `_ping`: starts podman.socket (not enabled) in the
    /// user's manager when it does not. For a store isolate does not own (the legacy user's).
    pub fn ensure_socket(&self, uid: u32) -> Result<()> {
        let pinged = self.podman.ping(uid);
        if pinged.is_ok() {
            return Ok(());
        }
        if let (0, Err(source)) = (uid, pinged) {
            return Err(Error::host(RootfulUnreachable {
                socket: self.podman.socket(uid),
                source: Box::new(source),
            }));
        }
        self.systemd
            .wait_user_manager(uid, LEGACY_MANAGER_TIMEOUT)
            .map_err(|source| {
                Error::host(Unreachable {
                    uid,
                    socket: self.podman.socket(uid),
                    source: Box::new(source),
                })
            })?;
        self.systemd
            .start_user_unit(uid, PODMAN_SOCKET_UNIT, SOCKET_TIMEOUT)?;
        self.podman.ping(uid)
    }

    /// (enabled, active or starting) of `unit` in the user's manager; None when the manager is
    /// not running (or cannot be asked).
    pub fn unit_state(&self, user: &str, uid: u32, unit: &str) -> Option<(bool, bool)> {
        let facts = self.systemd.user_facts(uid, user, unit).ok()?;
        // A unit still starting (at boot, compose brings the project up) counts as running:
        // apply must not restart it under its own start job.
        facts.unit.map(|u| {
            (
                u.unit_file_state == "enabled",
                matches!(
                    u.active_state.as_str(),
                    "active" | "activating" | "reloading"
                ),
            )
        })
    }

    /// Reload, enable and (re)start `unit` in the user's manager; waits until it is active.
    /// Narrated; a failure carries the unit's last journal lines.
    pub fn start_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.wait_manager(uid)?;
        let _wait = narrate::wait(
            format!("{unit} of uid {uid} to start (compose brings the project up)"),
            SERVICE_TIMEOUT,
        );
        self.systemd
            .reload_enable_and_restart_user_unit(uid, unit, SERVICE_TIMEOUT)
            .map_err(|e| {
                let unit = journal::Unit::User {
                    uid,
                    unit: unit.to_string(),
                };
                journal::annotate(e, &self.journal(), &unit)
            })
    }

    /// Stop and disable `unit` in the user's manager.
    pub fn stop_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.systemd
            .stop_and_disable_user_unit(uid, unit, SERVICE_TIMEOUT)
    }

    pub fn image_id(&self, uid: u32, image: &str) -> Result<Option<String>> {
        self.podman.image_id(uid, image)
    }

    pub fn project_containers(&self, uid: u32, project: &str) -> Result<Vec<ProjectContainer>> {
        self.podman.project_containers(uid, project)
    }

    pub fn copy_image(&self, from: u32, to: u32, image: &str) -> Result<Copied> {
        self.podman.copy_image(from, to, image)
    }

    pub fn project_volumes(&self, uid: u32, project: &str) -> Result<Vec<VolumeInfo>> {
        self.podman.project_volumes(uid, project)
    }

    pub fn volume(&self, uid: u32, name: &str) -> Result<Option<VolumeInfo>> {
        self.podman.volume(uid, name)
    }

    pub fn create_volume(
        &self,
        uid: u32,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo> {
        self.podman.create_volume(uid, name, labels)
    }

    /// How long a started project may take to show all its containers running.
    pub fn running_timeout(&self) -> Duration {
        self.podman.running_timeout()
    }
}

/// The journal through the systemd port (`journal::JournalTail` over `SystemdPort::journal_tail`).
pub struct PortJournal<'a>(&'a dyn SystemdPort);

impl journal::JournalTail for PortJournal<'_> {
    fn tail(&self, unit: &journal::Unit, n: usize) -> Vec<String> {
        self.0.journal_tail(unit, n)
    }
}

/// Both recording fakes, for tests that need a whole session.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct FakeSession {
    pub systemd: crate::host::systemd::fake::FakeSystemd,
    pub podman: crate::host::podman::fake::FakePodman,
}

#[cfg(any(test, feature = "testing"))]
impl FakeSession {
    pub fn session(&self) -> Session<'_> {
        Session {
            systemd: &self.systemd,
            podman: &self.podman,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::podman::fake::PodmanCall;
    use crate::host::systemd::fake::SystemdCall;
    use crate::host::systemd::UnitFacts;

    #[test]
    fn a_socket_that_answers_is_not_started_again() {
        let fake = FakeSession::default();
        fake.session().ensure_socket(1000).unwrap();
        assert!(fake.systemd.calls.lock().unwrap().is_empty());
        assert_eq!(*fake.podman.calls.lock().unwrap(), [PodmanCall::Ping(1000)]);
    }

    #[test]
    fn a_silent_socket_is_started_not_enabled_and_pinged_again() {
        let mut fake = FakeSession::default();
        fake.podman.fail = vec![(PodmanCall::Ping(1000), "refused".into())];
        let err = fake.session().ensure_socket(1000).unwrap_err();
        assert_eq!(err.to_string(), "refused");
        assert_eq!(
            *fake.systemd.calls.lock().unwrap(),
            [
                SystemdCall::WaitUserManager(1000),
                SystemdCall::Start {
                    uid: 1000,
                    unit: PODMAN_SOCKET_UNIT.into()
                }
            ]
        );
        assert_eq!(fake.podman.calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_unreachable_store_says_why_and_keeps_the_cause() {
        let mut fake = FakeSession::default();
        fake.podman.fail = vec![(PodmanCall::Ping(1000), "refused".into())];
        fake.systemd.fail = vec![(SystemdCall::WaitUserManager(1000), "timed out".into())];
        let err = fake.session().ensure_socket(1000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the podman store of uid 1000 cannot be reached: its API socket \
             /run/user/1000/podman/podman.sock does not answer and its user manager is not \
             running (timed out); log the user in or enable its linger, then apply again"
        );
        assert_eq!(err.exit_code(), crate::error::EXIT_FAILURE);
        let cause = std::error::Error::source(&err).expect("the manager's error is the cause");
        assert_eq!(cause.to_string(), "timed out");
    }

    /// Issue 24: root's store is the system podman.socket; isolate neither waits for a user
    /// manager of uid 0 nor starts root's service: it says what to start.
    #[test]
    fn roots_silent_socket_is_named_with_its_fix_and_nothing_is_started() {
        let mut fake = FakeSession::default();
        fake.podman.fail = vec![(PodmanCall::Ping(0), "refused".into())];
        let err = fake.session().ensure_socket(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "root's podman store cannot be reached: its API socket /run/podman/podman.sock \
             does not answer (refused); start it with `systemctl start podman.socket`, then \
             apply again"
        );
        assert!(fake.systemd.calls.lock().unwrap().is_empty());
        let cause = std::error::Error::source(&err).expect("the ping's error is the cause");
        assert_eq!(cause.to_string(), "refused");
    }

    #[test]
    fn a_unit_still_starting_counts_as_running() {
        let mut fake = FakeSession::default();
        fake.systemd.facts.insert(
            801,
            UserFacts {
                unit: Some(UnitFacts {
                    unit_file_state: "enabled".into(),
                    active_state: "activating".into(),
                }),
                ..UserFacts::default()
            },
        );
        let session = fake.session();
        assert_eq!(
            session.unit_state("stk-a", 801, "x.service"),
            Some((true, true))
        );
        session.stop_unit(801, "x.service").unwrap();
        assert_eq!(
            session.unit_state("stk-a", 801, "x.service"),
            Some((false, false))
        );
    }
}
