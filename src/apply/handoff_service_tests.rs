//! The hand-off's compose service over the recording fakes: planned, installed, proven by its
//! project's containers running, removed; the root-owned copies it runs and a changed original
//! shown as a plan diff.
use super::handoff_tests::{container, observed, opts};
use crate::apply::Outcome;
use crate::handoff::*;
use crate::host::podman::store::ProjectContainer;
use crate::host::session::FakeSession;
use crate::host::systemd::fake::SystemdCall;
use crate::layout::Root;
use crate::plan::{plan, Step};
use crate::policy::Policy;
use std::path::Path;

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
    let facts = observe::observe_stack(
        &root,
        &crate::walk::sys::RealSys::new(),
        &p,
        &o.accounts,
        s,
        &a,
        Some(&stores.session()),
        &Default::default(),
    )
    .unwrap();
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
        let facts = observe::observe_stack(
            &root,
            &crate::walk::sys::RealSys::new(),
            &p,
            &o.accounts,
            s,
            &a,
            Some(&stores.session()),
            &Default::default(),
        )
        .unwrap();
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
