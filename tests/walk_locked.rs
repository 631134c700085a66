//! The locked walk (issue 21), root-run on temp trees: the data top is made root's alone before
//! anything is read, processes already inside (cwd, fds, bind mounts elsewhere on the host) are
//! found after the lock and refused by pid and command, entries are changed by name with no pin
//! per inode, the result is exactly the pinned path's, an attacker who used to race gets EACCES,
//! and a kill -9 while the top is locked leaves a journal the next migrate or rollback converges.
mod walk_common;

use isolate::ids::Mapping;
use isolate::migration::MigrateMode;
use isolate::walk::sys::{RealSys, RecordingSys};
use isolate::walk::{self, Holders, Locking, Progress};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use walk_common::*;

/// Nobody is inside.
struct Nobody;
impl Holders for Nobody {
    fn inside(&self, _: &Path, _: &Mapping) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

/// Runs `f` once the top is locked (the moment the walk starts), then says nobody is inside.
struct WhileLocked<F: Fn(&Path) + Sync>(F);
impl<F: Fn(&Path) + Sync> Holders for WhileLocked<F> {
    fn inside(&self, path: &Path, _: &Mapping) -> Result<Vec<String>, String> {
        (self.0)(path);
        Ok(Vec::new())
    }
}

fn locked(sys: &dyn walk::sys::WalkSys, data: &Path, journal: &Path, holders: &dyn Holders) {
    let summary = walk::migrate_with(
        sys,
        data,
        &spec(MigrateMode::Auto),
        journal,
        &Progress::off(),
        Locking::Locked(holders),
    )
    .unwrap();
    assert!(summary.problems().is_empty(), "{:?}", summary.problems());
}

fn pinned(data: &Path, journal: &Path) {
    let summary = walk::migrate(
        &RealSys::new(),
        data,
        &spec(MigrateMode::Auto),
        journal,
        &Progress::off(),
    )
    .unwrap();
    assert!(summary.problems().is_empty(), "{:?}", summary.problems());
}

fn rollback(data: &Path, journal: &Path, locking: Locking<'_>) {
    let summary = walk::rollback_with(
        &RealSys::new(),
        data,
        &spec(MigrateMode::Auto),
        journal,
        &Progress::off(),
        locking,
    )
    .unwrap();
    assert!(summary.problems().is_empty(), "{:?}", summary.problems());
}

/// The standard tree, a top with a setgid bit and ACLs (the lock's chmod changes the mask,
/// unlocking must give it back), and some width.
fn tree(fx: &Fixture) {
    standard_tree_for_rollback(fx);
    big_tree(&fx.data.join("big"), 600);
    std::fs::set_permissions(
        &fx.data,
        std::os::unix::fs::PermissionsExt::from_mode(0o2775),
    )
    .unwrap();
    sh(&format!(
        "setfacl -m u:100998:rwx,g:101000:rx '{0}' && setfacl -d -m u:100998:rwx '{0}'",
        fx.data.display()
    ));
}

fn top(data: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(data).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn a_locked_migration_pins_no_inode_and_ends_exactly_like_the_pinned_path() {
    let control = fixture();
    tree(&control);
    let before = listing(&control.data);
    pinned(&control.data, &control.tmp.path().join("j"));
    let expected = listing(&control.data);

    let fx = fixture();
    tree(&fx);
    let journal = fx.tmp.path().join("j");
    let sys = RecordingSys::new();
    locked(&sys, &fx.data, &journal, &Nobody);
    // The top alone goes through its own descriptor, pinned once (its plan is by its fd).
    assert!(sys.pins() <= 1, "{} pins", sys.pins());
    let chowns = sys
        .calls()
        .iter()
        .filter(|c| c.op == walk::sys::Op::Chown)
        .count();
    assert!(chowns > 600, "{chowns} chowns");
    assert_same(&listing(&fx.data), &expected);
    assert_same(&listing(&control.data), &expected);

    rollback(&fx.data, &journal, Locking::Locked(&Nobody));
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn a_holder_found_after_the_lock_is_refused_by_pid_and_command_and_nothing_changes() {
    struct Evil;
    impl Holders for Evil {
        fn inside(&self, path: &Path, _: &Mapping) -> Result<Vec<String>, String> {
            // It looks while the top is locked.
            assert_eq!(top(path), (0, 0, 0o700));
            Ok(vec!["  pid 4242 (evil, uid 1000): working directory".into()])
        }
    }
    let fx = fixture();
    tree(&fx);
    let before = listing(&fx.data);
    let err = walk::migrate_with(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &fx.tmp.path().join("j"),
        &Progress::off(),
        Locking::Locked(&Evil),
    )
    .unwrap_err();
    assert!(matches!(err, walk::error::Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("pid 4242 (evil"), "{err}");
    assert_same(&listing(&fx.data), &before);
}

/// `sh -c script` as uid/gid 100998 (a legacy container user that owns most of the data).
fn as_legacy_user(cwd: &Path, script: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .gid(100_998)
        .uid(100_998)
        .output()
        .unwrap()
}

#[test]
fn a_process_with_its_cwd_inside_is_refused_naming_its_pid() {
    let fx = fixture();
    tree(&fx);
    let before = listing(&fx.data);
    let mut child = Command::new("sleep")
        .arg("60")
        .current_dir(fx.data.join("deep/a"))
        .gid(100_998)
        .uid(100_998)
        .spawn()
        .unwrap();
    let err = walk::migrate_with(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &fx.tmp.path().join("j"),
        &Progress::off(),
        Locking::Locked(&isolate::apply::ProcHolders),
    )
    .unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    let text = err.to_string();
    assert!(
        text.contains(&format!("pid {} (sleep", child.id())),
        "{text}"
    );
    assert!(text.contains("working directory"), "{text}");
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn the_stacks_own_processes_and_roots_working_directories_do_not_count() {
    let fx = fixture();
    tree(&fx);
    let spawn = |uid: u32| {
        Command::new("sleep")
            .arg("60")
            .current_dir(fx.data.join("deep/a"))
            .gid(uid)
            .uid(uid)
            .spawn()
            .unwrap()
    };
    // A container user of the stack's mapping (850 + 200000:65536), and root.
    let mut children = [spawn(200_998), spawn(0)];
    let result = walk::migrate_with(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &fx.tmp.path().join("j"),
        &Progress::off(),
        Locking::Locked(&isolate::apply::ProcHolders),
    );
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(result.unwrap().problems().is_empty());
}

#[test]
fn a_bind_mount_of_a_subdirectory_elsewhere_on_the_host_is_refused() {
    let fx = fixture();
    tree(&fx);
    let before = listing(&fx.data);
    let elsewhere = fx.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    sh(&format!(
        "mount --bind '{}' '{}'",
        fx.data.join("deep/a").display(),
        elsewhere.display()
    ));
    let result = walk::migrate_with(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &fx.tmp.path().join("j"),
        &Progress::off(),
        Locking::Locked(&isolate::apply::ProcHolders),
    );
    sh(&format!("umount '{}'", elsewhere.display()));
    let text = result.unwrap_err().to_string();
    assert!(text.contains("bind mount"), "{text}");
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn an_attacker_who_used_to_race_gets_eacces_and_nothing_outside_changes() {
    let fx = fixture();
    tree(&fx);
    let outside = listing(&fx.outside);
    let sub = fx.data.join("deep/a/b");
    let tried = std::sync::Mutex::new(Vec::new());
    let attacker = WhileLocked(|_: &Path| {
        // The swaps the pinned path defends against, by the directory's owner, from outside.
        for script in [
            format!("mv '{0}/c' '{0}/moved'", sub.display()),
            format!(
                "ln -s '{}' '{}/c/link'",
                fx.outside.display(),
                sub.display()
            ),
            format!("ls '{}'", sub.display()),
        ] {
            let out = as_legacy_user(fx.tmp.path(), &script);
            tried.lock().unwrap().push((
                script,
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
    });
    locked(
        &RealSys::new(),
        &fx.data,
        &fx.tmp.path().join("j"),
        &attacker,
    );
    for (script, ok, stderr) in tried.into_inner().unwrap() {
        assert!(!ok, "`{script}` succeeded while the top was locked");
        assert!(stderr.contains("Permission denied"), "{script}: {stderr}");
    }
    assert!(fx.data.join("deep/a/b/c/d/file").exists());
    assert_same(&listing(&fx.outside), &outside);
}

const LOCKED_CHILD: &str = "ISOLATE_WALK_TEST_LOCKED_CHILD";

/// A migration or rollback that stops while the top is locked, to be killed with SIGKILL.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn locked_child() {
    let args = std::env::var(LOCKED_CHILD).expect("run by its parent test");
    let mut parts = args.split('\n');
    let (what, data, journal) = (
        parts.next().unwrap(),
        Path::new(parts.next().unwrap()),
        Path::new(parts.next().unwrap()),
    );
    let hang = WhileLocked(|_: &Path| {
        println!("LOCKED");
        std::thread::sleep(Duration::from_secs(60));
    });
    match what {
        "migrate" => locked(&RealSys::new(), data, journal, &hang),
        _ => rollback(data, journal, Locking::Locked(&hang)),
    }
}

/// Starts `locked_child`, waits until it holds the top locked, kills it with SIGKILL.
fn kill_while_locked(what: &str, data: &Path, journal: &Path) {
    use std::io::BufRead;
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "locked_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            LOCKED_CHILD,
            format!("{what}\n{}\n{}", data.display(), journal.display()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(proc.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("LOCKED") {
        line.clear();
    }
    assert!(line.contains("LOCKED"), "the child never locked");
    assert_eq!(top(data), (0, 0, 0o700), "locked while the child waits");
    proc.kill().unwrap();
    assert!(proc.wait().unwrap().code().is_none());
    assert_eq!(top(data), (0, 0, 0o700), "a kill -9 leaves it locked");
}

#[test]
fn kill_9_while_the_top_is_locked_then_migrate_and_rollback_converge() {
    let control = fixture();
    tree(&control);
    pinned(&control.data, &control.tmp.path().join("j"));
    let expected = listing(&control.data);

    let fx = fixture();
    tree(&fx);
    let before = listing(&fx.data);
    let journal = fx.tmp.path().join("journal/STACK-1.journal");
    kill_while_locked("migrate", &fx.data, &journal);
    // Twice: a second kill finds the first lock line still open.
    kill_while_locked("migrate", &fx.data, &journal);
    locked(&RealSys::new(), &fx.data, &journal, &Nobody);
    assert_same(&listing(&fx.data), &expected);

    kill_while_locked("rollback", &fx.data, &journal);
    rollback(&fx.data, &journal, Locking::Locked(&Nobody));
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn force_keeps_the_pinned_path_and_a_killed_lock_is_converged_by_it_too() {
    let fx = fixture();
    tree(&fx);
    let before = listing(&fx.data);
    let journal = fx.tmp.path().join("j");
    kill_while_locked("migrate", &fx.data, &journal);
    rollback(&fx.data, &journal, Locking::Pinned);
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn an_immutable_top_cannot_be_locked_and_keeps_the_pinned_path() {
    let fx = fixture();
    tree(&fx);
    let data = fx.data.display().to_string();
    sh(&format!("chattr +i '{data}'"));
    let result = walk::migrate_with(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &fx.tmp.path().join("j"),
        &Progress::off(),
        Locking::Locked(&Nobody),
    );
    sh(&format!("chattr -i '{data}'"));
    let summary = result.unwrap();
    assert_eq!(summary.immutable.samples, vec![std::path::PathBuf::new()]);
    assert_eq!(owner(&fx.data.join("deep/a")), (200_998, 200_998));
}

const STOP_CHILD: &str = "ISOLATE_WALK_TEST_STOP_CHILD";

/// A migration (locked or pinned) that kills itself with SIGKILL right after the chown of
/// `dir/suid` (a 6755 file the chown strips), before its bits are back and journalled.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn stop_child() {
    let args = std::env::var(STOP_CHILD).expect("run by its parent test");
    let mut parts = args.split('\n');
    let (how, data, journal) = (
        parts.next().unwrap().to_string(),
        Path::new(parts.next().unwrap()),
        Path::new(parts.next().unwrap()),
    );
    let sys = RecordingSys::new().after_chown(|name| {
        if name.to_bytes() == b"suid" {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        }
    });
    let locking = match how.as_str() {
        "locked" => Locking::Locked(&Nobody),
        _ => Locking::Pinned,
    };
    let spec = spec(MigrateMode::Auto);
    let _ = walk::migrate_with(&sys, data, &spec, journal, &Progress::off(), locking);
}

fn stopped_after_the_suid_chown(how: &str, data: &Path, journal: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["stop_child", "--exact", "--ignored", "--test-threads=1"])
        .env(
            STOP_CHILD,
            format!("{how}\n{}\n{}", data.display(), journal.display()),
        )
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.code().is_none(),
        "the child was not killed: {status}"
    );
    assert_eq!(
        mode(&data.join("dir/suid")) & 0o6000,
        0,
        "the chown dropped the bits"
    );
}

#[test]
fn killed_right_after_a_privileged_chown_in_a_locked_tree_the_rerun_gives_the_bits_back() {
    let control = fixture();
    tree(&control);
    pinned(&control.data, &control.tmp.path().join("j"));
    let expected = listing(&control.data);

    let fx = fixture();
    tree(&fx);
    let journal = fx.tmp.path().join("j");
    stopped_after_the_suid_chown("locked", &fx.data, &journal);
    assert_eq!(top(&fx.data), (0, 0, 0o700), "killed while locked");
    locked(&RealSys::new(), &fx.data, &journal, &Nobody);
    assert_same(&listing(&fx.data), &expected);
}

#[test]
fn killed_right_after_a_privileged_chown_on_the_pinned_path_the_bits_stay_withheld() {
    let fx = fixture();
    tree(&fx);
    let journal = fx.tmp.path().join("j");
    stopped_after_the_suid_chown("pinned", &fx.data, &journal);
    let summary = walk::migrate(
        &RealSys::new(),
        &fx.data,
        &spec(MigrateMode::Auto),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    // dir/suid is withheld; so may be a setuid file of big/ that another walk thread chowned
    // in the same instant (the kill stops every thread, each maybe between its chown and its
    // journal line): never anything that had no bits to give back.
    let withheld = &summary.privilege_withheld.samples;
    assert!(
        withheld.contains(&std::path::PathBuf::from("dir/suid")),
        "{withheld:?}"
    );
    for p in withheld {
        assert!(
            p == Path::new("dir/suid") || p.starts_with("big"),
            "{p:?} had no bits to withhold: {withheld:?}"
        );
        if p.starts_with("big") {
            let n: u32 = p.file_name().unwrap().to_str().unwrap()[1..]
                .parse()
                .unwrap();
            assert_eq!(n % 97, 0, "{p:?} is not one of big/'s setuid files");
        }
    }
}
