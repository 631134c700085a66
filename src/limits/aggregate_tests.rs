//! Resource limits through the aggregates: plan() carries the stack's slice drop-in as a step
//! with its diff and notes, apply() writes it and daemon-reloads the system manager through
//! the session's systemd port, and a plan made after it has nothing left to do.
use crate::apply::{apply, Backends, Outcome, Walker};
use crate::host::session::FakeSession;
use crate::host::systemd::fake::SystemdCall;
use crate::layout::Root;
use crate::plan::{plan, Options, Plan};
use crate::policy::Policy;
use std::path::Path;

const POLICY: &str =
    "[stacks.immich]\ndata = []\n[stacks.immich.limits]\nmemory_max = \"64M\"\ntasks_max = 32\n";

fn options() -> Options {
    Options {
        systemd: true,
        ..Options::default()
    }
}

fn observed() -> crate::observe::Observed {
    crate::observe::Observed {
        nologin: "/usr/sbin/nologin".into(),
        ..Default::default()
    }
}

fn lines(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| s.to_string())
        .chain(p.notes.iter().map(|n| n.to_string()))
        .filter(|l| l.contains("limits of stack"))
        .collect()
}

#[test]
fn plan_carries_the_limits_and_apply_writes_them_and_reloads_the_system_manager() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let p = Policy::parse(Path::new("p.toml"), POLICY).unwrap();
    let planned = plan(&p, &observed(), &options()).unwrap();
    assert_eq!(
        lines(&planned),
        [
            "+ limits of stack immich: write /etc/systemd/system/user-70000.slice.d/50-isolate.conf, daemon-reload (user-70000.slice keeps running)\n    + MemoryMax=64M\n    + TasksMax=32",
            "! limits of stack immich: this host runs cgroup v1 (no /sys/fs/cgroup/cgroup.controllers): memory_max of user-70000.slice may not act; they are written anyway and act on the unified hierarchy (cgroup v2)",
        ]
    );
    let only_limits = Plan {
        steps: planned
            .steps
            .iter()
            .filter(|s| s.to_string().contains("limits of stack"))
            .cloned()
            .collect(),
        ..Plan::default()
    };
    let fake = FakeSession::default();
    let b = Backends {
        accounts: &crate::host::accounts::fake::RecordingAccounts::default(),
        session: Some(fake.session()),
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        quota: &crate::quota::fake::FakeQuota::default(),
        compose: None,
        migrator: &Walker::new(),
    };
    let report = apply(&root, &only_limits, &b, false).unwrap();
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.steps[0].outcome, Outcome::Done);
    assert_eq!(
        *fake.systemd.calls.lock().unwrap(),
        [
            SystemdCall::DaemonReloadSystem,
            SystemdCall::ApplySliceNow {
                slice: "user-70000.slice".into()
            }
        ]
    );
    let written = std::fs::read_to_string(root.at(Path::new(
        "/etc/systemd/system/user-70000.slice.d/50-isolate.conf",
    )))
    .unwrap();
    assert!(
        written.ends_with("[Slice]\nMemoryMax=64M\nTasksMax=32\n"),
        "{written}"
    );
}
