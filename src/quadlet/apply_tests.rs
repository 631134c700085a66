//! The quadlet move end to end on a temporary root with the recording systemd fake: observe,
//! plan, apply (root's units stopped, files parked, the stack user's written and started),
//! a second run that finds everything in place, a run after a kill between parking and
//! removing, and rollback putting root's files back as they were and starting them.
use super::observe::observe_stack;
use super::plan::{self, QuadletStep, Sides};
use super::{apply, place, record, rollback};
use crate::host::session::FakeSession;
use crate::host::systemd::fake::SystemdCall;
use crate::host::systemd::Manager;
use crate::layout::Root;
use crate::model::{NoteKind, Outcome, Planned};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const POD: &str = "[Pod]\nPodName=app\n\n[Install]\nWantedBy=multi-user.target\n";
const DB: &str = "[Container]\nImage=localhost/app-db:1\nPod=app.pod\nUser=999\nVolume=/srv/app/pg:/var/lib/pg\n\n[Service]\nUser=root\n";
const DIR: &str = "/etc/containers/systemd";

fn sides() -> Sides {
    Sides {
        stack: "app".into(),
        user: "stk-app".into(),
        uid: 801,
        home: "/var/lib/isolate/home/stk-app".into(),
        legacy_user: "root".into(),
        legacy_uid: 0,
        legacy_home: "/root".into(),
    }
}

fn paths() -> Vec<PathBuf> {
    vec![
        Path::new(DIR).join("app.pod"),
        Path::new(DIR).join("db.container"),
    ]
}

/// A root with root's two quadlet files (mode 0640) and quadlet's generator.
fn host() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let dir = root.at(Path::new(DIR));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [("app.pod", POD), ("db.container", DB)] {
        std::fs::write(dir.join(name), text).unwrap();
        std::fs::set_permissions(
            dir.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
    }
    let generator = root.at(Path::new(super::observe::GENERATORS[1]));
    std::fs::create_dir_all(generator.parent().unwrap()).unwrap();
    std::fs::write(generator, "").unwrap();
    (d, root)
}

fn planned(root: &Root, fake: &FakeSession) -> (Planned<QuadletStep>, Vec<String>) {
    let facts = observe_stack(root, &sides(), &paths(), Some(&fake.systemd)).unwrap();
    let mut out = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut out, &mut refusals, &sides(), &facts);
    (out, refusals)
}

fn run_all(root: &Root, fake: &FakeSession, steps: &[QuadletStep]) -> Vec<Outcome> {
    let session = fake.session();
    steps
        .iter()
        .map(|s| apply::run(root, s, Some(&session)).unwrap())
        .collect()
}

#[test]
fn a_rootful_pod_moves_to_the_stack_users_quadlets_and_back() {
    let (_d, root) = host();
    let mut fake = FakeSession::default();
    fake.systemd
        .active
        .insert((Manager::System, "app-pod.service".into()));
    let (first, refusals) = planned(&root, &fake);
    assert!(refusals.is_empty(), "{refusals:?}");
    let kinds: Vec<&str> = first
        .steps
        .iter()
        .map(|s| match s {
            QuadletStep::RetireLegacy { .. } => "retire",
            QuadletStep::Install { .. } => "install",
        })
        .collect();
    assert_eq!(kinds, ["retire", "install"]);
    assert_eq!(
        run_all(&root, &fake, &first.steps),
        [Outcome::Done, Outcome::Done]
    );
    let users = Path::new(place::USERS_DIR).join("801");
    let parked = place::parked_dir("app");
    for name in ["app.pod", "db.container"] {
        assert!(!root.at(&Path::new(DIR).join(name)).exists(), "{name} left");
        assert!(root.at(&parked.join(name)).exists(), "{name} not parked");
        let meta = std::fs::metadata(root.at(&users.join(name))).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o644));
    }
    let installed = std::fs::read_to_string(root.at(&users.join("db.container"))).unwrap();
    assert!(installed.contains("# isolate: removed \"User=root\""));
    assert!(
        installed.contains("User=999\n"),
        "the container's own user stays"
    );
    let pod = std::fs::read_to_string(root.at(&users.join("app.pod"))).unwrap();
    assert!(pod.ends_with("WantedBy=default.target\n"), "{pod}");
    let sys = Manager::System;
    let user = Manager::User(801);
    let stop = |m, u: &str| SystemdCall::StopIn {
        manager: m,
        unit: u.into(),
    };
    let start = |m, u: &str| SystemdCall::StartIn {
        manager: m,
        unit: u.into(),
    };
    assert_eq!(
        *fake.systemd.calls.lock().unwrap(),
        [
            stop(sys, "db.service"),
            stop(sys, "app-pod.service"),
            SystemdCall::Reload(sys),
            SystemdCall::WaitUserManager(801),
            SystemdCall::Reload(user),
            start(user, "app-pod.service"),
            start(user, "db.service"),
        ]
    );

    // Again: everything in place, nothing to do.
    let (again, refusals) = planned(&root, &fake);
    assert!(refusals.is_empty() && again.steps.is_empty(), "{again:?}");
    assert_eq!(again.notes.len(), 1);
    assert_eq!(again.notes[0].kind, NoteKind::Present);

    // Rollback: the stack's units stop and its files go, then root's come back as they were.
    fake.systemd.calls.lock().unwrap().clear();
    let session = fake.session();
    rollback::stop_stack(&root, "app", Some(&session)).unwrap();
    assert!(!root.at(&users.join("db.container")).exists());
    rollback::restore_legacy(&root, "app", Some(&session)).unwrap();
    for (name, text) in [("app.pod", POD), ("db.container", DB)] {
        let at = root.at(&Path::new(DIR).join(name));
        assert_eq!(std::fs::read_to_string(&at).unwrap(), text);
        assert_eq!(std::fs::metadata(&at).unwrap().mode() & 0o777, 0o640);
    }
    assert!(!root.at(&record::path("app")).exists());
    assert!(!root.at(&parked).exists());
    // The stack user's manager is not running in this root: nothing to stop there.
    assert_eq!(
        *fake.systemd.calls.lock().unwrap(),
        [
            SystemdCall::Reload(sys),
            start(sys, "app-pod.service"),
            start(sys, "db.service"),
        ]
    );
}

