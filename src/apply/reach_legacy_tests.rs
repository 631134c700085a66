//! The legacy side of `reaches` over hand-built facts and a recording compose runner: the
//! reaching stack first re-ups the still-legacy target as the legacy user with a loopback
//! publish (shown in the plan), its rollback re-ups it without, the target's own apply forgets
//! it; the target first says what the still-legacy reaching stack loses.
use crate::error::Result;
use crate::layout::Root;
use crate::plan::{plan, NoteKind, Options, Step};
use crate::policy::Policy;
use crate::reach::legacy::{LegacyStep, LegacyTarget};
use crate::reach::legacy_run::{self, ComposeRunner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const POLICY: &str = "legacy_owner = \"alice\"\n\
[stacks.proxy]\ndata = []\ncompose = [\"/srv/proxy/compose.yaml\"]\nservice = true\nreaches = [\"backend:backend:8080\"]\n\
[stacks.backend]\ndata = []\ncompose = [\"/srv/backend/conf/compose.yaml\"]\nservice = true\n";

/// Records each run: (user, argv, directory).
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<(String, Vec<String>, PathBuf)>>,
}

impl ComposeRunner for Recorder {
    fn run_as(
        &self,
        user: &str,
        argv: &[String],
        dir: &Path,
        _env: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.runs
            .lock()
            .unwrap()
            .push((user.into(), argv.to_vec(), dir.to_path_buf()));
        Ok(())
    }
}

fn opts(stack: &str) -> Options {
    Options {
        stacks: vec![stack.into()],
        ..Options::default()
    }
}

fn observed_running() -> crate::observe::Observed {
    let mut o = super::reach_tests::observed();
    o.reach.legacy.insert(
        "backend".into(),
        LegacyTarget {
            running: vec!["backend_backend_1".into()],
        },
    );
    o
}

fn legacy_steps(p: &crate::plan::Plan) -> Vec<&LegacyStep> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::ReachLegacy(l) => Some(l),
            _ => None,
        })
        .collect()
}

fn running(name: &str) -> crate::host::podman::store::ProjectContainer {
    crate::host::podman::store::ProjectContainer {
        name: name.into(),
        image: "localhost/busybox".into(),
        image_id: "x".into(),
        state: "running".into(),
        volumes: vec![],
    }
}

