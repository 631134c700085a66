//! Root-run tests of share journals and kills: a journalled change that never happened or
//! changed since rolls back right, a share apply or rollback killed anywhere still rolls back
//! exactly (the kill-child body is #[ignore]d and re-run with --ignored --exact), and a moved
//! share whose old tree was replaced stops.
mod share_common;
use share_common::*;

#[test]
fn a_journalled_change_that_never_happened_and_one_changed_since_roll_back_right() {
    use isolate::walk::sys::Op;
    let s = Share::new();
    let p = s.path();
    narrow_masks(&p);
    let before = listing(&p);
    let root = Root::new(s.root.path());
    // photos/p1's line is journalled, then its ACL write fails: as a crash between the two.
    let failing = RecordingSys::new().fail(Op::SetXattr, "p1", Errno::IO);
    let err = apply::share(&root, &failing, &RealAclProbe, &s.step(GRANTS)).unwrap_err();
    assert!(
        err.to_string().contains("1 inodes could not be changed"),
        "{err}"
    );
    assert!(!getfacl(&p.join("photos/p1")).contains(&format!("user:{A}:")));
    s.rollback();
    assert_eq!(
        listing(&p),
        before,
        "a journalled change never made is left as it is"
    );

    // Applied again; then an admin adds an entry to a journalled inode.
    s.apply(GRANTS);
    sh(&format!(
        "setfacl -m u:4244:r '{}'",
        p.join("photos/p1").display()
    ));
    let done = s.rollback();
    assert_eq!(
        (done.changed_since_count, done.changed_since.clone()),
        (1, vec![PathBuf::from("photos/p1")])
    );
    let p1 = getfacl(&p.join("photos/p1"));
    assert!(p1.contains("user:4244:r--\n"), "their change stays: {p1}");
    assert!(
        !p1.contains(&format!("user:{A}:")),
        "isolate's entry goes: {p1}"
    );
    assert_eq!(effective(&p1, "user:34"), "r--", "still no wider: {p1}");
    // Everything else is exactly as before.
    let strip = |l: &str| {
        l.split("\n\n")
            .filter(|b| !b.contains("# file: photos/p1\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(strip(&listing(&p)), strip(&before));
}

#[test]
fn a_directory_left_between_its_access_and_default_acl_writes_rolls_back_exactly() {
    use isolate::walk::sys::Op;
    let s = Share::new();
    let p = s.path();
    narrow_masks(&p);
    let before = listing(&p);
    let root = Root::new(s.root.path());
    // photos gets its access ACL, then its default ACL's write fails: the state a kill
    // between the two calls leaves (neither as before nor as isolate leaves it).
    let failing = RecordingSys::new().fail_with_detail(
        Op::SetXattr,
        "photos",
        "system.posix_acl_default",
        Errno::IO,
    );
    apply::share(&root, &failing, &RealAclProbe, &s.step(GRANTS)).unwrap_err();
    let half = getfacl(&p.join("photos"));
    assert!(half.contains(&format!("user:{A}:")), "{half}");
    assert!(!half.contains(&format!("default:user:{A}:")), "{half}");
    let done = s.rollback();
    assert_eq!(done.changed_since_count, 0, "{:?}", done.changed_since);
    unchanged(&p, &before, "after a rollback of a half-written directory");
}

/// Inodes of the share that get a's entry (every one but the symlink), counted once.
fn granted_total(p: &Path) -> usize {
    sh(&format!("find -P '{}' ! -type l | wc -l", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn apply_on(root: &Path) -> Result<Done, Error> {
    let s = Share {
        root: tempfile::TempDir::new().unwrap(), // only for step(): not used as the root
    };
    apply::share(
        &Root::new(root),
        &RealSys::new(),
        &RealAclProbe,
        &s.step(GRANTS),
    )
}

fn rollback_on(root: &Path) -> Result<Done, Error> {
    apply::rollback_share(
        &Root::new(root),
        &RealSys::new(),
        &RealAclProbe,
        "s",
        &all_maps(),
        "stk-shared",
        None,
    )
}

/// Not a test on its own: the process `kill -9` interrupts. Applies (SHARE_KILL_OP=apply) or
/// rolls back the share under SHARE_KILL_ROOT.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn share_kill_child_entry() {
    let root = PathBuf::from(
        std::env::var_os("SHARE_KILL_ROOT").expect("run by a kill -9 test, with SHARE_KILL_ROOT"),
    );
    match std::env::var("SHARE_KILL_OP").unwrap().as_str() {
        "apply" => drop(apply_on(&root).unwrap()),
        _ => drop(rollback_on(&root).unwrap()),
    }
}

/// Runs the child entry on `root` and kills it after `delay_ms`; true if it was cut short.
fn killed_after(root: &Path, op: &str, delay_ms: u64) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "share_kill_child_entry",
            "--test-threads=1",
        ])
        .env("SHARE_KILL_ROOT", root)
        .env("SHARE_KILL_OP", op)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    child.kill().unwrap(); // SIGKILL
    !child.wait().unwrap().success()
}

/// Fails with the lines that differ (a full listing of 3,000 inodes would hide them).
fn unchanged(p: &Path, before: &str, when: &str) {
    let now = listing(p);
    if now != before {
        let (b, n): (Vec<&str>, Vec<&str>) = (before.lines().collect(), now.lines().collect());
        let gone: Vec<_> = b.iter().filter(|l| !n.contains(l)).take(20).collect();
        let new: Vec<_> = n.iter().filter(|l| !b.contains(l)).take(20).collect();
        panic!("{when}: the share is not as before\nonly before: {gone:#?}\nonly now: {new:#?}");
    }
}

/// Rolls back what is recorded (nothing may be, if the kill came first).
fn finish_rollback(root: &Path) {
    if Record::read(&Root::new(root))
        .unwrap()
        .shares_named("s")
        .count()
        > 0
    {
        rollback_on(root).unwrap();
    }
}

#[test]
fn a_share_apply_or_rollback_killed_anywhere_still_rolls_back_exactly() {
    let s = Share::new();
    let p = s.path();
    narrow_masks(&p);
    // 3,000 more inodes, half of them with a backup user's entry wider than the mask.
    sh(&format!(
        "cd '{}' && for d in $(seq 30); do mkdir -p big/d$d; for f in $(seq 100); do echo x >big/d$d/f$f; done; done \
         && chown -R 1000:1000 big && setfacl -R -m u:34:rwx,m::rx big/d1 big/d2 big/d3 big/d4 big/d5 big/d6 big/d7 big/d8 big/d9 big/d10 big/d11 big/d12 big/d13 big/d14 big/d15",
        p.display()
    ));
    let before = listing(&p);
    let root = s.root.path();
    let (mut interrupted, mut rounds, mut midway) = (0, 0, 0);
    // How many inodes carry a's entry now.
    let granted = || {
        sh(&format!("getfacl -R -n -P '{}' 2>/dev/null", p.display()))
            .lines()
            .filter(|l| l.starts_with(&format!("user:{A}:")))
            .count()
    };
    let total = granted_total(&p);
    let delays: Vec<u64> = std::env::var("SHARE_KILL_DELAYS")
        .map(|v| v.split(',').map(|d| d.parse().unwrap()).collect())
        .unwrap_or(vec![5u64, 8, 10, 12, 15, 20, 25, 30, 40, 60, 100, 250]);
    for delay_ms in delays {
        // Apply killed, then rolled back.
        rounds += 1;
        interrupted += u32::from(killed_after(root, "apply", delay_ms));
        let n = granted();
        midway += u32::from(n > 0 && n < total);
        finish_rollback(root);
        unchanged(
            &p,
            &before,
            &format!("after an apply killed at {delay_ms} ms"),
        );
        // Apply killed, applied again to the end: nobody else gains a right.
        rounds += 1;
        interrupted += u32::from(killed_after(root, "apply", delay_ms));
        apply_on(root).unwrap();
        assert_eq!(
            effective(&getfacl(&p.join("big/d1/f1")), "user:34"),
            "r-x",
            "after an apply killed at {delay_ms} ms and run again"
        );
        // Rollback killed, then run to the end.
        assert_eq!(granted(), total);
        rounds += 1;
        interrupted += u32::from(killed_after(root, "rollback", delay_ms));
        let n = granted();
        midway += u32::from(n > 0 && n < total);
        finish_rollback(root);
        unchanged(
            &p,
            &before,
            &format!("after a rollback killed at {delay_ms} ms"),
        );
    }
    eprintln!(
        "{interrupted} of {rounds} runs cut short by kill -9, {midway} of them mid-walk; every one rolled back exactly"
    );
    assert!(
        midway > 0,
        "no run was cut short mid-walk; the tree is too small"
    );
}

#[test]
fn a_moved_share_whose_old_tree_was_replaced_stops_and_one_gone_is_forgotten() {
    let s = Share::new();
    let t = s.root.path().join("srv/t");
    fill_tree(&t);
    let t_before = listing(&t);
    let root = Root::new(s.root.path());
    s.apply(GRANTS);
    // Another directory stands at the old path (the old one moved aside, or a mount missing).
    let aside = s.root.path().join("srv/s.old");
    std::fs::rename(s.path(), &aside).unwrap();
    std::fs::create_dir(s.path()).unwrap();
    let err = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("/srv/s is another directory than the one isolate changed"),
        "{err}"
    );
    assert_eq!(listing(&t), t_before, "the new path is not touched");
    assert_eq!(Record::read(&root).unwrap().shares_named("s").count(), 1);
    // Gone for good: nothing stands there; the old tree is forgotten, the new one granted.
    std::fs::remove_dir(s.path()).unwrap();
    let done = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap();
    assert!(done.moved_gone && done.changed > 0, "{done:?}");
    assert!(
        done.line()
            .starts_with("/srv/s (the share's old path) no longer exists"),
        "{}",
        done.line()
    );
    let paths: Vec<_> = Record::read(&root)
        .unwrap()
        .shares_named("s")
        .map(|t| t.path.clone())
        .collect();
    assert_eq!(paths, vec![PathBuf::from("/srv/t")]);
    s.rollback();
    assert_eq!(listing(&t), t_before);
}
