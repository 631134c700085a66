//! The disk budget's plan and apply against the recording fake: the refusal texts (exact),
//! set, second apply, changed value, key removed, rollback.
use super::apply::{restore_stack, run};
use super::fake::FakeQuota;
use super::plan::{plan_stack, StackQuota, Tree};
use super::port::{BtrfsFacts, Filesystem, ProjectQuota, TreeFacts};
use super::QuotaStep;
use crate::layout::Root;
use crate::model::{Outcome, Planned};
use crate::state::State;
use std::path::{Path, PathBuf};

const G: u64 = 1 << 30;

fn btrfs(top: bool, quota: bool, limit: Option<u64>) -> TreeFacts {
    TreeFacts {
        filesystem: Filesystem::Btrfs,
        dev: 42,
        ino: if top { 256 } else { 300 },
        btrfs: Some(BtrfsFacts {
            subvolume: 257,
            is_subvolume_top: top,
            quota_enabled: quota,
            limit,
            referenced: 0,
        }),
        project: None,
    }
}

fn project(fs: Filesystem, p: ProjectQuota) -> TreeFacts {
    TreeFacts {
        filesystem: fs,
        dev: 7,
        ino: 2,
        btrfs: None,
        project: Some(p),
    }
}

fn plan(
    disk_max: Option<u64>,
    facts: Option<TreeFacts>,
    state: &State,
) -> (Planned<QuotaStep>, Vec<String>) {
    let trees = [Tree {
        path: PathBuf::from("/srv/app"),
        facts,
    }];
    let mut planned = Planned::default();
    let mut refusals = Vec::new();
    plan_stack(
        &mut planned,
        &mut refusals,
        &StackQuota {
            stack: "app",
            disk_max,
            trees: &trees,
            recorded: state.quota.get("app"),
        },
    );
    (planned, refusals)
}

fn refusal(facts: Option<TreeFacts>) -> String {
    let (planned, refusals) = plan(Some(200 * G), facts, &State::default());
    assert!(planned.steps.is_empty());
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    refusals[0].clone()
}

#[test]
fn where_the_filesystem_cannot_the_refusal_names_path_filesystem_and_the_way() {
    assert_eq!(
        refusal(None),
        "app: disk_max: /srv/app does not exist yet; a limit is set on an existing tree: apply \
         once without disk_max (it creates the data path), then add the key"
    );
    assert_eq!(
        refusal(Some(TreeFacts {
            filesystem: Filesystem::Tmpfs,
            dev: 1,
            ino: 1,
            btrfs: None,
            project: None
        })),
        "app: disk_max: /srv/app is on tmpfs, which has no limit for one tree. What would make \
         it possible: the data on a btrfs subvolume of its own (quotas enabled) or on ext4/xfs \
         with project quotas"
    );
    assert_eq!(
        refusal(Some(btrfs(false, true, None))),
        "app: disk_max: /srv/app is a directory inside btrfs subvolume 257, not a subvolume of \
         its own; a qgroup limit on that subvolume would hold everything else in it too. What \
         would make it possible: with the stack stopped, make /srv/app a subvolume (`btrfs \
         subvolume create`, move the files in); isolate never moves existing data itself"
    );
    assert_eq!(
        refusal(Some(btrfs(true, false, None))),
        "app: disk_max: /srv/app is btrfs subvolume 257 but quotas are off on its filesystem. \
         What would make it possible: `btrfs quota enable` on its mount point (qgroups cost \
         write speed on the whole filesystem, so isolate leaves that choice to you)"
    );
    assert_eq!(
        refusal(Some(project(
            Filesystem::Ext4,
            ProjectQuota::NoKernelSupport
        ))),
        "app: disk_max: /srv/app is on ext4, and this kernel has no quota support for ext4 (no \
         quota format). What would make it possible: a kernel with quota support \
         (CONFIG_QUOTA, and CONFIG_QFMT_V2 for ext4) and project quotas on the filesystem, or \
         the data on a btrfs subvolume"
    );
    assert_eq!(
        refusal(Some(project(Filesystem::Ext4, ProjectQuota::Off))),
        "app: disk_max: /srv/app is on ext4 without project quotas. What would make it \
         possible: the filesystem's `project` and `quota` features (`tune2fs -O project,quota` \
         while it is unmounted), or the data on a btrfs subvolume"
    );
    assert_eq!(
        refusal(Some(project(Filesystem::Xfs, ProjectQuota::Off))),
        "app: disk_max: /srv/app is on xfs mounted without project quotas. What would make it \
         possible: mounting it with `pquota`, or the data on a btrfs subvolume"
    );
    assert_eq!(
        refusal(Some(project(Filesystem::Xfs, ProjectQuota::On))),
        "app: disk_max: /srv/app is on xfs with project quotas on, but isolate does not set \
         project ids yet (every existing file of the tree would need the stack's project id). \
         What would make it possible today: the data on a btrfs subvolume"
    );
}

#[test]
fn a_refused_key_calls_nothing_and_records_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let (planned, refusals) = plan(Some(G), Some(btrfs(false, true, None)), &State::default());
    assert!(planned.steps.is_empty() && refusals.len() == 1);
    assert_eq!(State::read(&root).unwrap(), State::default());
}