#[test]
fn reaching_stack_first_publishes_the_legacy_targets_port_from_her_own_project() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let mut o = observed_running();
    let proxy = plan(&p, &o, &opts("proxy")).unwrap();
    let steps = legacy_steps(&proxy);
    assert_eq!(steps.len(), 1, "{:?}", proxy.steps);
    let text = steps[0].to_string();
    assert!(text.starts_with("~ legacy publish of backend for proxy: backend still runs as alice, so its compose project backend is re-upped as alice with /var/lib/isolate/reach-legacy/backend.compose.yaml (its containers are recreated), until `isolate apply --stack backend`:\n    $ podman-compose -p backend -f /srv/backend/conf/compose.yaml -f /var/lib/isolate/reach-legacy/backend.compose.yaml up -d --force-recreate\n"), "{text}");
    assert!(
        text.contains("\n    | services:\n    |   \"backend\":\n    |     ports:\n    |       - \"127.0.0.1:8080:8080\"  # reached by proxy"),
        "{text}"
    );
    let json = serde_json::to_value(&proxy).unwrap();
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "reach_legacy")
        .expect("the legacy publish in the JSON plan");
    assert_eq!(step["legacy"], "publish");
    assert_eq!(step["run"]["user"], "alice");
    // After the proxy's own override, which records the host port.
    let at = |k: fn(&Step) -> bool| proxy.steps.iter().position(k).unwrap();
    assert!(at(|s| matches!(s, Step::Reach(_))) < at(|s| matches!(s, Step::ReachLegacy(_))));

    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var/lib")).unwrap();
    let root = Root::new(d.path());
    let runner = Recorder::default();
    assert_eq!(
        legacy_run::run(&root, steps[0], Some(&runner)).unwrap(),
        crate::model::Outcome::Done
    );
    let runs = runner.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, "alice");
    assert_eq!(runs[0].1.join(" "), "podman-compose -p backend -f /srv/backend/conf/compose.yaml -f /var/lib/isolate/reach-legacy/backend.compose.yaml up -d --force-recreate");
    assert_eq!(runs[0].2, Path::new("/srv/backend/conf"));
    use std::os::unix::fs::MetadataExt;
    let file = root.at(Path::new(
        "/var/lib/isolate/reach-legacy/backend.compose.yaml",
    ));
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o644));
    let m = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o755));
    let y =
        yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        y[0]["services"]["backend"]["ports"][0].as_str(),
        Some("127.0.0.1:8080:8080")
    );

    // Planned again with what apply recorded: nothing to do, and nothing run again.
    o.reach.legacy_record = legacy_run::observe_records(&root).unwrap();
    let again = plan(&p, &o, &opts("proxy")).unwrap();
    assert!(legacy_steps(&again).is_empty(), "{:?}", again.steps);
    assert!(again.notes.iter().any(|n| n.kind == NoteKind::Present
        && n.message.starts_with("legacy publish of backend for proxy")));

    // rollback --stack proxy: her project again without the override; file and record go.
    let fake = crate::host::session::FakeSession {
        podman: crate::host::podman::fake::FakePodman {
            containers: [(1000, vec![running("backend_backend_1")])].into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let session = fake.session();
    let lines = legacy_run::rollback(&root, "proxy", Some(&session), &runner).unwrap();
    assert_eq!(lines, ["legacy publish of backend (removed): alice's project backend re-upped without /var/lib/isolate/reach-legacy/backend.compose.yaml"]);
    let runs = runner.runs.lock().unwrap().clone();
    assert_eq!(
        runs[1].1.join(" "),
        "podman-compose -p backend -f /srv/backend/conf/compose.yaml up -d --force-recreate"
    );
    assert!(!file.exists());
    assert!(legacy_run::observe_records(&root)
        .unwrap()
        .targets
        .is_empty());
    assert!(
        legacy_run::rollback(&root, "proxy", Some(&session), &runner)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn no_legacy_publish_for_a_target_that_moves_too_moved_already_or_does_not_run() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    // Both in one apply: the target's own override publishes.
    let all = plan(&p, &observed_running(), &Options::default()).unwrap();
    assert!(legacy_steps(&all).is_empty(), "{:?}", all.steps);
    // The target runs as its own user.
    let mut o = observed_running();
    o.state.handoff.insert(
        "backend".into(),
        crate::handoff::HandoffRecord {
            service: Some(crate::handoff::service::ServiceRecord {
                unit: "isolate-compose-backend.service".into(),
                path: "/x".into(),
            }),
            ..Default::default()
        },
    );
    assert!(legacy_steps(&plan(&p, &o, &opts("proxy")).unwrap()).is_empty());
    // Her project does not run: a warning, nothing started.
    let mut o = observed_running();
    o.reach.legacy.get_mut("backend").unwrap().running.clear();
    let proxy = plan(&p, &o, &opts("proxy")).unwrap();
    assert!(legacy_steps(&proxy).is_empty());
    assert!(proxy.notes.iter().any(|n| n.kind == NoteKind::Warning
        && n.message.starts_with("`proxy` reaches stack `backend`, which is not applied and whose project backend does not run as alice")));
}

#[test]
fn target_first_says_the_legacy_reacher_loses_the_path_and_recommends_the_other_order() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let backend = plan(&p, &observed_running(), &opts("backend")).unwrap();
    let text = backend
        .steps
        .iter()
        .find(|s| matches!(s, Step::Reach(_)))
        .unwrap()
        .to_string();
    assert!(text.contains("\n  ! `proxy` reaches backend:backend:8080 and still runs as alice: her containers cannot reach the host's loopback, where backend answers from now on"), "{text}");
    assert!(text.contains("so `proxy` loses this path until `isolate apply --stack proxy`. Applying the reaching stack first keeps the path at every step"), "{text}");
    // Both at once, or the reacher moved already: nothing lost.
    let all = plan(&p, &observed_running(), &Options::default()).unwrap();
    assert!(!all
        .steps
        .iter()
        .any(|s| s.to_string().contains("loses this path")));
}

#[test]
fn the_target_moving_forgets_the_legacy_publish_and_refuses_while_her_containers_hold_the_port() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var/lib")).unwrap();
    let root = Root::new(d.path());
    let runner = Recorder::default();
    let proxy = plan(&p, &observed_running(), &opts("proxy")).unwrap();
    legacy_run::run(&root, legacy_steps(&proxy)[0], Some(&runner)).unwrap();
    let mut o = super::reach_tests::observed();
    o.reach.legacy_record = legacy_run::observe_records(&root).unwrap();
    // Her containers still run: refused, with the command that stops them.
    o.handoff.get_mut("backend").unwrap().legacy = Some(crate::handoff::LegacyStore {
        user: "alice".into(),
        uid: 1000,
        containers: vec![running("backend_backend_1")],
        images: Default::default(),
    });
    let err = plan(&p, &o, &opts("backend")).unwrap_err();
    assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
    assert!(err.to_string().contains("stack `backend`: alice's containers of project backend (backend_backend_1) still run, publishing its port on the host's loopback for proxy (isolate's legacy publish), where the stack's own unit publishes it now: stop them first (`runuser -u alice -- podman stop backend_backend_1`)"), "{err}");
    // Stopped: the legacy publish is forgotten; the port stays the one the proxy reaches.
    o.handoff.get_mut("backend").unwrap().legacy = None;
    let backend = plan(&p, &o, &opts("backend")).unwrap();
    let steps = legacy_steps(&backend);
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].to_string(), "- legacy publish /var/lib/isolate/reach-legacy/backend.compose.yaml of backend (for proxy): its own override publishes the port now; alice's stopped containers of project backend still carry it (isolate never deletes them)");
    assert_eq!(
        legacy_run::run(&root, steps[0], None).unwrap(),
        crate::model::Outcome::Done
    );
    assert!(!root
        .at(Path::new(
            "/var/lib/isolate/reach-legacy/backend.compose.yaml"
        ))
        .exists());
    assert!(legacy_run::observe_records(&root)
        .unwrap()
        .targets
        .is_empty());
    assert_eq!(
        runner.runs.lock().unwrap().len(),
        1,
        "forgetting runs nothing"
    );
}
