//! Root-run: a named volume's data moves from the legacy store to the stack's and its owners
//! shift like a data path's: by rename on one filesystem, by copy across two (a tmpfs in a
//! private mount namespace), converging after kill -9 at any moment, and `rollback` gives
//! back every owner, mode, ACL and capability where it was.
mod walk_common;

use isolate::apply::Walker;
use isolate::handoff::stores::FakeStores;
use isolate::handoff::{apply, HandoffStep};
use isolate::ids::SubidRange;
use isolate::layout::Root;
use isolate::migration::MigrateMode;
use isolate::state::{Allocation, StackRecord, State};
use std::path::{Path, PathBuf};
use std::process::Command;
use walk_common::*;

const FROM: &str = "/legacy/volumes/app_db/_data";
const STORE: &str = "/stackstore";

fn to_dir(root: &Path) -> PathBuf {
    root.join("stackstore")
        .join(STACK_ROOT.to_string())
        .join("app_db/_data")
}

/// The state file of a root where stack `app` is allocated uid 850 and 200000:65536.
fn allocate(root: &Path) {
    let mut s = State::default();
    s.stacks.insert(
        "app".into(),
        StackRecord {
            allocation: Allocation {
                user: "stk-app".into(),
                uid: STACK_ROOT,
                gid: STACK_ROOT,
                subids: SubidRange::new(200_000, 65_536).unwrap(),
            },
            migrations: vec![],
        },
    );
    s.write(&Root::new(root)).unwrap();
}

fn step() -> HandoffStep {
    let spec = spec(MigrateMode::Shift);
    HandoffStep::MoveVolume {
        stack: "app".into(),
        name: "app_db".into(),
        labels: [("io.podman.compose.project".to_string(), "app".to_string())].into(),
        from_user: "alice".into(),
        from: FROM.into(),
        to_user: "stk-app".into(),
        to_uid: STACK_ROOT,
        mode: spec.mode,
        shift: spec.shift,
        target_uid: STACK_ROOT,
        target_gid: STACK_ROOT,
        resume: false,
    }
}

fn stores(root: &Path) -> FakeStores {
    FakeStores {
        volume_base: STORE.into(),
        root: root.into(),
        ..FakeStores::default()
    }
}

/// Moves `/legacy/volumes/app_db/_data` under `root`, checks the stack's container view,
/// rolls back and checks the legacy tree is byte for byte what it was.
fn move_and_roll_back(fx: &Fixture) {
    let root = fx.tmp.path();
    let before = listing(&fx.data);
    allocate(root);
    let st = stores(root);
    let walker = Walker::new();
    let (outcome, summary) =
        apply::run(&Root::new(root), &step(), Some(&st), &walker, false).unwrap();
    assert_eq!(outcome, isolate::apply::Outcome::Done);
    assert!(summary.unwrap().changed > 0);
    assert!(!fx.data.exists(), "the legacy volume still holds its data");
    let to = to_dir(root);
    // Container uid 999 (legacy 100998) is 200998 in the stack's mapping.
    assert_eq!(owner(&to.join("file")), (200_998, 200_998));
    assert_eq!(owner(&to.join("legacy-root")), (STACK_ROOT, STACK_ROOT));
    assert_eq!(mode(&to.join("dir/suid")) & 0o777, 0o755);
    // A re-run is a no-op.
    let (again, _) = apply::run(&Root::new(root), &step(), Some(&st), &walker, false).unwrap();
    assert_eq!(again, isolate::apply::Outcome::AlreadyPresent);

    let lines = apply::rollback(&Root::new(root), "app", Some(&st), &walker, false).unwrap();
    assert_eq!(lines, vec![format!("volume app_db: data back in {FROM}")]);
    assert_same(&listing(&fx.data), &before);
    assert!(to.is_dir(), "the stack's volume keeps an empty directory");
    assert_eq!(std::fs::read_dir(&to).unwrap().count(), 0);
    assert!(State::read(&Root::new(root)).unwrap().handoff.is_empty());
}

/// The fixture's data at /legacy/volumes/app_db/_data of its root.
fn volume_fixture() -> Fixture {
    let mut fx = fixture();
    fx.data = fx.tmp.path().join(FROM.trim_start_matches('/'));
    std::fs::create_dir_all(fx.data.parent().unwrap()).unwrap();
    standard_tree_for_rollback(&fx);
    fx
}

#[test]
fn a_volume_on_the_same_filesystem_is_renamed_shifted_and_rolled_back_exactly() {
    let fx = volume_fixture();
    let ino = std::fs::metadata(&fx.data).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    move_and_roll_back(&fx);
    // Renamed, not copied: the directory is the same inode.
    let now = std::fs::metadata(&fx.data).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_eq!(ino.unwrap(), now.unwrap());
}