#[test]
fn set_second_apply_change_and_removal_through_the_port() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let host = root.at(Path::new("/srv/app"));
    let port = FakeQuota::with(&[(&host, btrfs(true, true, None))]);
    let look = || port.trees.borrow().get(&host).copied();

    // Set.
    let (planned, refusals) = plan(Some(200 * G), look(), &State::read(&root).unwrap());
    assert!(refusals.is_empty());
    assert_eq!(planned.steps.len(), 1);
    assert_eq!(
        planned.steps[0].to_string(),
        "+ disk_max 200G for app: btrfs qgroup 0/257 of /srv/app limited to 214748364800 bytes referenced"
    );
    assert_eq!(run(&root, &port, &planned.steps[0]).unwrap(), Outcome::Done);
    assert_eq!(
        *port.calls.borrow(),
        vec![(host.clone(), 257, Some(200 * G))]
    );
    let rec = State::read(&root).unwrap().quota["app"].clone();
    assert_eq!(rec.btrfs[0].was, None);

    // A second apply does nothing.
    let (planned, _) = plan(Some(200 * G), look(), &State::read(&root).unwrap());
    assert!(planned.steps.is_empty());
    assert_eq!(
        planned.notes[0].message,
        "disk_max 200G on /srv/app: btrfs qgroup 0/257 already limited"
    );

    // Changed in place.
    let (planned, _) = plan(Some(G), look(), &State::read(&root).unwrap());
    assert_eq!(
        planned.steps[0].to_string(),
        "~ disk_max 1G for app: btrfs qgroup 0/257 of /srv/app limited to 1073741824 bytes referenced (was 214748364800)"
    );
    run(&root, &port, &planned.steps[0]).unwrap();
    let rec = State::read(&root).unwrap().quota["app"].clone();
    assert_eq!((rec.btrfs[0].bytes, rec.btrfs[0].was), (G, None));

    // The key removed: the limit found before (none) is back and the record gone.
    let (planned, _) = plan(None, look(), &State::read(&root).unwrap());
    assert_eq!(
        planned.steps[0].to_string(),
        "- disk_max 1G for app: btrfs qgroup 0/257 of /srv/app no longer limited"
    );
    assert_eq!(run(&root, &port, &planned.steps[0]).unwrap(), Outcome::Done);
    assert_eq!(
        port.calls.borrow().last().unwrap(),
        &(host.clone(), 257, None)
    );
    assert_eq!(look().unwrap().btrfs.unwrap().limit, None);
    assert_eq!(State::read(&root).unwrap(), State::default());
    let (planned, _) = plan(None, look(), &State::read(&root).unwrap());
    assert!(planned.steps.is_empty());
}

#[test]
fn rollback_puts_back_the_admins_own_limit() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let host = root.at(Path::new("/srv/app"));
    let port = FakeQuota::with(&[(&host, btrfs(true, true, Some(500 * G)))]);
    let facts = port.trees.borrow().get(&host).copied();
    let (planned, _) = plan(Some(G), facts, &State::default());
    run(&root, &port, &planned.steps[0]).unwrap();
    let undone = restore_stack(&root, &port, "app").unwrap();
    assert_eq!(undone.len(), 1);
    assert_eq!(undone[0].1, Outcome::Done);
    assert_eq!(
        undone[0].0.to_string(),
        "- disk_max 1G for app: btrfs qgroup 0/257 of /srv/app back to its limit before isolate (536870912000 bytes)"
    );
    assert_eq!(
        port.calls.borrow().last().unwrap(),
        &(host, 257, Some(500 * G))
    );
    assert_eq!(State::read(&root).unwrap(), State::default());
    // Nothing recorded: nothing to do.
    assert!(restore_stack(&root, &port, "app").unwrap().is_empty());
}

#[test]
fn a_subvolume_gone_since_is_only_forgotten() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let host = root.at(Path::new("/srv/app"));
    let port = FakeQuota::with(&[(&host, btrfs(true, true, None))]);
    let facts = port.trees.borrow().get(&host).copied();
    let (planned, _) = plan(Some(G), facts, &State::default());
    run(&root, &port, &planned.steps[0]).unwrap();
    port.trees.borrow_mut().clear();
    let undone = restore_stack(&root, &port, "app").unwrap();
    assert!(matches!(undone[0].1, Outcome::NotFound { .. }));
    assert_eq!(
        port.calls.borrow().len(),
        1,
        "no call on a tree that is gone"
    );
    assert_eq!(State::read(&root).unwrap(), State::default());
}

#[test]
fn a_limit_below_what_the_tree_uses_is_warned_about() {
    let mut facts = btrfs(true, true, None);
    facts.btrfs.as_mut().unwrap().referenced = 2 * G;
    let (planned, refusals) = plan(Some(G), Some(facts), &State::default());
    assert!(refusals.is_empty());
    assert_eq!(planned.steps.len(), 1);
    assert_eq!(
        planned.notes[0].message,
        "disk_max 1G: /srv/app already uses 2147483648 bytes, more than the limit; the stack \
         cannot write there (not even create a file) until it frees space"
    );
}
