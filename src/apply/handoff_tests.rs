//! The hand-off's planning over hand-built facts and its image step over a recording fake:
//! what is copied, what is already there, what the legacy store lacks, a load with the
//! wrong ID, and the left-behind containers named with the command that removes them.
use crate::apply::Outcome;
use crate::handoff::*;
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::host::podman::fake::FakePodman;
use crate::host::podman::store::ProjectContainer;
use crate::host::session::FakeSession;
use crate::layout::Root;
use crate::observe::Observed;
use crate::plan::{plan, NoteKind, Options, Step};
use crate::policy::Policy;
use std::path::Path;

pub(super) const POLICY: &str = "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nimages = [\"localhost/extra\"]\ncompose = [\"/srv/app/compose.yaml\"]\n";

pub(super) fn observed() -> Observed {
    Observed {
        accounts: Accounts {
            passwd: parse_passwd(
                Path::new("/etc/passwd"),
                "alice:x:1000:1000::/home/alice:/bin/sh\n",
            )
            .unwrap(),
            group: parse_group(Path::new("/etc/group"), "alice:x:1000:\n").unwrap(),
            subuid: parse_subid(Path::new("/etc/subuid"), "alice:100000:65536\n").unwrap(),
            subgid: parse_subid(Path::new("/etc/subgid"), "alice:100000:65536\n").unwrap(),
        },
        nologin: "/usr/sbin/nologin".into(),
        ..Observed::default()
    }
}

pub(super) fn container(name: &str, image: &str) -> ProjectContainer {
    ProjectContainer {
        name: name.into(),
        image: image.into(),
        image_id: "x".into(),
        state: "exited".into(),
        volumes: vec![],
    }
}

pub(super) fn opts() -> Options {
    Options {
        systemd: true,
        ..Options::default()
    }
}

#[test]
fn images_of_compose_policy_and_legacy_containers_are_copied_once_each() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let mut o = observed();
    let mut facts = StackFacts::default();
    facts.compose.images = vec!["localhost/app:1".into(), "localhost/gone".into()];
    facts.legacy = Some(LegacyStore {
        user: "alice".into(),
        uid: 1000,
        containers: vec![
            container("app_web_1", "localhost/app:1"),
            container("app_old_1", "localhost/old"),
        ],
        images: [
            ("localhost/app:1", Some("sha256:aaa")),
            ("localhost/gone", None),
            ("localhost/extra", Some("sha256:eee")),
            ("localhost/old", Some("sha256:ooo")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect(),
    });
    // The stack already holds extra with the same ID.
    facts
        .stack_images
        .insert("localhost/extra".into(), Some("sha256:eee".into()));
    o.handoff.insert("app".into(), facts);
    let plan = plan(&p, &o, &opts()).unwrap();
    let copies: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Handoff(HandoffStep::CopyImage { image, .. }) => Some(image.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copies, vec!["localhost/app:1", "localhost/old"]);
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes.contains(&"= image localhost/extra in stk-app's store (ID eee)".to_string()),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with(
            "! image localhost/gone of `app` is not in alice's podman store: not copied"
        )),
        "{notes:?}"
    );
    assert!(notes.contains(&"! left behind: alice's containers of project app: app_web_1, app_old_1 (isolate never deletes them); once the stack runs as stk-app, remove them with `runuser -u alice -- podman rm app_web_1 app_old_1`".to_string()), "{notes:?}");
    let step = plan
        .steps
        .iter()
        .find(|s| matches!(s, Step::Handoff(_)))
        .unwrap();
    assert_eq!(
        step.to_string(),
        "+ image localhost/app:1 for app: copy from alice's podman store into stk-app's, check its ID"
    );
    let json = serde_json::to_value(step).unwrap();
    assert_eq!(json["kind"], "handoff");
    assert_eq!(json["handoff"], "copy_image");
}

#[test]
fn without_systemd_or_legacy_owner_images_are_a_skipped_note() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let mut o = observed();
    o.handoff.insert("app".into(), StackFacts::default());
    let plan = plan(&p, &o, &Options::default()).unwrap();
    assert!(plan.notes.iter().any(|n| n.kind == NoteKind::Skipped
        && n.message == "images of `app` (localhost/extra): copying needs the podman sockets (--no-systemd)"));
    assert!(!plan.steps.iter().any(|s| matches!(s, Step::Handoff(_))));
}

fn copy_step(image: &str) -> HandoffStep {
    HandoffStep::CopyImage {
        stack: "app".into(),
        image: image.into(),
        from_user: "alice".into(),
        from_uid: 1000,
        to_user: "stk-app".into(),
        to_uid: 800,
    }
}

