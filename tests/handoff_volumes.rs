//! Root-run: a named volume's data moves from the legacy store to the stack's and its owners
//! shift like a data path's: by rename on one filesystem, by copy across two (a tmpfs in a
//! private mount namespace), converging after kill -9 at any moment, and `rollback` gives
//! back every owner, mode, ACL and capability where it was.
mod handoff_volumes_common;
use handoff_volumes_common::*;

#[test]
fn a_volume_on_the_same_filesystem_is_renamed_shifted_and_rolled_back_exactly() {
    let fx = volume_fixture();
    let ino = std::fs::metadata(&fx.data).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    move_and_roll_back(&fx);
    // Renamed, not copied: the directory is the same inode.
    let now = std::fs::metadata(&fx.data).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_eq!(ino.unwrap(), now.unwrap());
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
    let store = fx.tmp.path().join(STACK_HOME.trim_start_matches('/'));
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

#[test]
fn a_volume_in_a_home_on_another_filesystem_is_copied_shifted_and_rolled_back_exactly() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns(
            "a_volume_in_a_home_on_another_filesystem_is_copied_shifted_and_rolled_back_exactly",
        );
    }
    // /home on its own filesystem, as on most servers: the data leaves alice's store by a
    // copy from a pinned descriptor, and its original is removed through one.
    let mut fx = fixture();
    let home = fx.tmp.path().join("home/alice");
    std::fs::create_dir_all(&home).unwrap();
    sh(&format!(
        "mount -t tmpfs -o mode=0755 isolate-test '{}'",
        home.display()
    ));
    fx.data = fx.tmp.path().join(FROM.trim_start_matches('/'));
    legacy_store(fx.tmp.path());
    standard_tree_for_rollback(&fx);
    only_alices(&fx.data);
    sh(&format!(
        "cd '{}' && chmod u-s,g-s dir/suid && setcap -r dir/cap2 && setcap -r dir/cap3",
        fx.data.display()
    ));
    let dev = |p: &Path| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(p).unwrap());
    assert_ne!(dev(&home), dev(fx.tmp.path()));
    move_and_roll_back(&fx);
    sh(&format!("umount '{}'", home.display()));
}

/// Not a test on its own: the process `kill -9` interrupts (see below). Runs the volume
/// move on the root named in HANDOFF_KILL_ROOT.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn kill_child_entry() {
    let root = PathBuf::from(
        std::env::var_os("HANDOFF_KILL_ROOT")
            .expect("run by a kill -9 test, with HANDOFF_KILL_ROOT"),
    );
    // The parent counts a run as cut short only once this marker says it began.
    if let Some(started) = std::env::var_os("HANDOFF_KILL_STARTED") {
        std::fs::write(started, "").unwrap();
    }
    let st = stores(&root);
    let step = step_at(&root, false);
    apply::run(
        &Root::new(root),
        &step,
        Some(&st.session()),
        &Walker::locking(false),
        false,
    )
    .unwrap();
}

