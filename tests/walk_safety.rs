//! The walk under attack and accident (run as root, temp trees only): symlinks swapped in for
//! directories mid-walk, mounts inside the data path (in a private mount namespace), and
//! kill -9 at arbitrary points followed by a re-run that must converge.
mod walk_common;

use isolate::migration::MigrateMode;
use isolate::walk::sys::RealSys;
use isolate::walk::{self, Progress};
use rustix::fs::{renameat_with, RenameFlags, CWD};
use std::os::unix::fs::{chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use walk_common::*;

fn run(data: &Path, journal: &Path, mode: MigrateMode) -> walk::Summary {
    walk::migrate(
        &RealSys::new(),
        data,
        &spec(mode),
        journal,
        &Progress::off(),
    )
    .unwrap()
}

/// Re-runs this test binary for one test function, with `env` telling it what to do.
fn child(test: &str, env: (&str, String)) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(env.0, env.1);
    cmd
}

#[test]
fn symlink_swapped_for_a_directory_mid_walk_never_leads_outside() {
    let fx = fixture();
    // Outside: many legacy-owned inodes a followed link would change.
    for i in 0..20 {
        let d = fx.outside.join(format!("o{i}"));
        std::fs::create_dir(&d).unwrap();
        chown(&d, Some(100_998), Some(100_998)).unwrap();
        for j in 0..20 {
            let f = d.join(format!("f{j}"));
            std::fs::write(&f, b"x").unwrap();
            chown(&f, Some(100_500), Some(100_500)).unwrap();
        }
    }
    let outside_before = listing(&fx.outside);
    big_tree(&fx.data, 100);
    const VICTIMS: usize = 24;
    for v in 0..VICTIMS {
        big_tree(&fx.data.join(format!("victim{v}")), 600);
        symlink(&fx.outside, fx.data.join(format!("swap{v}"))).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, swaps, data) = (stop.clone(), swaps.clone(), fx.data.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for v in 0..VICTIMS {
                    renameat_with(
                        CWD,
                        data.join(format!("victim{v}")),
                        CWD,
                        data.join(format!("swap{v}")),
                        RenameFlags::EXCHANGE,
                    )
                    .unwrap();
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let journal = fx.tmp.path().join("j");
    let mut raced = 0;
    for mode in [
        MigrateMode::Shift,
        MigrateMode::Auto,
        MigrateMode::Shift,
        MigrateMode::Reown,
        MigrateMode::Auto,
    ] {
        raced += run(&fx.data, &journal, mode).skipped_raced;
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 1000, "the attacker ran");
    eprintln!("entries that changed under the walk: {raced}");
    assert!(
        raced > 0,
        "the attacker never won a race: the test proves nothing"
    );
    assert_same(&listing(&fx.outside), &outside_before);
    // Once the attack stops, a run reaches everything that is left.
    for v in 0..VICTIMS {
        let d = fx.data.join(format!("victim{v}"));
        if d.is_symlink() {
            renameat_with(
                CWD,
                &d,
                CWD,
                fx.data.join(format!("swap{v}")),
                RenameFlags::EXCHANGE,
            )
            .unwrap();
        }
    }
    let last = run(&fx.data, &journal, MigrateMode::Reown);
    assert_eq!(last.skipped_raced, 0);
    let left = sh(&format!(
        "find -P '{}' \\( ! -uid 850 -o ! -gid 850 \\) | head",
        fx.data.display()
    ));
    assert_eq!(left, "");
    assert_same(&listing(&fx.outside), &outside_before);
}

const MOUNT_CHILD: &str = "ISOLATE_WALK_TEST_MOUNT_CHILD";

/// The body of the mount test, run by `nested_mounts_are_skipped_and_listed` in a child
/// process inside a private mount namespace: mounts die with it, even on a panic.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn mount_child() {
    let base = std::env::var(MOUNT_CHILD).expect("run by its parent test, which sets MOUNT_CHILD");
    let base = PathBuf::from(base);
    let data = base.join("data");
    let outside = base.join("outside");
    sh(&format!(
        "mount -t tmpfs -o size=1m isolate-walk-test '{d}/dir/tmpfs' \
         && touch '{d}/dir/tmpfs/inner' && chown 100998:100998 '{d}/dir/tmpfs' '{d}/dir/tmpfs/inner' \
         && mount --bind '{o}' '{d}/bind'",
        d = data.display(),
        o = outside.display()
    ));
    let s = run(&data, &base.join("j"), MigrateMode::Reown);
    let mut skipped = s.mounts_skipped.clone();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![PathBuf::from("bind"), PathBuf::from("dir/tmpfs")]
    );
    assert_eq!(owner(&data.join("dir/tmpfs")), (100_998, 100_998));
    assert_eq!(owner(&data.join("dir/tmpfs/inner")), (100_998, 100_998));
    assert_eq!(owner(&data.join("bind/target")), (100_998, 100_998));
    assert_eq!(owner(&data.join("dir/suid")), (850, 850));
    let survey = walk::survey(&RealSys::new(), &data, &spec(MigrateMode::Reown)).unwrap();
    assert_eq!(survey.mounts_skipped.len(), 2);
    println!("MOUNT-CHILD-OK");
}

#[test]
fn nested_mounts_are_skipped_and_listed() {
    let fx = fixture();
    standard_tree(&fx);
    std::fs::create_dir(fx.data.join("dir/tmpfs")).unwrap();
    std::fs::create_dir(fx.data.join("bind")).unwrap();
    let outside_before = listing(&fx.outside);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "mount_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MOUNT_CHILD, fx.tmp.path());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("MOUNT-CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&fx.tmp.path().display().to_string()));
    assert_same(&listing(&fx.outside), &outside_before);
    // Seen from here (no mounts), the mount points are plain directories the child
    // did not touch: they were the other filesystems' roots while it ran.
    assert_eq!(owner(&fx.data.join("bind")), (0, 0));
}