/// Runs this test binary's test `name` again inside a private mount namespace.
fn in_private_mount_ns(name: &str) {
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("HANDOFF_IN_MOUNT_NS", "1")
        .status()
        .unwrap();
    assert!(status.success(), "{name} failed in its mount namespace");
}

#[test]
fn a_volume_across_filesystems_is_copied_shifted_and_rolled_back_exactly() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns(
            "a_volume_across_filesystems_is_copied_shifted_and_rolled_back_exactly",
        );
    }
    let fx = volume_fixture();
    // A copy is a new inode: the walk's rollback never gives setuid/setgid or a capability
    // back to an inode it cannot prove unchanged (see walk), so this tree holds none.
    sh(&format!(
        "cd '{}' && chmod u-s,g-s dir/suid && setcap -r dir/cap2 && setcap -r dir/cap3",
        fx.data.display()
    ));
    let store = fx.tmp.path().join("stackstore");
    std::fs::create_dir_all(&store).unwrap();
    sh(&format!(
        "mount -t tmpfs -o mode=0755 isolate-test '{}'",
        store.display()
    ));
    // Two filesystems: rename(2) fails with EXDEV, so only the copy path can pass.
    let dev = |p: &Path| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(p).unwrap());
    assert_ne!(dev(&store), dev(&fx.data));
    move_and_roll_back(&fx);
    sh(&format!("umount '{}'", store.display()));
}

/// Not a test on its own: the process `kill -9` interrupts (see below). Runs the volume
/// move on the root named in HANDOFF_KILL_ROOT.
#[test]
fn kill_child_entry() {
    let Some(root) = std::env::var_os("HANDOFF_KILL_ROOT") else {
        return;
    };
    let root = PathBuf::from(root);
    let st = stores(&root);
    apply::run(&Root::new(root), &step(), Some(&st), &Walker::new(), false).unwrap();
}

/// Builds the same big volume under two roots; moves the first in one go and the second
/// with kill -9 at several moments in between re-runs; both must end identical.
fn kill_9_converges(across: bool) {
    let reference = fixture();
    let killed = fixture();
    for fx in [&reference, &killed] {
        let data = fx.tmp.path().join(FROM.trim_start_matches('/'));
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        big_tree(&data, 6_000);
        allocate(fx.tmp.path());
        if across {
            let store = fx.tmp.path().join("stackstore");
            std::fs::create_dir_all(&store).unwrap();
            sh(&format!(
                "mount -t tmpfs -o mode=0755 isolate-test '{}'",
                store.display()
            ));
        }
    }
    let walker = Walker::new();
    let r = reference.tmp.path();
    apply::run(&Root::new(r), &step(), Some(&stores(r)), &walker, false).unwrap();

    let k = killed.tmp.path();
    let mut interrupted = 0;
    for delay_ms in [20u64, 60, 150, 300] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kill_child_entry", "--test-threads=1"])
            .env("HANDOFF_KILL_ROOT", k)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no run was cut short; the tree is too small"
    );
    let (outcome, _) =
        apply::run(&Root::new(k), &step(), Some(&stores(k)), &walker, false).unwrap();
    assert!(matches!(
        outcome,
        isolate::apply::Outcome::Done | isolate::apply::Outcome::AlreadyPresent
    ));
    // getfacl -R lists in directory order, which differs between two copies: compare lines.
    let sorted = |t: String| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l.sort();
        l.join("\n")
    };
    assert_same(&sorted(listing(&to_dir(k))), &sorted(listing(&to_dir(r))));
    assert!(!k.join(FROM.trim_start_matches('/')).exists());
    assert!(!to_dir(k).with_file_name("_data.isolate-partial").exists());
    if across {
        for fx in [&reference, &killed] {
            sh(&format!(
                "umount '{}'",
                fx.tmp.path().join("stackstore").display()
            ));
        }
    }
}

#[test]
fn kill_9_during_a_volume_move_on_one_filesystem_then_rerun_converges() {
    kill_9_converges(false);
}

#[test]
fn kill_9_during_a_volume_copy_across_filesystems_then_rerun_converges() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns(
            "kill_9_during_a_volume_copy_across_filesystems_then_rerun_converges",
        );
    }
    kill_9_converges(true);
}

#[test]
fn a_stack_volume_that_already_holds_data_is_never_mixed() {
    let fx = volume_fixture();
    let root = fx.tmp.path();
    allocate(root);
    let st = stores(root);
    let to = to_dir(root);
    std::fs::create_dir_all(&to).unwrap();
    std::fs::write(to.join("theirs"), "x").unwrap();
    let e = apply::run(&Root::new(root), &step(), Some(&st), &Walker::new(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} already holds data; isolate never mixes two volumes' data",
            to.display()
        )
    );
    assert!(fx.data.join("file").exists());
}