#[test]
fn a_run_killed_between_parking_and_removing_converges() {
    let (_d, root) = host();
    let fake = FakeSession::default();
    // Killed after db.container was parked, before it was removed from root's directory.
    let parked = place::parked_dir("app");
    std::fs::create_dir_all(root.at(&parked)).unwrap();
    std::fs::write(root.at(&parked.join("db.container")), DB).unwrap();
    std::fs::remove_file(root.at(&Path::new(DIR).join("app.pod"))).unwrap();
    std::fs::write(root.at(&parked.join("app.pod")), POD).unwrap();
    let (steps, refusals) = planned(&root, &fake);
    assert!(refusals.is_empty(), "{refusals:?}");
    match &steps.steps[0] {
        QuadletStep::RetireLegacy { files, .. } => {
            assert_eq!(files, &[Path::new(DIR).join("db.container")])
        }
        other => panic!("{other:?}"),
    }
    run_all(&root, &fake, &steps.steps);
    assert!(!root.at(&Path::new(DIR).join("db.container")).exists());
    let (again, _) = planned(&root, &fake);
    assert!(again.steps.is_empty(), "{again:?}");
}

#[test]
fn a_linked_quadlet_directory_is_not_followed() {
    let (d, root) = host();
    let fake = FakeSession::default();
    let (steps, _) = planned(&root, &fake);
    // Someone made the stack user's directory a link to a place of theirs.
    let users = root.at(Path::new(place::USERS_DIR));
    std::fs::create_dir_all(&users).unwrap();
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, users.join("801")).unwrap();
    let e = observe_stack(&root, &sides(), &paths(), None).unwrap_err();
    assert!(e.to_string().contains("no symbolic link followed"), "{e}");
    let session = fake.session();
    let install = steps.steps.last().unwrap();
    let e = apply::run(&root, install, Some(&session)).unwrap_err();
    assert!(e.to_string().contains("no symbolic link followed"), "{e}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn status_names_a_legacy_file_back_in_place_and_a_legacy_unit_still_active() {
    let (_d, root) = host();
    let mut fake = FakeSession::default();
    let (steps, _) = planned(&root, &fake);
    run_all(&root, &fake, &steps.steps);
    let clean = super::status::lines(&root, "app", Some(&fake.systemd));
    assert_eq!(
        clean,
        ["quadlets: app.pod, db.container in /etc/containers/systemd/users/801; app-pod.service active, db.service active"]
    );
    // Someone put root's db.container back and started it by hand.
    std::fs::write(root.at(&Path::new(DIR).join("db.container")), DB).unwrap();
    fake.systemd.calls.lock().unwrap().clear();
    fake.systemd
        .active
        .insert((Manager::System, "db.service".into()));
    let lines = super::status::lines(&root, "app", Some(&fake.systemd));
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[1].starts_with("left behind: legacy quadlet file /etc/containers/systemd/db.container is in place again: the system manager generates its unit"));
    assert_eq!(
        lines[2],
        "left behind: legacy unit db.service is active in the system manager while the stack runs as its own user"
    );
}