#[test]
fn a_copy_is_proven_by_id_and_a_rerun_is_already_present() {
    let d = tempfile::tempdir().unwrap();
    let stores = FakeSession {
        podman: FakePodman::default().with_image(1000, "localhost/app", "sha256:aaa"),
        ..FakeSession::default()
    };
    let walker = crate::apply::Walker::new();
    let run = |i: &str| {
        apply::run(
            &Root::new(d.path()),
            &copy_step(i),
            Some(&stores.session()),
            &walker,
            false,
        )
        .map(|(o, _)| o)
    };
    assert_eq!(run("localhost/app").unwrap(), Outcome::Done);
    assert_eq!(run("localhost/app").unwrap(), Outcome::AlreadyPresent);
    assert_eq!(
        run("localhost/none").unwrap(),
        Outcome::NotFound {
            detail: "alice has no image localhost/none in its podman store".into()
        }
    );
    assert_eq!(stores.podman.copies.lock().unwrap().len(), 1);
}

#[test]
fn a_load_that_yields_another_id_fails() {
    let d = tempfile::tempdir().unwrap();
    let stores = FakeSession {
        podman: FakePodman {
            corrupt: true,
            ..FakePodman::default()
        }
        .with_image(1000, "localhost/app", "sha256:aaa"),
        ..FakeSession::default()
    };
    let walker = crate::apply::Walker::new();
    let e = apply::run(
        &Root::new(d.path()),
        &copy_step("localhost/app"),
        Some(&stores.session()),
        &walker,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "image localhost/app in stk-app's store has ID sha256:aaa-other, not sha256:aaa as in alice's"
    );
    let e = apply::run(
        &Root::new(d.path()),
        &copy_step("localhost/app"),
        None,
        &walker,
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--no-systemd"), "{e}");
}

#[test]
fn a_volume_in_use_or_already_full_is_refused_and_a_moved_one_is_present() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let volume = |holders: Vec<String>, stack_data: bool| VolumeFacts {
        name: "app_db".into(),
        legacy: Some("/home/alice/.local/share/containers/storage/volumes/app_db/_data".into()),
        legacy_data: true,
        stack: stack_data.then(|| "/x/_data".into()),
        stack_data,
        holders,
        ..VolumeFacts::default()
    };
    let with = |v: VolumeFacts| {
        let mut o = observed();
        o.handoff.insert(
            "app".into(),
            StackFacts {
                volumes: vec![v],
                ..StackFacts::default()
            },
        );
        o
    };
    let e = plan(
        &p,
        &with(volume(vec!["app_db_1 (of alice)".into()], false)),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `app`: containers are using volume app_db: app_db_1 (of alice); stop them first (or pass --force)"
    );
    let e = plan(&p, &with(volume(vec![], true)), &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `app`: volume app_db already holds data in stk-app's store; isolate never mixes two volumes' data: empty or remove one of them first"
    );
    let ok = plan(&p, &with(volume(vec![], false)), &opts()).unwrap();
    assert!(ok.steps.iter().any(|s| matches!(s, Step::Handoff(HandoffStep::MoveVolume { name, resume: false, .. }) if name == "app_db")));
    // What observation found isolate must not move is refused, each reason on its line.
    let refused = VolumeFacts {
        refused: vec!["first reason".into(), "second reason".into()],
        ..volume(vec![], false)
    };
    let e = plan(&p, &with(refused), &opts()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "stack `app`: volume app_db: first reason\nstack `app`: volume app_db: second reason"
    );
    // The step moves from and to where isolate computed the stores keep the volume.
    let id = volumes::DirId { dev: 1, ino: 2 };
    let seen = VolumeFacts {
        legacy_id: Some(id),
        ..volume(vec![], false)
    };
    let ok = plan(&p, &with(seen), &opts()).unwrap();
    let Some(Step::Handoff(HandoffStep::MoveVolume {
        from, from_id, to, ..
    })) = ok
        .steps
        .iter()
        .find(|s| matches!(s, Step::Handoff(HandoffStep::MoveVolume { .. })))
    else {
        panic!("no volume step")
    };
    assert_eq!(
        from,
        Path::new("/home/alice/.local/share/containers/storage/volumes/app_db/_data")
    );
    assert_eq!(*from_id, Some(id));
    assert_eq!(
        to,
        &crate::layout::home("stk-app")
            .join(".local/share/containers/storage/volumes/app_db/_data")
    );
}