const CRASH_CHILD: &str = "ISOLATE_WALK_TEST_CRASH_CHILD";

/// A migration the crash test kills with SIGKILL.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn crash_child() {
    let args = std::env::var(CRASH_CHILD).expect("run by its parent test, which sets CRASH_CHILD");
    let (data, journal) = args.split_once('\n').unwrap();
    run(Path::new(data), Path::new(journal), MigrateMode::Auto);
    println!("CRASH-CHILD-FINISHED");
}

fn crash_tree(fx: &Fixture) {
    standard_tree_for_rollback(fx);
    big_tree(&fx.data.join("big"), 40_000);
}

#[test]
fn kill_9_mid_migration_then_rerun_converges_and_rolls_back_exactly() {
    let control = fixture();
    crash_tree(&control);
    run(
        &control.data,
        &control.tmp.path().join("j"),
        MigrateMode::Auto,
    );
    let expected = listing(&control.data);
    drop(control);

    let fx = fixture();
    crash_tree(&fx);
    let before = listing(&fx.data);
    let journal = fx.tmp.path().join("journal/STACK-1.journal");
    let mut killed_mid_run = 0;
    for delay_ms in [5u64, 40, 90, 150, 250] {
        let mut proc = child(
            "crash_child",
            (
                CRASH_CHILD,
                format!("{}\n{}", fx.data.display(), journal.display()),
            ),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pid = rustix::process::Pid::from_raw(proc.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let status = proc.wait().unwrap();
        if status.code().is_none() {
            killed_mid_run += 1;
        }
    }
    assert!(
        killed_mid_run >= 2,
        "only {killed_mid_run} kills landed mid-run"
    );
    let rerun = run(&fx.data, &journal, MigrateMode::Auto);
    eprintln!("after the kills: {rerun:?}");
    assert_same(&listing(&fx.data), &expected);
    // Rollback after the crashes is as exact as after a clean run, but for a file a kill
    // caught between its chmod and its journal line: no proof, so no setuid back (reported).
    let back = walk::rollback(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    eprintln!("privileges withheld: {:?}", back.privilege_withheld);
    assert!(back.privilege_withheld.count <= 2);
    let mut expected_back = before.clone();
    for p in &back.privilege_withheld.samples {
        let prefix = format!("./{} ", p.display());
        let acl_block = format!("# file: {}", p.display());
        let mut in_block = false;
        expected_back = expected_back
            .lines()
            .filter_map(|l| {
                if l.starts_with("# file: ") {
                    in_block = l == acl_block;
                }
                // getfacl's "# flags: s--" line goes with the setuid/setgid bits.
                if in_block && l.starts_with("# flags: ") {
                    return None;
                }
                Some(match l.strip_prefix(&prefix) {
                    Some(rest) => {
                        let f: Vec<&str> = rest.split(' ').collect();
                        let perm = u32::from_str_radix(f[2], 8).unwrap() & !0o6000;
                        format!("{prefix}{} {} {perm:o} {}\n", f[0], f[1], f[3])
                    }
                    None => format!("{l}\n"),
                })
            })
            .collect();
    }
    // Rebuilt line by line, the expectation ends with a newline wherever `before` did or not.
    assert_same(listing(&fx.data).trim_end(), expected_back.trim_end());
}

const FD_CHILD: &str = "ISOLATE_WALK_TEST_FD_CHILD";

/// Migrates a 2,000-deep chain and a wide fan of directories with at most 64 open files, on
/// the default thread count (8 per core): the walk holds a directory fd only while its
/// subdirectories are still to be opened, and a pin only while it plans and changes one inode.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn fd_child() {
    let base = std::env::var(FD_CHILD).expect("run by its parent test, which sets FD_CHILD");
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(64),
            maximum: Some(64),
        },
    )
    .unwrap();
    let base = PathBuf::from(base);
    let threads = isolate::walk::threads::configure(None).unwrap();
    assert!(threads >= 8, "{threads} threads");
    let s = run(&base.join("data"), &base.join("j"), MigrateMode::Shift);
    println!("FD-CHILD-OK {} inodes on {threads} threads", s.inodes);
}

#[test]
fn deep_and_wide_trees_walk_with_few_open_files() {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    let fx = fixture();
    big_tree(&fx.data, 2_000);
    // 2,000 nested directories (longer than PATH_MAX), built fd-relative.
    let mut dir = openat(CWD, &fx.data, OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..2_000 {
        mkdirat(&dir, "nested-directory", Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, "nested-directory", OFlags::DIRECTORY, Mode::empty()).unwrap();
        rustix::fs::fchown(
            &dir,
            Some(rustix::fs::Uid::from_raw(100_998)),
            Some(rustix::fs::Gid::from_raw(100_998)),
        )
        .unwrap();
    }
    drop(dir);
    // A fan: 3 levels of 12 subdirectories.
    for a in 0..12 {
        for b in 0..12 {
            for c in 0..12 {
                std::fs::create_dir_all(fx.data.join(format!("fan/{a}/{b}/{c}"))).unwrap();
            }
        }
    }
    let out = child("fd_child", (FD_CHILD, fx.tmp.path().display().to_string()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("FD-CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = sh(&format!(
        "find -P '{}' -uid 100998 | head -3",
        fx.data.display()
    ));
    assert_eq!(left, "");
}
