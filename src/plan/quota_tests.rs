//! `disk_max` through plan(): the key becomes a quota step where the filesystem holds a limit,
//! a refusal (exit 2, no step) where it cannot, nothing once set, and a step taking it back
//! when the key is gone.
use super::tests::{after_apply, policy, POLICY};
use super::*;
use crate::quota::plan::Tree;
use crate::quota::port::{BtrfsFacts, Filesystem, TreeFacts};
use crate::quota::QuotaStep;
use crate::state::quota::{BtrfsLimitRecord, QuotaRecord};

const G: u64 = 1 << 30;

fn with_disk_max() -> Policy {
    policy(&format!(
        "{POLICY}[stacks.immich.limits]\ndisk_max = \"1G\"\n"
    ))
}

fn on(filesystem: Filesystem, limit: Option<u64>) -> Observed {
    let mut o = after_apply();
    o.quota.insert(
        "immich".into(),
        vec![Tree {
            path: "/srv/immich".into(),
            facts: Some(TreeFacts {
                filesystem,
                dev: 9,
                ino: 256,
                btrfs: (filesystem == Filesystem::Btrfs).then_some(BtrfsFacts {
                    subvolume: 260,
                    is_subvolume_top: true,
                    quota_enabled: true,
                    limit,
                    referenced: 0,
                }),
                project: None,
            }),
        }],
    );
    o
}

fn set_step(was: Option<u64>) -> Step {
    Step::Quota(QuotaStep::SetBtrfs {
        stack: "immich".into(),
        path: "/srv/immich".into(),
        subvolume: 260,
        dev: 9,
        bytes: G,
        was,
    })
}

#[test]
fn disk_max_on_a_btrfs_subvolume_is_one_step_and_nothing_once_set() {
    let p = plan(
        &with_disk_max(),
        &on(Filesystem::Btrfs, None),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(p.steps, vec![set_step(None)]);
    let p = plan(
        &with_disk_max(),
        &on(Filesystem::Btrfs, Some(G)),
        &Options::default(),
    )
    .unwrap();
    assert!(p.steps.is_empty(), "{:?}", p.steps);
}

#[test]
fn disk_max_on_tmpfs_is_refused_with_exit_2_and_plan_shows_why() {
    let err = plan(
        &with_disk_max(),
        &on(Filesystem::Tmpfs, None),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().starts_with(
            "immich: disk_max: /srv/immich is on tmpfs, which has no limit for one tree."
        ),
        "{err}"
    );
    let (p, refusals) = preview(
        &with_disk_max(),
        &on(Filesystem::Tmpfs, None),
        &Options::default(),
    )
    .unwrap();
    assert!(p.steps.is_empty());
    assert_eq!(refusals.len(), 1);
}

#[test]
fn a_removed_key_takes_back_what_isolate_set() {
    let mut o = on(Filesystem::Btrfs, Some(G));
    o.quota.clear();
    o.state.quota.insert(
        "immich".into(),
        QuotaRecord {
            btrfs: vec![BtrfsLimitRecord {
                path: "/srv/immich".into(),
                dev: 9,
                subvolume: 260,
                bytes: G,
                was: None,
            }],
        },
    );
    let p = plan(&policy(POLICY), &o, &Options::default()).unwrap();
    assert_eq!(
        p.steps,
        vec![Step::Quota(QuotaStep::RestoreBtrfs {
            stack: "immich".into(),
            path: "/srv/immich".into(),
            subvolume: 260,
            dev: 9,
            bytes: G,
            to: None,
        })]
    );
}
