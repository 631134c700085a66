//! On NixOS a stack whose compose service the configuration declares (`export nixos`: a user
//! unit in /etc/systemd/user) gets no unit of apply's own: the plan line says so, apply writes
//! isolate's copies the declared unit runs and starts it, and writes nothing into the stack
//! user's unit directory.
use super::handoff_tests::{container, observed, opts};
use crate::apply::Outcome;
use crate::handoff::*;
use crate::host::podman::store::ProjectContainer;
use crate::host::session::FakeSession;
use crate::layout::Root;
use crate::plan::{plan, Step};
use crate::policy::Policy;
use std::path::Path;

#[test]
fn a_declared_service_is_not_installed_and_the_plan_says_so() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 1800\ncompose = [\"/srv/app/compose.yaml\"]\nservice = true\n",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    std::fs::create_dir_all(d.path().join("srv/app")).unwrap();
    std::fs::write(d.path().join("srv/app/compose.yaml"), "services: {}\n").unwrap();
    std::fs::create_dir_all(d.path().join("etc/systemd/user")).unwrap();
    std::fs::write(d.path().join("etc/NIXOS"), "").unwrap();
    std::fs::create_dir_all(d.path().join("nix/store/u-unit")).unwrap();
    std::fs::write(
        d.path()
            .join("nix/store/u-unit/isolate-compose-app.service"),
        "[Service]\nExecStart=podman-compose up -d\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/nix/store/u-unit/isolate-compose-app.service",
        d.path()
            .join("etc/systemd/user/isolate-compose-app.service"),
    )
    .unwrap();
    let mut o = observed();
    o.nixos = true;
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
    o.preconditions.insert(
        "app".into(),
        crate::preconditions::observe(&root, &p.stacks["app"], o.handoff.get("app")),
    );
    // Accounts are declared (not this test's matter).
    let mut plan = plan(&p, &o, &opts()).unwrap_or_else(|e| panic!("{e}"));
    plan.nixos_missing.clear();
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
        "+ service isolate-compose-app.service for app: declared by NixOS (export nixos): not installed; isolate's copies of its files written, the declared unit started in stk-app's manager, proven by its containers"
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
    stores.podman.containers.insert(
        1800,
        vec![ProjectContainer {
            state: "running".into(),
            ..container("app_web_1", "localhost/app:1")
        }],
    );
    let walker = crate::apply::Walker::new();
    let (o1, _) = apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap();
    assert_eq!(o1, Outcome::Done);
    assert!(!d
        .path()
        .join("var/lib/isolate/home/stk-app/.config/systemd/user/isolate-compose-app.service")
        .exists());
    assert!(d
        .path()
        .join("var/lib/isolate/stacks/app/files/srv/app/compose.yaml")
        .exists());
    assert!(stores.systemd.units().last().unwrap().2, "started");
    let (o2, _) = apply::run(&root, &step, Some(&stores.session()), &walker, false).unwrap();
    assert_eq!(o2, Outcome::AlreadyPresent);
}
