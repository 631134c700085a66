//! The disk budget on a real btrfs (root-run): a loop-mounted image with qgroups enabled, made
//! in a child process inside a private mount namespace so no mount outlives the test. A
//! writer running as one of the stack's mapped uids is stopped at `disk_max` (EDQUOT), another
//! stack's subvolume is not, a second apply does nothing, and removing the key lifts the limit.
mod scratch_common;

use isolate::layout::Root;
use isolate::model::{Outcome, Planned};
use isolate::quota::plan::{plan_stack, StackQuota, Tree};
use isolate::quota::port::QuotaPort;
use isolate::quota::real::RealQuota;
use isolate::quota::QuotaStep;
use isolate::state::State;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHILD_DIR: &str = "ISOLATE_QUOTA_DIR";
const MIB: u64 = 1 << 20;
/// Container uid 1000 of the stack `app` (subordinate ids from 300000) and of `other`.
const APP_WRITER: u32 = 300_999;
const OTHER_WRITER: u32 = 400_999;

fn sh(script: &str) {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `mib` MiB as `uid` into `file`; the writer's stderr when it failed.
fn write_as(uid: u32, file: &Path, mib: u64) -> Result<(), String> {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "dd",
            "if=/dev/zero",
        ])
        .arg(format!("of={}", file.display()))
        .args([
            "bs=1M",
            &format!("count={mib}"),
            "conv=fsync",
            "status=none",
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn plan(root: &Root, stack: &str, disk_max: Option<u64>) -> (Planned<QuotaStep>, Vec<String>) {
    let path = PathBuf::from(format!("/btrfs/{stack}"));
    let facts = RealQuota.look(&root.at(&path)).unwrap();
    let trees = [Tree { path, facts }];
    let state = State::read(root).unwrap();
    let mut planned = Planned::default();
    let mut refusals = Vec::new();
    plan_stack(
        &mut planned,
        &mut refusals,
        &StackQuota {
            stack,
            disk_max,
            trees: &trees,
            recorded: state.quota.get(stack),
        },
    );
    (planned, refusals)
}

fn apply(root: &Root, planned: &Planned<QuotaStep>) -> Vec<Outcome> {
    planned
        .steps
        .iter()
        .map(|s| isolate::quota::apply::run(root, &RealQuota, s).unwrap())
        .collect()
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn btrfs_quota_child() {
    let base = PathBuf::from(std::env::var(CHILD_DIR).expect("run by its parent test"));
    let root = Root::new(base.join("root"));
    let mnt = root.at(Path::new("/btrfs"));
    std::fs::create_dir_all(&mnt).unwrap();
    sh(&format!(
        "truncate -s 512M '{i}' && mkfs.btrfs -q '{i}' && mount -o loop '{i}' '{m}' \
         && btrfs -q subvolume create '{m}/app' && btrfs -q subvolume create '{m}/other' \
         && mkdir '{m}/plain' && chown {APP_WRITER}:{APP_WRITER} '{m}/app' \
         && chown {OTHER_WRITER}:{OTHER_WRITER} '{m}/other'",
        i = base.join("btrfs.img").display(),
        m = mnt.display()
    ));

    // Quotas off: refused, nothing recorded.
    let (planned, refusals) = plan(&root, "app", Some(32 * MIB));
    assert!(planned.steps.is_empty());
    assert!(refusals[0].contains("quotas are off"), "{refusals:?}");
    // A directory inside a subvolume: refused too.
    sh(&format!("btrfs quota enable '{}'", mnt.display()));
    let facts = RealQuota.look(&mnt.join("plain")).unwrap().unwrap();
    assert!(!facts.btrfs.unwrap().is_subvolume_top);

    // Set: the stack's mapped uid is stopped at the limit, the other stack is not.
    let (planned, refusals) = plan(&root, "app", Some(32 * MIB));
    assert!(refusals.is_empty(), "{refusals:?}");
    assert_eq!(apply(&root, &planned), vec![Outcome::Done]);
    let seen = RealQuota.look(&mnt.join("app")).unwrap().unwrap();
    assert_eq!(seen.btrfs.unwrap().limit, Some(32 * MIB));
    let err = write_as(APP_WRITER, &mnt.join("app/big"), 64).unwrap_err();
    assert!(err.contains("Disk quota exceeded"), "{err}");
    write_as(OTHER_WRITER, &mnt.join("other/big"), 64).unwrap();

    // A second apply does nothing.
    let (planned, _) = plan(&root, "app", Some(32 * MIB));
    assert!(planned.steps.is_empty(), "{:?}", planned.steps);

    // The key removed: the limit is gone, the writer goes past it, nothing is recorded.
    let (planned, _) = plan(&root, "app", None);
    assert_eq!(apply(&root, &planned), vec![Outcome::Done]);
    assert_eq!(
        RealQuota
            .look(&mnt.join("app"))
            .unwrap()
            .unwrap()
            .btrfs
            .unwrap()
            .limit,
        None
    );
    std::fs::remove_file(mnt.join("app/big")).unwrap();
    write_as(APP_WRITER, &mnt.join("app/big"), 64).unwrap();
    assert!(State::read(&root).unwrap().quota.is_empty());
    println!("CHILD-OK");
}

#[test]
fn disk_max_stops_a_mapped_writer_on_btrfs_and_only_there() {
    let tmp = scratch_common::tempdir("quota-");
    // The writers (mapped uids) pass through to their subvolumes.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "btrfs_quota_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&tmp.path().display().to_string()),
        "a mount outlived the child"
    );
}
