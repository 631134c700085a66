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
use crate::host::systemd::fake::SystemdCall;
use crate::layout::Root;
use crate::observe::Observed;
use crate::plan::{plan, NoteKind, Options, Step};
use crate::policy::Policy;
use std::path::Path;

const POLICY: &str = "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nimages = [\"localhost/extra\"]\ncompose = [\"/srv/app/compose.yaml\"]\n";

fn observed() -> Observed {
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

fn container(name: &str, image: &str) -> ProjectContainer {
    ProjectContainer {
        name: name.into(),
        image: image.into(),
        image_id: "x".into(),
        state: "exited".into(),
        volumes: vec![],
    }
}

fn opts() -> Options {
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
fn the_service_is_planned_installed_proven_and_removed() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 1800\ncompose = [\"/srv/app/compose.yaml\"]\nservice = true\n",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    std::fs::create_dir_all(d.path().join("srv/app")).unwrap();
    std::fs::write(d.path().join("srv/app/compose.yaml"), "services: {}\n").unwrap();
    let mut o = observed();
    o.handoff.insert(
        "app".into(),
        StackFacts {
            service: Some(ServiceFacts {
                copies: copies::observe(&root, &p.stacks["app"], &[0]),
                ..ServiceFacts::default()
            }),
            ..StackFacts::default()
        },
    );
    let plan = plan(&p, &o, &opts()).unwrap();
    let step = plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Handoff(h @ HandoffStep::InstallService { .. }) => Some(h.clone()),
            _ => None,
        })
        .expect("a service step");
    assert_eq!(
        step.to_string(),
        "+ service isolate-compose-app.service for app: runs compose project app in stk-app's manager (/var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service), enabled, started, proven by its containers"
    );

    let mut s = crate::state::State::default();
    s.stacks.insert(
        "app".into(),
        crate::state::StackRecord {
            allocation: crate::state::Allocation {
                user: "stk-app".into(),
                uid: 1800,
                gid: 1800,
                subids: crate::ids::SubidRange::new(200_000, 65_536).unwrap(),
            },
            migrations: vec![],
        },
    );
    s.write(&root).unwrap();
    std::fs::create_dir_all(d.path().join("var/lib/isolate/home/stk-app")).unwrap();
    let mut stores = FakeSession::default();
    let walker = crate::apply::Walker::new();
    // The unit starts, but nothing of the project runs: not proven.
    let e = apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("but project app does not run as stk-app: it has no containers"),
        "{e}"
    );
    stores.podman.containers.insert(
        1800,
        vec![ProjectContainer {
            state: "running".into(),
            ..container("app_web_1", "localhost/app:1")
        }],
    );
    // Written and started by the first run; now proven.
    let (o1, _) = apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap();
    assert_eq!(o1, Outcome::AlreadyPresent);
    let unit = d
        .path()
        .join("var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service");
    assert!(std::fs::read_to_string(&unit)
        .unwrap()
        .contains("ExecStart=podman-compose -p app -f /var/lib/isolate/stacks/app/files/srv/app/compose.yaml up -d\n"));
    // A changed unit file is written and the unit restarted.
    std::fs::write(&unit, "edited").unwrap();
    let (o2, _) = apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap();
    assert_eq!(o2, Outcome::Done);
    assert!(std::fs::read_to_string(&unit)
        .unwrap()
        .starts_with("# Written by isolate"));

    // A refused rollback: paused (stopped and disabled, unit and record kept), then resumed.
    let paused = apply::pause_service(&root, "app", Some(&stores.session()))
        .unwrap()
        .expect("the service is recorded");
    assert!(!stores.systemd.units().last().unwrap().2);
    assert!(unit.exists());
    let recorded = crate::state::State::read(&root).unwrap();
    assert!(recorded.handoff["app"].service.is_some());
    paused.resume(Some(&stores.session())).unwrap();
    assert!(stores.systemd.units().last().unwrap().2);
    assert!(unit.exists());

    let line = apply::stop_service(&root, "app", Some(&stores.session())).unwrap();
    assert_eq!(
        line.as_deref(),
        Some("service isolate-compose-app.service: stopped, disabled and removed (/var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service, and isolate's copies of its files)")
    );
    assert!(!unit.exists());
    assert!(!d.path().join("var/lib/isolate/stacks/app").exists());
    assert!(!stores.systemd.units().last().unwrap().2);
    assert!(crate::state::State::read(&root).unwrap().handoff.is_empty());
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

