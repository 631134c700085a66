//! The limits capability on temp roots with the recording systemd fake: the plan's diff, the
//! drop-in's exact text, idempotence, removal of a key and of all keys, rollback, a drop-in
//! someone else wrote, and the notes for cgroup v1, io and NixOS.
use super::plan::{plan_stack, LimitsStep, Seen};
use super::*;
use crate::host::systemd::fake::{FakeSystemd, SystemdCall};
use crate::layout::Root;
use crate::model::{Outcome, Planned, Selection};
use crate::policy::Policy;
use crate::state::Allocation;
use std::path::Path;

const DROPIN: &str = "/etc/systemd/system/user-70001.slice.d/50-isolate.conf";

fn policy(limits: &str) -> Policy {
    let text =
        format!("[stacks.immich]\ndata = [\"/srv/immich\"]\n[stacks.immich.limits]\n{limits}");
    Policy::parse(Path::new("p.toml"), &text).unwrap()
}

fn allocation() -> Allocation {
    Allocation {
        user: "stk-immich".into(),
        uid: 70001,
        gid: 70001,
        subids: crate::ids::SubidRange::new(0x7000_0000, 65_536).unwrap(),
    }
}

fn systemd_on() -> Selection {
    Selection {
        systemd: true,
        ..Selection::default()
    }
}

/// Observes the temp root (a v2 host unless `v1`) and plans the stack's limits.
fn plan_limits(root: &Root, p: &Policy, nixos: bool) -> (Planned<LimitsStep>, Vec<String>) {
    let facts = observe::observe(root, [("immich", 70001)]).unwrap();
    let mut planned = Planned::default();
    let mut refusals = Vec::new();
    plan_stack(
        &mut planned,
        &mut refusals,
        &p.stacks["immich"],
        &allocation(),
        &Seen {
            facts: &facts,
            nixos,
        },
        &systemd_on(),
    );
    (planned, refusals)
}

fn v2_root() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("sys/fs/cgroup")).unwrap();
    std::fs::write(
        d.path().join("sys/fs/cgroup/cgroup.controllers"),
        "cpu memory pids\n",
    )
    .unwrap();
    let root = Root::new(d.path());
    (d, root)
}

fn texts(p: &Planned<LimitsStep>) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| s.to_string())
        .chain(p.notes.iter().map(|n| n.to_string()))
        .collect()
}

/// The daemon-reloads made; each must be followed by the settings put on the running slice
/// (a reload alone leaves a running slice's cgroup as it was).
fn reloads(fake: &FakeSystemd) -> usize {
    let calls = fake.calls.lock().unwrap();
    for (i, call) in calls.iter().enumerate() {
        if *call == SystemdCall::DaemonReloadSystem {
            assert!(
                matches!(calls.get(i + 1), Some(SystemdCall::ApplySliceNow { .. })),
                "a daemon-reload not followed by ApplySliceNow: {calls:?}"
            );
        }
    }
    calls
        .iter()
        .filter(|c| **c == SystemdCall::DaemonReloadSystem)
        .count()
}

#[test]
fn apply_writes_the_dropin_reloads_once_and_a_second_run_has_nothing_to_do() {
    let (_d, root) = v2_root();
    let p = policy("memory_max = \"4G\"\ntasks_max = 512\ncpu_weight = 50\n");
    let (planned, refusals) = plan_limits(&root, &p, false);
    assert!(refusals.is_empty());
    assert_eq!(
        texts(&planned),
        [format!(
            "+ limits of stack immich: write {DROPIN}, daemon-reload (user-70001.slice keeps running)\n    + CPUWeight=50\n    + MemoryMax=4G\n    + TasksMax=512"
        )]
    );
    let fake = FakeSystemd::default();
    assert_eq!(
        apply::run(&root, &planned.steps[0], Some(&fake)).unwrap(),
        Outcome::Done
    );
    assert_eq!(
        std::fs::read_to_string(root.at(Path::new(DROPIN))).unwrap(),
        "# Written by isolate from [stacks.immich.limits] of its policy: `isolate apply` rewrites it,\n\
         # `isolate rollback --stack immich` removes it. Edit the policy, not this file.\n\
         [Slice]\nCPUWeight=50\nMemoryMax=4G\nTasksMax=512\n"
    );
    assert_eq!(reloads(&fake), 1);
    // Planned again: no step, a present note; the old step run again: already present.
    let (again, _) = plan_limits(&root, &p, false);
    assert!(again.steps.is_empty());
    assert_eq!(
        texts(&again),
        [format!("= limits of stack immich: {DROPIN} as the policy says (CPUWeight=50 MemoryMax=4G TasksMax=512)")]
    );
    assert_eq!(
        apply::run(&root, &planned.steps[0], Some(&fake)).unwrap(),
        Outcome::AlreadyPresent
    );
    assert_eq!(reloads(&fake), 1);
}

