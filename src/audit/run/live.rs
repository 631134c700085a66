//! What the audit asks of a stack user's systemd and podman side (`LiveCheck`: the real one
//! over the session's ports, tests a fake) and the findings made of the answers: linger,
//! the user manager, the API socket, a compose service whose project does not run.
use super::*;
use crate::host::session::Session;

/// A stack user's systemd and podman side as audit sees it; None where it cannot be asked
/// (no system bus): then no finding is made about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub linger: bool,
    pub manager_active: Option<bool>,
    pub socket_answers: Option<bool>,
}

/// Asks systemd and podman about a stack user (the CLI passes the real one, tests a fake).
pub trait LiveCheck {
    fn check(&self, user: &str, uid: u32) -> Liveness;
    /// Whether the compose project runs in the user's store (None: not asked here).
    fn project_runs(
        &self,
        _uid: u32,
        _project: &str,
    ) -> Option<crate::handoff::service::ProjectRuns> {
        None
    }
}

/// Each applied stack's systemd and podman side, and its compose service's project: an
/// installed service whose containers do not run is a finding, whatever the unit's state.
pub(super) fn liveness_findings(
    policy: &Policy,
    host: &Host<'_>,
    infos: &[StackInfo],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for info in infos.iter().filter(|i| i.applied) {
        let live = host.live.check(&info.user, info.uid);
        let s = Some(info.stack.as_str());
        if !live.linger {
            findings.push(finding(
                FindingKind::LingerOff,
                s,
                None,
                1,
                format!(
                    "linger is off for {}: its containers stop at logout and do not start at boot",
                    info.user
                ),
            ));
        }
        if live.manager_active == Some(false) {
            findings.push(finding(
                FindingKind::ManagerDown,
                s,
                None,
                1,
                format!("user@{}.service is not active", info.uid),
            ));
        }
        if live.socket_answers == Some(false) {
            findings.push(finding(
                FindingKind::SocketDown,
                s,
                None,
                1,
                format!(
                    "{} does not answer GET /_ping",
                    layout::podman_socket(info.uid).display()
                ),
            ));
        }
        let installed = host
            .state
            .handoff
            .get(&info.stack)
            .and_then(|r| r.service.as_ref());
        if let (Some(svc), Some(sp)) = (installed, policy.stacks.get(&info.stack)) {
            let project = sp.handoff.project_of(&sp.name);
            if let Some(crate::handoff::service::ProjectRuns::No(why)) =
                host.live.project_runs(info.uid, &project)
            {
                findings.push(finding(
                    FindingKind::ServiceNotRunning,
                    s,
                    None,
                    1,
                    format!(
                        "{} of {} is installed, but project {project} does not run: {why}",
                        svc.unit, info.user
                    ),
                ));
            }
        }
    }

    findings
}

/// The real answers, from the session's ports (`host::session`): linger, `user@UID` and a real
/// `_ping`, and whether a project runs. Without a session (no system bus) only the linger file
/// can be seen; manager and socket stay unknown.
pub struct SessionCheck<'a> {
    pub root: &'a Root,
    pub session: Option<Session<'a>>,
}

impl LiveCheck for SessionCheck<'_> {
    fn check(&self, user: &str, uid: u32) -> Liveness {
        if self.session.is_none() {
            return Liveness {
                linger: self.root.linger_file(user).exists(),
                ..Liveness::default()
            };
        }
        let facts = crate::observe::Live {
            root: self.root,
            session: self.session,
            ping: true,
        }
        .manager(user, uid);
        Liveness {
            linger: facts.linger,
            manager_active: Some(facts.manager_active),
            socket_answers: Some(facts.ping_ok),
        }
    }

    fn project_runs(
        &self,
        uid: u32,
        project: &str,
    ) -> Option<crate::handoff::service::ProjectRuns> {
        let session = self.session.as_ref()?;
        Some(crate::handoff::service::project_runs(session, uid, project))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    #[allow(unused_imports)]
    use crate::audit::access::{AclEntry, TAG_MASK, TAG_USER};
    #[allow(unused_imports)]
    use crate::audit::attribution::tests::book;
    #[allow(unused_imports)]
    use crate::isolation::record::{ClosedTop, Record};

    #[test]
    fn linger_manager_socket_and_service_of_applied_stacks_only() {
        let (acc, mut state, isolation) =
            (Accounts::default(), State::default(), Record::default());
        // Both have a service installed; paperless's project does not run.
        for stack in ["immich", "paperless"] {
            state.handoff.insert(
                stack.into(),
                crate::handoff::HandoffRecord {
                    service: Some(crate::handoff::service::ServiceRecord {
                        unit: format!("isolate-compose-{stack}.service"),
                        path: "/x".into(),
                    }),
                    ..Default::default()
                },
            );
        }
        let root = Root::new("/nonexistent");
        let host = Host {
            root: &root,
            accounts: &acc,
            state: &state,
            isolation: &isolation,
            live: &Live,
        };
        let f = liveness_findings(
            &policy(),
            &host,
            &[
                info("immich", 800, true),
                info("paperless", 801, true),
                info("new", 802, false),
            ],
        );
        let immich = Some("immich".to_string());
        assert_eq!(
            kinds(&f),
            vec![
                (FindingKind::LingerOff, immich.clone()),
                (FindingKind::ManagerDown, immich.clone()),
                (FindingKind::SocketDown, immich),
                (FindingKind::ServiceNotRunning, Some("paperless".into())),
            ],
            "unknown (None) is no finding, a stack not applied has nothing to check"
        );
    }
}
