//! Hostile data against migration (root-run, temp trees on ext4): files of other stacks, of
//! the legacy user and of root hardlinked into a stack's data, and attackers that swap
//! entries, hardlinks and directories while the walk runs. Nothing outside may change,
//! and the summary must say what was not done.
mod walk_common;

use isolate::migration::{MigrateMode, MigrationSpec, OutsideLinks};
use isolate::walk::sys::RealSys;
use isolate::walk::{self, Progress, Summary};
use rustix::fs::{renameat_with, RenameFlags, CWD};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use walk_common::*;

fn run(data: &Path, journal: &Path, spec: &MigrationSpec) -> Summary {
    walk::migrate(&RealSys::new(), data, spec, journal, &Progress::off()).unwrap()
}

fn file(path: &Path, uid: u32, perm: u32) {
    std::fs::write(path, b"x").unwrap();
    chown(path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).unwrap();
}

/// outside/ holds another stack's data, a legacy user's file and a root 0666 file.
fn outside_files(fx: &Fixture) -> Vec<PathBuf> {
    std::fs::create_dir_all(fx.outside.join("stack-b")).unwrap();
    let files = vec![
        fx.outside.join("stack-b/db"),
        fx.outside.join("legacy-home-file"),
        fx.outside.join("root-0666"),
    ];
    file(&files[0], 100_998, 0o644);
    file(&files[1], LEGACY_ROOT, 0o644);
    file(&files[2], 0, 0o666);
    files
}

#[test]
fn hardlinks_from_outside_are_never_changed_and_fail_the_step() {
    for mode in [MigrateMode::Shift, MigrateMode::Reown, MigrateMode::Auto] {
        let fx = fixture();
        standard_tree(&fx);
        let outside = outside_files(&fx);
        for (i, f) in outside.iter().enumerate() {
            std::fs::hard_link(f, fx.data.join(format!("planted{i}"))).unwrap();
            std::fs::hard_link(f, fx.data.join(format!("dir/planted{i}"))).unwrap();
        }
        let before = listing(&fx.outside);
        let s = run(&fx.data, &fx.tmp.path().join("j"), &spec(mode));
        assert_same(&listing(&fx.outside), &before);
        assert_eq!(s.outside_links.count, 3, "{mode:?}: {s:?}");
        let problems = s.problems();
        assert!(
            problems.iter().any(|p| p.starts_with(
                "3 file(s) have hardlinks outside the data path and were not changed: "
            )),
            "{problems:?}"
        );
        // Links that are all inside are still migrated.
        assert_ne!(owner(&fx.data.join("hl2")), (100_998, 100_998));
        // The policy may accept them: then the step is done, and they are still untouched.
        let mut accept = spec(mode);
        accept.outside_links = OutsideLinks::Skip;
        let s = run(&fx.data, &fx.tmp.path().join("j"), &accept);
        assert_same(&listing(&fx.outside), &before);
        assert_eq!(s.outside_links.count, 3);
        assert!(s.problems().is_empty(), "{:?}", s.problems());
    }
}

/// Stops the attacker when dropped, even on a panic.
struct Attacker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    rounds: Arc<AtomicU64>,
    /// Held by the attacker for each round; holding it pauses the attack between rounds.
    round: Arc<std::sync::Mutex<()>>,
}

