//! What observation asks of the legacy user's podman for the legacy side of `reaches`, through
//! the recording session fakes: only targets that move neither now nor earlier are asked about,
//! her socket is started only when it is silent, and only her running containers count.
use super::LegacyView;
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::host::podman::fake::PodmanCall;
use crate::host::podman::store::ProjectContainer;
use crate::host::session::FakeSession;
use crate::policy::Policy;
use crate::state::State;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const POLICY: &str = "legacy_owner = \"alice\"\n\
[stacks.proxy]\ndata = []\ncompose = [\"/srv/proxy/compose.yaml\"]\nservice = true\nreaches = [\"backend:backend:8080\"]\n\
[stacks.backend]\ndata = []\ncompose = [\"/srv/backend/compose.yaml\"]\nservice = true\n";

fn accounts() -> Accounts {
    Accounts {
        passwd: parse_passwd(
            Path::new("/etc/passwd"),
            "alice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap(),
        group: parse_group(Path::new("/etc/group"), "alice:x:1000:\n").unwrap(),
        subuid: parse_subid(Path::new("/etc/subuid"), "").unwrap(),
        subgid: parse_subid(Path::new("/etc/subgid"), "").unwrap(),
    }
}

fn container(name: &str, state: &str) -> ProjectContainer {
    ProjectContainer {
        name: name.into(),
        image: "localhost/busybox".into(),
        image_id: "x".into(),
        state: state.into(),
        volumes: vec![],
    }
}

fn homes(stacks: &[&str]) -> BTreeMap<String, PathBuf> {
    stacks
        .iter()
        .map(|s| (s.to_string(), PathBuf::from(format!("/home/stk-{s}"))))
        .collect()
}

fn fake() -> FakeSession {
    let mut fake = FakeSession::default();
    fake.podman.containers.insert(
        1000,
        vec![
            container("backend_backend_1", "running"),
            container("backend_db_1", "exited"),
        ],
    );
    fake
}

#[test]
fn the_still_legacy_target_of_a_selected_stack_is_asked_of_her_podman() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let (acc, state) = (accounts(), State::default());
    let fake = fake();
    let session = fake.session();
    let view = LegacyView {
        accounts: &acc,
        state: &state,
        session: &session,
    };
    let seen = view.targets(&p, &homes(&["proxy"]));
    assert_eq!(seen["backend"].running, ["backend_backend_1"]);
    // Her socket exists: nothing started, only her project listed.
    assert_eq!(
        *fake.podman.calls.lock().unwrap(),
        [PodmanCall::ProjectContainers {
            uid: 1000,
            project: "backend".into()
        }]
    );
    assert!(fake.systemd.calls.lock().unwrap().is_empty());
}

#[test]
fn a_silent_socket_is_made_to_answer_and_a_moving_or_moved_target_is_not_asked_about() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let acc = accounts();
    let mut fake = fake();
    fake.podman.no_socket.insert(1000);
    let session = fake.session();
    let state = State::default();
    let view = LegacyView {
        accounts: &acc,
        state: &state,
        session: &session,
    };
    assert!(view.targets(&p, &homes(&["proxy"])).contains_key("backend"));
    assert_eq!(fake.podman.calls.lock().unwrap()[0], PodmanCall::Ping(1000));
    // Both move now: the target's own override publishes; nothing asked.
    fake.podman.calls.lock().unwrap().clear();
    assert!(view.targets(&p, &homes(&["proxy", "backend"])).is_empty());
    // The target runs as its own user already: nothing asked.
    let mut state = State::default();
    state.handoff.insert(
        "backend".into(),
        crate::state::handoff::HandoffRecord {
            service: Some(crate::state::handoff::ServiceRecord {
                unit: "isolate-compose-backend.service".into(),
                path: "/x".into(),
            }),
            ..Default::default()
        },
    );
    let view = LegacyView {
        accounts: &acc,
        state: &state,
        session: &session,
    };
    assert!(view.targets(&p, &homes(&["proxy"])).is_empty());
    assert!(fake.podman.calls.lock().unwrap().is_empty());
}