#[test]
fn the_plan_shows_changed_added_and_removed_lines_and_removing_every_key_removes_the_dropin() {
    let (_d, root) = v2_root();
    let fake = FakeSystemd::default();
    let first = policy("memory_max = \"4G\"\ntasks_max = 512\n");
    let (planned1, _) = plan_limits(&root, &first, false);
    apply::run(&root, &planned1.steps[0], Some(&fake)).unwrap();
    let second = policy("memory_max = \"2G\"\ncpu_quota = \"150%\"\n");
    let (planned2, _) = plan_limits(&root, &second, false);
    assert_eq!(
        texts(&planned2),
        [format!(
            "~ limits of stack immich: rewrite {DROPIN}, daemon-reload (user-70001.slice keeps running)\n    + CPUQuota=150%\n    MemoryMax=4G -> MemoryMax=2G\n    - TasksMax=512"
        )]
    );
    apply::run(&root, &planned2.steps[0], Some(&fake)).unwrap();
    let text = std::fs::read_to_string(root.at(Path::new(DROPIN))).unwrap();
    assert!(
        text.ends_with("[Slice]\nCPUQuota=150%\nMemoryMax=2G\n"),
        "{text}"
    );
    // No key left (disk_max does not go into the slice): the drop-in and its directory go.
    let none = policy("disk_max = \"10G\"\n");
    let (planned3, _) = plan_limits(&root, &none, false);
    assert_eq!(
        texts(&planned3),
        [format!(
            "- limits of stack immich: remove {DROPIN}, daemon-reload (user-70001.slice keeps running, unlimited)\n    - CPUQuota=150%\n    - MemoryMax=2G"
        )]
    );
    assert_eq!(
        apply::run(&root, &planned3.steps[0], Some(&fake)).unwrap(),
        Outcome::Done
    );
    assert!(!root.at(Path::new(DROPIN)).parent().unwrap().exists());
    assert_eq!(reloads(&fake), 3);
    let (planned4, _) = plan_limits(&root, &none, false);
    assert!(texts(&planned4).is_empty());
}

#[test]
fn rollback_removes_isolates_dropin_and_leaves_someone_elses() {
    let (_d, root) = v2_root();
    let mut state = crate::state::State::default();
    state.stacks.insert(
        "immich".into(),
        crate::state::StackRecord {
            allocation: allocation(),
            migrations: Vec::new(),
        },
    );
    state.write(&root).unwrap();
    let fake = FakeSystemd::default();
    assert!(apply::rollback(&root, "immich", Some(&fake))
        .unwrap()
        .is_empty());
    let (planned, _) = plan_limits(&root, &policy("tasks_max = 64\n"), false);
    apply::run(&root, &planned.steps[0], Some(&fake)).unwrap();
    assert_eq!(
        apply::rollback(&root, "immich", Some(&fake)).unwrap(),
        [format!("limits of stack immich: removed {DROPIN}")]
    );
    assert!(!root.at(Path::new(DROPIN)).exists());
    assert_eq!(reloads(&fake), 2);
    // Someone else's file at isolate's place: plan refuses, apply refuses, rollback leaves it.
    let theirs = root.at(Path::new(DROPIN));
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, "[Slice]\nMemoryMax=1G\n").unwrap();
    let (none, refusals) = plan_limits(&root, &policy("tasks_max = 64\n"), false);
    assert!(none.steps.is_empty());
    assert_eq!(
        refusals,
        [format!("{DROPIN} exists and was not written by isolate (no `# Written by isolate` header); move it away or fold its settings into [stacks.immich.limits]")]
    );
    assert!(apply::run(&root, &planned.steps[0], Some(&fake)).is_err());
    assert!(apply::rollback(&root, "immich", Some(&fake))
        .unwrap()
        .is_empty());
    assert_eq!(
        std::fs::read_to_string(&theirs).unwrap(),
        "[Slice]\nMemoryMax=1G\n"
    );
}

#[test]
fn plan_says_when_a_limit_cannot_act_and_on_nixos_what_to_declare() {
    let d = tempfile::tempdir().unwrap();
    let v1 = Root::new(d.path());
    let p = policy("memory_max = \"1G\"\ncpu_weight = 20\ntasks_max = 100\nio_weight = 50\n");
    let (planned1, _) = plan_limits(&v1, &p, false);
    let texts1 = texts(&planned1);
    assert_eq!(texts1.len(), 3, "{texts1:?}");
    assert_eq!(
        texts1[1],
        "! limits of stack immich: this host runs cgroup v1 (no /sys/fs/cgroup/cgroup.controllers): memory_max, cpu_weight of user-70001.slice may not act; they are written anyway and act on the unified hierarchy (cgroup v2)"
    );
    assert_eq!(
        texts1[2],
        "! limits of stack immich: io_weight weighs user-70001.slice against the other slices only; user@.service delegates pids, memory and cpu to the user manager, not io, so it has no effect among the stack's own containers"
    );
    let (on_nixos, refusals) = plan_limits(&v1, &p, true);
    assert!(on_nixos.steps.is_empty() && refusals.is_empty());
    assert_eq!(
        texts(&on_nixos),
        ["- limits of stack immich are NixOS's to declare: `isolate export nixos` declares them as systemd.slices.\"user-70001\".sliceConfig (CPUWeight=20 IOWeight=50 MemoryMax=1G TasksMax=100); import it and nixos-rebuild, no drop-in is written"]
    );
    let mut nix = String::new();
    nixos::slice(&mut nix, 70001, &p.stacks["immich"].limits);
    assert_eq!(
        nix,
        format!("  # Its slice's limits: the [Slice] lines apply writes elsewhere into {DROPIN}.\n  systemd.slices.\"user-70001\".sliceConfig = {{\n    CPUWeight = \"20\";\n    IOWeight = \"50\";\n    MemoryMax = \"1G\";\n    TasksMax = \"100\";\n  }};\n")
    );
}