/// podman-compose exits 0 while every container fails to start: the oneshot unit is active
/// and enabled, but the project does not run. Neither plan nor status may call that done.
#[test]
fn a_service_whose_containers_do_not_run_is_neither_present_nor_shown_running() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 1800\ncompose = [\"/srv/app/compose.yaml\"]\nservice = true\n",
    )
    .unwrap();
    let s = &p.stacks["app"];
    let a = crate::state::Allocation {
        user: "stk-app".into(),
        uid: 1800,
        gid: 1800,
        subids: crate::ids::SubidRange::new(200_000, 65_536).unwrap(),
    };
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let unit = "isolate-compose-app.service";
    let path = Path::new("/var/lib/isolate/home/stk-app/.config/systemd/user").join(unit);
    std::fs::create_dir_all(root.at(path.parent().unwrap())).unwrap();
    std::fs::write(root.at(&path), service::render_unit(s, &a)).unwrap();
    std::fs::create_dir_all(root.at(Path::new("/srv/app"))).unwrap();
    std::fs::write(
        root.at(Path::new("/srv/app/compose.yaml")),
        "services: {}\n",
    )
    .unwrap();
    let mut stores = FakeSession::default();
    stores
        .systemd
        .calls
        .lock()
        .unwrap()
        .push(SystemdCall::ReloadEnableRestart {
            uid: 1800,
            unit: unit.into(),
        });
    stores.podman.containers.insert(
        1800,
        vec![ProjectContainer {
            state: "created".into(),
            ..container("app_web_1", "localhost/app:1")
        }],
    );
    let mut o = observed();
    let facts =
        observe::observe_stack(&root, &p, &o.accounts, s, &a, Some(&stores.session())).unwrap();
    o.handoff.insert("app".into(), facts);
    let plan = plan(&p, &o, &opts()).unwrap();
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s, Step::Handoff(HandoffStep::InstallService { .. }))),
        "no service step although nothing runs: {notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.starts_with("= service")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("but project app does not run (not running: app_web_1 (created)): apply starts it again")),
        "{notes:?}"
    );

    let mut state = crate::state::State::default();
    state.handoff.insert(
        "app".into(),
        HandoffRecord {
            service: Some(service::ServiceRecord {
                unit: unit.into(),
                path: path.clone(),
            }),
            ..HandoffRecord::default()
        },
    );
    let lines = status::lines(
        &root,
        &p,
        &state,
        &o.accounts,
        "app",
        &a,
        Some(&stores.session()),
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("project app does not run: not running: app_web_1 (created)")),
        "{lines:?}"
    );
}

