//! plan() over hand-built observations: order of steps, "already present" outcomes, the
//! systemd steps only when needed, migrations resumed and refused, and the fixpoint
//! invariant plan(policy, observed after apply) == no steps.
use super::*;
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::ids::SubidRange;
use crate::migration::MigrateMode;
use crate::observe::{DataFacts, ManagerFacts, RunningContainer};
use crate::plan::data::legacy_maps;
use crate::state::MigrationPhase;
use crate::state::{Migration, StackRecord};
use crate::walk::Survey;
use std::path::Path;

pub(crate) const POLICY: &str =
    "legacy_owner = \"alice\"\n[stacks.immich]\ndata = [\"/srv/immich\"]\nmigrate = \"shift\"\n";

pub(crate) fn policy(text: &str) -> Policy {
    Policy::parse(Path::new("p.toml"), text).unwrap()
}

fn observed(passwd: &str, group: &str, subids: &str) -> Observed {
    Observed {
        accounts: Accounts {
            passwd: parse_passwd(Path::new("/etc/passwd"), passwd).unwrap(),
            group: parse_group(Path::new("/etc/group"), group).unwrap(),
            subuid: parse_subid(Path::new("/etc/subuid"), subids).unwrap(),
            subgid: parse_subid(Path::new("/etc/subgid"), subids).unwrap(),
        },
        nologin: "/usr/sbin/nologin".into(),
        ..Observed::default()
    }
}

pub(crate) fn fresh() -> Observed {
    observed(
        "alice:x:1000:1000::/home/alice:/bin/sh\n",
        "alice:x:1000:\n",
        "alice:100000:65536\n",
    )
}

pub(crate) fn survey(n: u64) -> DataFacts {
    DataFacts::Surveyed(Survey {
        inodes: n,
        shift: n,
        ..Survey::default()
    })
}

/// What the host looks like once apply has done everything for immich.
pub(crate) fn after_apply() -> Observed {
    let mut o = observed(
        "alice:x:1000:1000::/home/alice:/bin/sh\nstk-immich:x:800:800::/var/lib/isolate/home/stk-immich:/usr/sbin/nologin\n",
        "alice:x:1000:\nstk-shared:x:999:stk-immich\nstk-immich:x:800:\n",
        "alice:100000:65536\nstk-immich:200000:65536\n",
    );
    let a = Allocation {
        user: "stk-immich".into(),
        uid: 800,
        gid: 800,
        subids: SubidRange::new(200_000, 65_536).unwrap(),
    };
    let legacy = legacy_maps(&policy(POLICY), &o.accounts).unwrap();
    o.state.stacks.insert(
        "immich".into(),
        StackRecord {
            migrations: vec![Migration {
                path: "/srv/immich".into(),
                mode: MigrateMode::Shift,
                from: legacy,
                to: a.maps(),
                phase: MigrationPhase::Done,
                journal: "j".into(),
            }],
            allocation: a,
        },
    );
    o.managers.insert(
        "stk-immich".into(),
        ManagerFacts {
            linger: true,
            manager_active: true,
            socket_enabled: true,
            socket_active: true,
            ping_ok: false,
        },
    );
    o
}

use crate::state::Allocation;

fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| {
            serde_json::to_value(s).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_fresh_host_gets_every_step_in_order() {
    let mut o = fresh();
    o.data
        .insert(("immich".into(), "/srv/immich".into()), survey(3));
    let p = plan(
        &policy(POLICY),
        &o,
        &Options {
            systemd: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(
        kinds(&p),
        [
            "create_group",
            "record_allocation",
            "create_group",
            "create_user",
            "add_to_group",
            "add_subids",
            "enable_linger",
            "start_podman_socket",
            "migrate",
            "close_data"
        ]
    );
    let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(lines[5], "+ subuid+subgid stk-immich:1879048192:65536");
    assert_eq!(lines[8], "~ migrate /srv/immich for immich (shift): 3 inodes: 3 shift, 0 reown, 0 already done, 0 left (outside the legacy mapping)");
    match &p.steps[8] {
        Step::Migrate { shift, .. } => {
            assert_eq!(shift.uid(100_998), Some(1_879_048_192 + 998));
            assert_eq!(shift.uid(1000), Some(70_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_plan_after_apply_is_empty() {
    let p = plan(
        &policy(POLICY),
        &after_apply(),
        &Options {
            systemd: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(p.steps, vec![]);
    assert!(
        p.notes.iter().all(|n| n.kind == NoteKind::Present),
        "{:?}",
        p.notes
    );
}

#[test]
fn systemd_steps_appear_only_when_needed() {
    let mut o = after_apply();
    o.managers.get_mut("stk-immich").unwrap().socket_active = false;
    let p = plan(
        &policy(POLICY),
        &o,
        &Options {
            systemd: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(kinds(&p), ["start_podman_socket"]);
    let p = plan(
        &policy(POLICY),
        &o,
        &Options {
            systemd: false,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(p.steps, vec![]);
    assert!(p.notes.iter().any(|n| n.kind == NoteKind::Skipped));
}

#[test]
fn an_interrupted_migration_resumes_with_its_recorded_mappings() {
    let mut o = after_apply();
    let m = &mut o.state.stacks.get_mut("immich").unwrap().migrations[0];
    m.phase = MigrationPhase::Migrating;
    m.from.uid.root = 4242; // whatever it started with, not what the host says now
    o.data
        .insert(("immich".into(), "/srv/immich".into()), survey(1));
    let p = plan(&policy(POLICY), &o, &Options::default()).unwrap();
    match &p.steps[..] {
        // The data path is closed right after its migration finishes.
        [Step::Migrate {
            resume: true,
            shift,
            ..
        }, Step::CloseData(_)] => assert_eq!(shift.from.uid.root, 4242),
        other => panic!("{other:?}"),
    }
}

#[test]
fn processes_inside_the_data_stop_the_plan_naming_each_unless_forced() {
    use crate::host::procs::{Holder, How, Uids};
    let mut o = fresh();
    o.data
        .insert(("immich".into(), "/srv/immich".into()), survey(1));
    let holder = |pid, how| Holder {
        pid,
        uid: 1000,
        uids: Uids {
            real: 1000,
            effective: 1000,
            saved: 1000,
            fs: 1000,
        },
        comm: "bash".into(),
        how,
        path: "/srv/immich".into(),
    };
    let mut many = vec![holder(41, How::Cwd)];
    many.extend((3..9).map(|n| holder(42, How::Fd(n))));
    o.inside
        .insert(("immich".into(), "/srv/immich".into()), Ok(many));
    let e = plan(&policy(POLICY), &o, &Options::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `immich`: 2 process(es) hold a place inside /srv/immich and would keep their access after it changes owner and closes; end them or move them out, then run again (or pass --force):\n  pid 41 (bash, uid 1000 alice): working directory\n  pid 42 (bash, uid 1000 alice): open file 3, open file 4, open file 5, open file 6, and 2 more"
    );
    assert_eq!(e.exit_code(), 2);
    let forced = Options {
        force: true,
        ..Options::default()
    };
    assert!(plan(&policy(POLICY), &o, &forced).is_ok());

    o.inside.insert(
        ("immich".into(), "/srv/immich".into()),
        Err("listing /proc: EPERM".into()),
    );
    let e = plan(&policy(POLICY), &o, &Options::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot look for processes inside /srv/immich"),
        "{e}"
    );
    o.inside
        .insert(("immich".into(), "/srv/immich".into()), Ok(Vec::new()));
    assert!(plan(&policy(POLICY), &o, &Options::default()).is_ok());
}

#[test]
fn running_containers_and_refused_paths_stop_the_plan() {
    let mut o = fresh();
    o.data
        .insert(("immich".into(), "/srv/immich".into()), survey(1));
    o.running.push(RunningContainer {
        owner: "alice".into(),
        name: "immich_postgres".into(),
        data_path: "/srv/immich".into(),
    });
    let e = plan(&policy(POLICY), &o, &Options::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `immich`: containers are running on /srv/immich: immich_postgres (of alice); stop them first (or pass --force)"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(plan(
        &policy(POLICY),
        &o,
        &Options {
            force: true,
            ..Options::default()
        }
    )
    .is_ok());

    o.data.insert(
        ("immich".into(), "/srv/immich".into()),
        DataFacts::Refused("/srv/immich does not exist".into()),
    );
    let e = plan(
        &policy(POLICY),
        &o,
        &Options {
            force: true,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "stack `immich`: /srv/immich does not exist");
}

#[test]
/// The JSON form of a plan is an interface (scripts read `plan --json`): it is compared with a
/// golden file, so any change to it is a visible, reviewed change. Set ISOLATE_BLESS=1 to
/// rewrite the file after an intended change.
fn plan_json_matches_the_golden_file() {
    let mut o = fresh();
    o.data
        .insert(("immich".into(), "/srv/immich".into()), survey(3));
    let opts = Options {
        systemd: true,
        ..Options::default()
    };
    let got =
        serde_json::to_string_pretty(&plan(&policy(POLICY), &o, &opts).unwrap()).unwrap() + "\n";
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan/golden-plan.json");
    if std::env::var_os("ISOLATE_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(&golden).unwrap());
}

#[test]
fn a_missing_data_path_becomes_a_create_step_instead_of_a_migration() {
    let mut o = fresh();
    o.data
        .insert(("immich".into(), "/srv/immich".into()), DataFacts::Missing);
    let p = plan(&policy(POLICY), &o, &Options::default()).unwrap();
    let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert!(
        lines.contains(
            &"+ data /srv/immich for immich: new directory owned by 70000:70000 (container root), mode 0750"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Migrate { .. })));
    // Closed in the same apply, right after it is made.
    assert!(
        matches!(p.steps.last(), Some(Step::CloseData(c)) if c.path == Path::new("/srv/immich"))
    );
}

#[test]
fn on_nixos_accounts_are_listed_for_the_configuration_and_apply_is_refused() {
    let mut o = fresh();
    o.nixos = true;
    let opts = Options {
        systemd: true,
        ..Options::default()
    };
    let p = plan(&policy(POLICY), &o, &opts).unwrap();
    // No account step is planned; what follows them is (it runs once NixOS declared them).
    assert_eq!(
        kinds(&p),
        [
            "record_allocation",
            "enable_linger",
            "start_podman_socket",
            "migrate",
            "close_data"
        ]
    );
    assert_eq!(
        p.nixos_missing,
        [
            "group stk-shared",
            "group stk-immich (gid 70000)",
            "user stk-immich (uid 70000, gid 70000, home /var/lib/isolate/home/stk-immich)",
            "member stk-immich of group stk-shared",
            "subuid+subgid stk-immich:1879048192:65536",
        ]
    );
    let note = p
        .notes
        .iter()
        .find(|n| n.kind == NoteKind::Warning)
        .unwrap();
    assert!(note
        .message
        .contains("isolate export nixos --output /etc/nixos/isolate-stacks.nix"));
    let e = p.nixos_refusal().unwrap();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().starts_with("this is a NixOS host (/etc/NIXOS): its configuration declares accounts and subordinate ids, and a rebuild would undo any isolate created. Not declared yet: group stk-shared; "), "{e}");

    // Once the rebuild declared them, the plan on NixOS is the same as anywhere else.
    let mut done = after_apply();
    done.nixos = true;
    let p = plan(&policy(POLICY), &done, &opts).unwrap();
    assert!(p.nixos_missing.is_empty() && p.nixos_refusal().is_none());
    assert_eq!(p.steps, vec![]);
}

#[test]
fn a_range_where_the_hosts_allocators_hand_out_ranges_is_warned_about() {
    // after_apply() holds immich's range recorded at 200000 (the old default pool).
    let mut o = after_apply();
    o.subid_zones = crate::alloc::zones::host_zones(Some("SUB_UID_MAX 600100000\n"), true);
    let opts = Options {
        systemd: true,
        ..Options::default()
    };
    let p = plan(&policy(POLICY), &o, &opts).unwrap();
    let warnings: Vec<&str> = p
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Warning)
        .map(|n| n.message.as_str())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("stack `immich`: subordinate ids 200000-265535 lie where shadow's useradd (SUB_UID_MIN..SUB_UID_MAX 100000-600100000, in /etc/login.defs) hands out ranges on its own"), "{}", warnings[0]);
    assert!(
        warnings[1].contains("NixOS's automatic ranges")
            && warnings[1].contains("recorded and never moves")
    );

    // A new stack from the default pool lies in no zone.
    let mut f = fresh();
    f.subid_zones = o.subid_zones.clone();
    let p = plan(&policy(POLICY), &f, &opts).unwrap();
    assert!(p.notes.iter().all(|n| n.kind != NoteKind::Warning));
}