impl Attacker {
    fn start(mut round: impl FnMut() + Send + 'static) -> Attacker {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let lock = Arc::new(std::sync::Mutex::new(()));
        let handle = {
            let (stop, rounds, lock) = (stop.clone(), rounds.clone(), lock.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
                    round();
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Attacker {
            stop,
            handle: Some(handle),
            rounds,
            round: lock,
        }
    }

    /// Pauses the attack (between two rounds) while the guard lives.
    fn pause(&self) -> std::sync::MutexGuard<'_, ()> {
        self.round.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.rounds.load(Ordering::Relaxed)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Issue case 4: between the walk's stat of a legacy-owned file and its change, the entry
/// is swapped for a hardlink of an outside root-owned 0666 file. The change goes through a
/// descriptor pinned and checked, so the outside file never changes.
#[test]
fn swapping_a_file_for_an_outside_hardlink_mid_walk_changes_nothing_outside() {
    let fx = fixture();
    dir_owned(&fx.data, 100_998);
    let outside = outside_files(&fx);
    const PAIRS: usize = 64;
    for i in 0..PAIRS {
        let d = fx.data.join(format!("d{i}"));
        dir_owned(&d, 100_998);
        for j in 0..40 {
            file(&d.join(format!("pad{j}")), 100_500, 0o644);
        }
        file(&d.join("victim"), 100_998, 0o644);
        std::fs::hard_link(&outside[2], d.join("plant")).unwrap();
    }
    let before = listing(&fx.outside);
    let data = fx.data.clone();
    let attacker = Attacker::start(move || {
        for i in 0..PAIRS {
            let d = data.join(format!("d{i}"));
            let _ = renameat_with(
                CWD,
                d.join("victim"),
                CWD,
                d.join("plant"),
                RenameFlags::EXCHANGE,
            );
        }
    });
    let (mut raced, mut runs) = (0, 0);
    let started = std::time::Instant::now();
    while runs < 40 && (raced == 0 || started.elapsed().as_secs() < 8) {
        for mode in [MigrateMode::Shift, MigrateMode::Reown] {
            let s = run(&fx.data, &fx.tmp.path().join("j"), &spec(mode));
            raced += s.skipped_raced;
            assert!(!s.problems().is_empty() || s.skipped_raced == 0);
            let back = walk::rollback(
                &RealSys::new(),
                &fx.data,
                &spec(mode),
                &fx.tmp.path().join("j"),
                &Progress::off(),
            )
            .unwrap();
            raced += back.skipped_raced;
            runs += 1;
        }
    }
    let swaps = attacker.stop();
    eprintln!("{runs} apply/rollback runs, {swaps} swap rounds, {raced} races caught");
    assert!(
        raced > 0,
        "the attacker never won a race: the test proves nothing"
    );
    assert_same(&listing(&fx.outside), &before);
}

/// A directory holding a link of an outside file is renamed back and forth between a
/// walked and an unwalked place: the walk may visit it twice, but it must never count the
/// same link twice and take the inode for one whose links are all inside.
#[test]
fn directories_renamed_mid_walk_never_make_an_outside_link_look_inside() {
    let fx = fixture();
    dir_owned(&fx.data, 100_998);
    let outside = outside_files(&fx);
    const DIRS: usize = 32;
    for i in 0..DIRS {
        let a = fx.data.join(format!("a{i}"));
        dir_owned(&a, 100_998);
        dir_owned(&fx.data.join(format!("z{i}")), 100_998);
        for j in 0..60 {
            file(&a.join(format!("pad{j}")), 100_500, 0o644);
        }
        // outside/root-0666 has 1 + DIRS links; each directory holds one.
        std::fs::hard_link(&outside[2], a.join("link")).unwrap();
    }
    let before = listing(&fx.outside);
    let data = fx.data.clone();
    let attacker = Attacker::start(move || {
        for i in 0..DIRS {
            let (a, z) = (data.join(format!("a{i}")), data.join(format!("z{i}/a")));
            if renameat_with(CWD, &a, CWD, &z, RenameFlags::empty()).is_ok() {
                let _ = renameat_with(CWD, &z, CWD, &a, RenameFlags::empty());
            }
        }
    });
    let (mut raced, mut runs) = (0, 0);
    let started = std::time::Instant::now();
    while runs < 60 && (raced == 0 || started.elapsed().as_secs() < 8) {
        let s = run(
            &fx.data,
            &fx.tmp.path().join("j"),
            &spec(MigrateMode::Reown),
        );
        raced += s.skipped_raced;
        runs += 1;
    }
    let rounds = attacker.stop();
    eprintln!("{runs} runs, {rounds} rename rounds, {raced} races caught");
    assert!(
        raced > 0,
        "the attacker never won a race: the test proves nothing"
    );
    assert_same(&listing(&fx.outside), &before);
}

/// Issue case 6: rollback under a concurrent symlink swapper must not report success while
/// inodes stay in the stack mapping. Whatever a run reports, the report is the truth.
#[test]
fn rollback_under_a_symlink_swapper_never_reports_done_with_inodes_left() {
    let fx = fixture();
    dir_owned(&fx.data, 100_998);
    const VICTIMS: usize = 12;
    for v in 0..VICTIMS {
        big_tree(&fx.data.join(format!("victim{v}")), 300);
        std::os::unix::fs::symlink(&fx.outside, fx.data.join(format!("swap{v}"))).unwrap();
    }
    let before = listing(&fx.outside);
    let journal = fx.tmp.path().join("j");
    run(&fx.data, &journal, &spec(MigrateMode::Auto));
    let data = fx.data.clone();
    let attacker = Attacker::start(move || {
        for v in 0..VICTIMS {
            let _ = renameat_with(
                CWD,
                data.join(format!("victim{v}")),
                CWD,
                data.join(format!("swap{v}")),
                RenameFlags::EXCHANGE,
            );
        }
    });
    let stack_ids = format!(
        "find -P '{}' \\( -uid 850 -o -gid 850 -o -uid +199999 -o -gid +199999 \\) | head -3",
        fx.data.display()
    );
    let (mut raced, mut said_done, mut said_not_done) = (0, 0, 0);
    for _ in 0..8 {
        let back = walk::rollback(
            &RealSys::new(),
            &fx.data,
            &spec(MigrateMode::Auto),
            &journal,
            &Progress::off(),
        )
        .unwrap();
        raced += back.skipped_raced;
        {
            // The truth, read while the attack pauses: "done" means nothing is left.
            let _paused = attacker.pause();
            let left = sh(&stack_ids);
            if back.problems().is_empty() {
                said_done += 1;
                assert_eq!(left, "", "rollback said done with inodes left");
            } else {
                said_not_done += 1;
            }
        }
        run(&fx.data, &journal, &spec(MigrateMode::Auto));
    }
    let rounds = attacker.stop();
    eprintln!(
        "{rounds} swap rounds, {raced} races caught; rollback said done {said_done}, not done {said_not_done} times"
    );
    assert!(
        raced > 0,
        "the attacker never won a race: the test proves nothing"
    );
    // Once the attack stops, a rollback finishes and says so truthfully.
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
    let back = walk::rollback(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert!(back.problems().is_empty(), "{:?}", back.problems());
    assert_eq!(sh(&stack_ids), "");
    assert_same(&listing(&fx.outside), &before);
}

fn dir_owned(path: &Path, id: u32) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, Some(id), Some(id)).unwrap();
}