/// Builds the same big volume under two roots; moves the first in one go and the second
/// with kill -9 at several moments in between re-runs; both must end identical.
/// `own_fs`: a home (below the root) on a tmpfs of its own, so the move crosses filesystems
/// there (None: one filesystem).
fn kill_9_converges(own_fs: Option<&str>) {
    let reference = fixture();
    let killed = fixture();
    for fx in [&reference, &killed] {
        if let Some(home) = own_fs {
            let home = fx.tmp.path().join(home.trim_start_matches('/'));
            std::fs::create_dir_all(&home).unwrap();
            sh(&format!(
                "mount -t tmpfs -o mode=0755 isolate-test '{}'",
                home.display()
            ));
        }
        let data = fx.tmp.path().join(FROM.trim_start_matches('/'));
        legacy_store(fx.tmp.path());
        big_tree(&data, 6_000);
        only_alices(&data);
        allocate(fx.tmp.path());
    }
    // The walk apply runs (locked: a kill leaves the top root's and its intents journalled).
    let walker = Walker::locking(false);
    let r = reference.tmp.path();
    apply::run(
        &Root::new(r),
        &step_at(r, false),
        Some(&stores(r).session()),
        &walker,
        false,
    )
    .unwrap();

    let k = killed.tmp.path();
    let child_test = "kill_child_entry";
    let listed = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", child_test, "--list"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&format!("{child_test}: test\n")),
        "no test {child_test} in this binary to run as the child"
    );
    let markers = tempfile::tempdir().unwrap();
    let mut interrupted = 0;
    let delays: Vec<u64> = std::env::var("HANDOFF_KILL_DELAYS")
        .map(|v| v.split(',').map(|d| d.parse().unwrap()).collect())
        .unwrap_or(vec![5u64, 15, 30, 60, 150, 300]);
    let runs = delays.len();
    for delay_ms in delays {
        let started = markers.path().join(delay_ms.to_string());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", child_test, "--test-threads=1"])
            .env("HANDOFF_KILL_ROOT", k)
            .env("HANDOFF_KILL_STARTED", &started)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            // Finished before the kill: it must have run exactly the child test.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("running 1 test\n") && stdout.contains("test result: ok. 1 passed"),
                "the child did not run exactly {child_test}: {stdout}"
            );
        } else if started.exists() {
            interrupted += 1;
        }
    }
    println!("kill -9: {interrupted} of {runs} runs cut short");
    assert!(
        interrupted > 0,
        "no run was cut short; the tree is too small"
    );
    // Re-planned as the planner does: a run killed after it recorded the volume resumes (the
    // record holds the identity the first plan saw); one killed before starts afresh.
    let recorded = State::read(&Root::new(k))
        .unwrap()
        .handoff
        .get("app")
        .is_some_and(|h| h.volumes.iter().any(|v| v.name == "app_db"));
    let (outcome, _) = apply::run(
        &Root::new(k),
        &step_at(k, recorded),
        Some(&stores(k).session()),
        &walker,
        false,
    )
    .unwrap();
    assert!(
        matches!(
            outcome,
            isolate::apply::Outcome::Done | isolate::apply::Outcome::AlreadyPresent
        ),
        "the re-run after kill -9 did not converge: {outcome:?}"
    );
    // getfacl -R lists in directory order, which differs between two copies: compare lines.
    let sorted = |t: String| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l.sort();
        l.join("\n")
    };
    assert_same(&sorted(listing(&to_dir(k))), &sorted(listing(&to_dir(r))));
    assert!(!k.join(FROM.trim_start_matches('/')).exists());
    assert!(!to_dir(k).with_file_name("_data.isolate-partial").exists());
    if let Some(home) = own_fs {
        for fx in [&reference, &killed] {
            sh(&format!(
                "umount '{}'",
                fx.tmp.path().join(home.trim_start_matches('/')).display()
            ));
        }
    }
}

#[test]
fn kill_9_during_a_volume_move_on_one_filesystem_then_rerun_converges() {
    kill_9_converges(None);
}

#[test]
fn kill_9_during_a_volume_copy_across_filesystems_then_rerun_converges() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns(
            "kill_9_during_a_volume_copy_across_filesystems_then_rerun_converges",
        );
    }
    kill_9_converges(Some(STACK_HOME));
}

#[test]
fn kill_9_during_a_volume_copy_out_of_a_home_on_another_filesystem_then_rerun_converges() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns(
            "kill_9_during_a_volume_copy_out_of_a_home_on_another_filesystem_then_rerun_converges",
        );
    }
    kill_9_converges(Some("/home/alice"));
}

#[test]
fn a_stack_volume_that_already_holds_data_is_never_mixed() {
    let fx = volume_fixture();
    let root = fx.tmp.path();
    allocate(root);
    let st = stores(root);
    let to = to_dir(root);
    std::fs::create_dir_all(&to).unwrap();
    sh(&format!(
        "chown -R {STACK_ROOT}:{STACK_ROOT} '{}'",
        root.join("home/stk-app").display()
    ));
    std::fs::write(to.join("theirs"), "x").unwrap();
    let e = apply::run(
        &Root::new(root),
        &step_at(root, false),
        Some(&st.session()),
        &Walker::new(),
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} already holds data; isolate never mixes two volumes' data",
            to.display()
        )
    );
    assert!(fx.data.join("file").exists());
}