/// After the hand-off the legacy user still owns the directory of the compose and env files:
/// the service must run isolate's root-owned copies, and a changed original is a plan diff
/// that only apply (run by root) copies.
#[test]
fn the_service_runs_root_owned_copies_and_a_changed_original_is_a_plan_diff() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 1800\ncompose = [\"/srv/app/conf/compose.yaml\"]\nenv_files = [\"/srv/app/conf/app.env\"]\nservice = true\n",
    )
    .unwrap();
    let s = &p.stacks["app"];
    let a = crate::state::Allocation {
        user: "stk-app".into(),
        uid: 1800,
        gid: 1800,
        subids: crate::ids::SubidRange::new(200_000, 65_536).unwrap(),
    };
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let conf = d.path().join("srv/app/conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(d.path().join("var/lib/isolate/home/stk-app")).unwrap();
    let compose =
        "services:\n  web:\n    image: localhost/app:${TAG}\n    volumes:\n      - ./data:/data\n";
    std::fs::write(conf.join("compose.yaml"), compose).unwrap();
    std::fs::write(conf.join("app.env"), "TAG=1\nSECRET=hunter2\n").unwrap();
    for f in ["compose.yaml", "app.env"] {
        std::os::unix::fs::chown(conf.join(f), Some(1000), Some(1000)).unwrap();
    }
    std::os::unix::fs::chown(&conf, Some(1000), Some(1000)).unwrap();
    let mut stores = FakeSession::default();
    stores.podman.containers.insert(
        1800,
        vec![ProjectContainer {
            state: "running".into(),
            ..container("app_web_1", "localhost/app:1")
        }],
    );
    let planned = |stores: &FakeSession| {
        let mut o = observed();
        let facts =
            observe::observe_stack(&root, &p, &o.accounts, s, &a, Some(&stores.session())).unwrap();
        o.handoff.insert("app".into(), facts);
        plan(&p, &o, &opts()).unwrap()
    };
    let service_step = |plan: &crate::plan::Plan| {
        plan.steps.iter().find_map(|s| match s {
            Step::Handoff(h @ HandoffStep::InstallService { .. }) => Some(h.clone()),
            _ => None,
        })
    };
    let first = planned(&stores);
    let step = service_step(&first).expect("a service step");
    let walker = crate::apply::Walker::new();
    apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap();

    let copies = d
        .path()
        .join("var/lib/isolate/stacks/app/files/srv/app/conf");
    let unit = std::fs::read_to_string(
        d.path()
            .join("var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service"),
    )
    .unwrap();
    assert!(
        unit.contains("-f /var/lib/isolate/stacks/app/files/srv/app/conf/compose.yaml up -d\n"),
        "{unit}"
    );
    assert!(
        unit.contains("EnvironmentFile=/var/lib/isolate/stacks/app/files/srv/app/conf/app.env\n"),
        "{unit}"
    );
    let meta = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        format!(
            "{}:{} {:o}",
            m.uid(),
            m.gid(),
            m.permissions().mode() & 0o7777
        )
    };
    assert_eq!(meta(&copies.join("app.env")), "0:1800 440");
    assert_eq!(meta(&copies.join("compose.yaml")), "0:1800 440");
    assert_eq!(
        meta(&d.path().join("var/lib/isolate/stacks/app")),
        "0:1800 750"
    );
    assert_eq!(
        std::fs::read_to_string(copies.join("app.env")).unwrap(),
        "TAG=1\nSECRET=hunter2\n"
    );
    // The relative bind source still names the original project directory.
    let copied = std::fs::read_to_string(copies.join("compose.yaml")).unwrap();
    assert!(copied.contains("/srv/app/conf/data:/data"), "{copied}");

    // The legacy user edits her compose file and replaces the env file.
    std::fs::write(
        conf.join("compose.yaml"),
        format!("{compose}      - \"/:/host\"\n"),
    )
    .unwrap();
    std::fs::write(conf.join("app.env"), "TAG=1\nSECRET=other\nEVIL=1\n").unwrap();
    let second = planned(&stores);
    let notes: Vec<String> = second.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes.iter().any(|n| n
            .contains("compose file /srv/app/conf/compose.yaml changed since isolate copied it")
            && n.contains("+")
            && n.contains("/:/host")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n
            .contains("env file /srv/app/conf/app.env changed since isolate copied it")
            && n.contains("EVIL")
            && !n.contains("other")),
        "values of an env file are never shown: {notes:?}"
    );
    assert!(service_step(&second).is_some(), "{notes:?}");
    // Until apply, the service runs the copy.
    assert_eq!(
        std::fs::read_to_string(copies.join("compose.yaml")).unwrap(),
        copied
    );
    assert!(!copied.contains("/host"));
    // apply, run by root, is the approval: it copies the change and restarts the service.
    let starts = stores.systemd.units().len();
    let (o, _) = apply::run(
        &root,
        &service_step(&second).unwrap(),
        Some(&stores.session()),
        &walker,
        false,
    )
    .unwrap();
    assert_eq!(o, Outcome::Done);
    assert_eq!(stores.systemd.units().len(), starts + 1);
    assert!(std::fs::read_to_string(copies.join("compose.yaml"))
        .unwrap()
        .contains("/:/host"));
    assert_eq!(meta(&copies.join("app.env")), "0:1800 440");
}
