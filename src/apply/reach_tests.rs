//! `reaches` in plan and apply over hand-built facts: the override's content in the diff, the
//! unit's extra `-f`, the warning on an undeclared shared network, the recorded ports.
use crate::handoff::compose::{ComposeFacts, ComposeService};
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::layout::Root;
use crate::observe::Observed;
use crate::plan::{plan, NoteKind, Options, Step};
use crate::policy::Policy;
use crate::reach::plan::{ReachFacts, ReachStep};
use std::path::Path;

const POLICY: &str = "legacy_owner = \"alice\"\n\
[stacks.proxy]\ndata = []\ncompose = [\"/srv/proxy/compose.yaml\"]\nservice = true\nreaches = [\"backend:backend:8080\"]\n\
[stacks.backend]\ndata = []\ncompose = [\"/srv/backend/compose.yaml\"]\nservice = true\n\
[stacks.other]\ndata = []\ncompose = [\"/srv/other/compose.yaml\"]\n";

pub(super) fn observed() -> Observed {
    let mut o = Observed {
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
    };
    for (stack, svc) in [
        ("proxy", "proxy"),
        ("backend", "backend"),
        ("other", "other"),
    ] {
        let mut c = ComposeFacts::default();
        c.services.push(ComposeService {
            name: svc.into(),
            networks: vec!["shared".into()],
            network_mode: None,
        });
        c.external_networks.insert("shared".into(), "shared".into());
        let f = crate::handoff::StackFacts {
            compose: c,
            ..Default::default()
        };
        o.handoff.insert(stack.into(), f);
        o.reach
            .joins
            .insert(stack.into(), ["shared".to_string()].into_iter().collect());
    }
    o.reach.podman_major = Some(4);
    o
}

fn opts(stack: &str) -> Options {
    Options {
        stacks: vec![stack.into()],
        ..Options::default()
    }
}

fn reach_step(p: &crate::plan::Plan) -> &ReachStep {
    p.steps
        .iter()
        .find_map(|s| match s {
            Step::Reach(r) => Some(r),
            _ => None,
        })
        .expect("a reach step")
}

#[test]
fn plan_shows_each_side_of_the_override_and_warns_about_what_is_undeclared() {
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let o = observed();
    let backend = plan(&p, &o, &opts("backend")).unwrap();
    let text = reach_step(&backend).to_string();
    assert!(text.starts_with("+ reach override /var/lib/isolate/stacks/backend/reaches.compose.yaml for backend: one more `-f` of its compose unit\n    | host port 8080 for backend:backend:8080 (recorded, never given again)\n"), "{text}");
    assert!(text.contains("\n    |   \"backend\":\n    |     # reached by proxy on the host's loopback\n    |     ports:\n    |       - \"127.0.0.1:8080:8080\"\n"), "{text}");
    assert!(
        text.contains("\n    |   \"shared\":\n    |     external: false\n"),
        "{text}"
    );
    let warnings: Vec<String> = backend
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Warning)
        .map(|n| n.message.clone())
        .collect();
    assert!(
        warnings.iter().any(|w| w
            .starts_with("stacks `backend` and `other` join the external podman network shared")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("`proxy`")),
        "{warnings:?}"
    );

    let proxy = plan(&p, &o, &opts("proxy")).unwrap();
    let text = reach_step(&proxy).to_string();
    assert!(
        text.contains(
            "    |     extra_hosts:\n    |       - \"backend:10.0.2.2\"  # backend:backend:8080"
        ),
        "{text}"
    );
    assert!(text.contains("\n  and /var/lib/isolate/home/stk-proxy/.config/containers/containers.conf.d/isolate-reaches.conf (owner "), "{text}");
    assert!(
        text.ends_with(
            "\n    | [engine]\n    | network_cmd_options = [\"allow_host_loopback=true\"]"
        ),
        "{text}"
    );
    // Applied: the drop-in is the stack user's file in its home, the override root's.
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let step = reach_step(&proxy).clone();
    assert_eq!(
        crate::reach::apply::run(&root, &step).unwrap(),
        crate::apply::Outcome::Done
    );
    use std::os::unix::fs::MetadataExt;
    let c = step.conf.as_ref().unwrap();
    let m = std::fs::metadata(root.at(&c.path)).unwrap();
    assert_eq!((m.uid(), m.gid()), (c.uid, c.gid));
    assert_eq!(std::fs::metadata(root.at(&step.path)).unwrap().uid(), 0);
    assert_eq!(
        crate::reach::apply::run(&root, &step).unwrap(),
        crate::apply::Outcome::AlreadyPresent
    );
    // The compose unit runs isolate's copy of the compose file with the override as one more -f.
    let s = &p.stacks["proxy"];
    let a = crate::state::Allocation {
        user: "stk-proxy".into(),
        uid: 1802,
        gid: 1802,
        subids: crate::ids::SubidRange {
            start: 300000,
            count: 65536,
        },
    };
    let unit = crate::handoff::service::render_unit(s, &a);
    assert!(unit.contains("ExecStart=podman-compose -p proxy -f /var/lib/isolate/stacks/proxy/files/srv/proxy/compose.yaml -f /var/lib/isolate/stacks/proxy/reaches.compose.yaml up -d\n"), "{unit}");
    let unit = crate::handoff::service::render_unit(&p.stacks["other"], &a);
    assert!(!unit.contains("reaches.compose.yaml"), "{unit}");
}

#[test]
fn apply_records_ports_then_writes_the_override_and_plan_is_then_quiet() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path());
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let mut o = observed();
    let step = reach_step(&plan(&p, &o, &opts("backend")).unwrap()).clone();
    assert_eq!(
        crate::reach::apply::run(&root, &step).unwrap(),
        crate::apply::Outcome::Done
    );
    let file = root.at(&step.path);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o644));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), step.text);
    let facts: ReachFacts =
        crate::reach::plan::observe(&root, &p, &Default::default(), None).unwrap();
    assert_eq!(facts.record.ports["backend:backend:8080"], 8080);
    o.reach.record = facts.record;
    o.reach.overrides = facts.overrides;
    let again = plan(&p, &o, &opts("backend")).unwrap();
    assert!(!again.steps.iter().any(|s| matches!(s, Step::Reach(_))));
    assert!(again
        .notes
        .iter()
        .any(|n| n.kind == NoteKind::Present && n.message.contains("reaches.compose.yaml")));
    // A link in isolate's directory is refused, never followed.
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/tmp", file.parent().unwrap()).unwrap();
    let err = crate::reach::apply::run(&root, &step)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory (a link?)"), "{err}");
}

#[test]
fn a_stack_in_a_reach_without_compose_is_refused() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "[stacks.proxy]\ndata = []\nreaches = [\"backend:backend:8080\"]\n[stacks.backend]\ndata = []\n",
    )
    .unwrap();
    let err = plan(&p, &observed(), &opts("proxy"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stack `proxy` has `reaches` but no `compose`"),
        "{err}"
    );
}
