//! What observation asks of systemd and podman, built from the session's two ports
//! (`host::session`): a stack user's manager facts and the running containers that hold a
//! path. Without a session (`--no-systemd`, no system bus) only the linger file is seen and
//! nothing runs.
use super::{ManagerFacts, RunningContainer};
use crate::host::session::Session;
use crate::layout::Root;
use std::path::PathBuf;

#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub root: &'a Root,
    /// None: systemd and podman are not asked.
    pub session: Option<Session<'a>>,
    /// Whether status-style checks (a real `_ping`) are wanted in `manager()`.
    pub ping: bool,
}

impl<'a> Live<'a> {
    /// The answer without systemd: the linger file only, nothing runs.
    pub fn offline(root: &'a Root) -> Self {
        Live {
            root,
            session: None,
            ping: false,
        }
    }

    pub fn manager(&self, user: &str, uid: u32) -> ManagerFacts {
        let offline = || ManagerFacts {
            linger: self.root.linger_file(user).exists(),
            ..ManagerFacts::default()
        };
        let Some(session) = &self.session else {
            return offline();
        };
        let facts = match session.socket_facts(user, uid) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("cannot read systemd facts of {user}: {e}");
                return offline();
            }
        };
        let unit = facts.unit.unwrap_or_default();
        let socket_active = unit.active_state == "active";
        ManagerFacts {
            linger: facts.linger,
            manager_active: facts.manager_state.as_deref() == Some("active"),
            socket_enabled: unit.unit_file_state == "enabled",
            socket_active,
            ping_ok: self.ping && socket_active && session.podman.ping(uid).is_ok(),
        }
    }

    /// Running containers of `owner` (uid) that mount one of `paths` (or a path inside one).
    pub fn running(&self, owner: &str, uid: u32, paths: &[PathBuf]) -> Vec<RunningContainer> {
        let Some(session) = &self.session else {
            return Vec::new();
        };
        if !session.podman.socket_exists(uid) {
            return Vec::new();
        }
        let listed = match session.podman.running_container_mounts(uid) {
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

    /// The users' podman stores, for the hand-off (None: not looked at).
    pub fn stores(&self) -> Option<&Session<'a>> {
        self.session.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::podman::fake::PodmanCall;
    use crate::host::podman::ContainerMounts;
    use crate::host::session::FakeSession;
    use crate::host::systemd::{UnitFacts, UserFacts};

    fn up() -> UserFacts {
        UserFacts {
            linger: true,
            manager_state: Some("active".into()),
            unit: Some(UnitFacts {
                unit_file_state: "enabled".into(),
                active_state: "active".into(),
            }),
        }
    }

    #[test]
    fn manager_facts_come_from_the_ports_and_ping_only_when_asked() {
        let mut fake = FakeSession::default();
        fake.systemd.facts.insert(801, up());
        let root = Root::new("/nonexistent");
        let mut live = Live {
            root: &root,
            session: Some(fake.session()),
            ping: false,
        };
        let want = ManagerFacts {
            linger: true,
            manager_active: true,
            socket_enabled: true,
            socket_active: true,
            ping_ok: false,
        };
        assert_eq!(live.manager("stk-a", 801), want);
        assert!(fake.podman.calls.lock().unwrap().is_empty());
        live.ping = true;
        assert!(live.manager("stk-a", 801).ping_ok);
        assert_eq!(*fake.podman.calls.lock().unwrap(), [PodmanCall::Ping(801)]);
        assert_eq!(
            Live::offline(&root).manager("stk-a", 801),
            ManagerFacts::default()
        );
    }

    #[test]
    fn a_container_list_that_fails_holds_every_path() {
        let mut fake = FakeSession::default();
        fake.podman.running.insert(
            801,
            vec![ContainerMounts {
                name: "web".into(),
                sources: vec!["/srv/a/db".into()],
            }],
        );
        let root = Root::new("/nonexistent");
        let live = Live {
            root: &root,
            session: Some(fake.session()),
            ping: false,
        };
        let paths = [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")];
        let held = live.running("stk-a", 801, &paths);
        assert_eq!(held.len(), 1);
        assert_eq!(
            (held[0].name.as_str(), held[0].data_path.as_path()),
            ("web", paths[0].as_path())
        );
        fake.podman.fail = vec![(PodmanCall::RunningContainerMounts(802), "refused".into())];
        let live = Live {
            root: &root,
            session: Some(fake.session()),
            ping: false,
        };
        let held = live.running("stk-b", 802, &paths);
        assert_eq!(held.len(), 2);
        assert!(held.iter().all(|h| h.name == "(cannot list: refused)"));
    }
}
