//! A stack defined by `quadlets` is planned, not refused: the legacy owner's units are parked
//! before its data moves, the stack user's installed and started after the hand-off; a host
//! without quadlet's generator is refused.
use super::plan::{QuadletFacts, QuadletStep, Sides, SourceFacts};
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::observe::Observed;
use crate::plan::{plan, Options, Step};
use crate::policy::Policy;
use std::path::Path;

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

fn opts() -> Options {
    Options {
        systemd: true,
        ..Options::default()
    }
}

const DIR: &str = "/home/alice/.config/containers/systemd";

fn policy() -> Policy {
    Policy::parse(
        Path::new("p.toml"),
        &format!("legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nimages = [\"localhost/app:1\"]\nquadlets = [\"{DIR}/app.pod\", \"{DIR}/web.container\"]\n"),
    )
    .unwrap()
}

fn with_quadlets(podman: Option<(u32, u32)>) -> crate::observe::Observed {
    let mut o = observed();
    let sides = Sides {
        stack: "app".into(),
        user: "stk-app".into(),
        uid: 70001,
        home: "/var/lib/isolate/home/stk-app".into(),
        legacy_user: "alice".into(),
        legacy_uid: 1000,
        legacy_home: "/home/alice".into(),
    };
    let source = |name: &str, text: &str| SourceFacts {
        path: Path::new(DIR).join(name),
        text: Some(text.into()),
        parked: None,
    };
    let facts = QuadletFacts {
        podman,
        sources: vec![
            source("app.pod", "[Pod]\nPodName=app\n"),
            source(
                "web.container",
                "[Container]\nImage=localhost/app:1\nPod=app.pod\n",
            ),
        ],
        ..QuadletFacts::default()
    };
    o.plugged.quadlets.insert("app".into(), (sides, facts));
    o
}

#[test]
fn a_quadlet_stack_parks_her_units_first_and_starts_its_own_after_the_handoff() {
    let plan = plan(&policy(), &with_quadlets(Some((5, 4))), &opts()).unwrap();
    let at = |f: &dyn Fn(&Step) -> bool| plan.steps.iter().position(f);
    let retire = at(&|s| matches!(s, Step::Quadlet(QuadletStep::RetireLegacy { .. })));
    let install = at(&|s| matches!(s, Step::Quadlet(QuadletStep::Install { .. })));
    let handoff = plan
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::Handoff(_)));
    let (retire, install) = (retire.unwrap(), install.unwrap());
    assert!(retire < install);
    assert!(handoff.is_none_or(|h| h < install), "{plan:#?}");
    let line = plan.steps[install].to_string();
    assert!(
        line.starts_with(
            "+ quadlets of app: app.pod, web.container into /etc/containers/systemd/users/"
        ),
        "{line}"
    );
}

#[test]
fn a_host_without_quadlet_is_refused() {
    let e = plan(&policy(), &with_quadlets(None), &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `app` names `quadlets`, but this host has no quadlet generator (podman 4.4 or newer installs it)"
    );
}
