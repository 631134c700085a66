//! Root-run: a named volume's data moves from the legacy store to the stack's and its owners
//! shift like a data path's: by rename on one filesystem, by copy across two (a tmpfs in a
//! private mount namespace), converging after kill -9 at any moment, and `rollback` gives
//! back every owner, mode, ACL and capability where it was.
mod walk_common;

use isolate::apply::Walker;
use isolate::handoff::{apply, HandoffStep};
use isolate::host::podman::fake::FakePodman;
use isolate::host::podman::store::{Copied, ProjectContainer, VolumeInfo};
use isolate::host::podman::PodmanPort;
use isolate::host::session::{FakeSession, Session};
use isolate::ids::SubidRange;
use isolate::layout::Root;
use isolate::migration::MigrateMode;
use isolate::state::{Allocation, StackRecord, State};
use std::path::{Path, PathBuf};
use std::process::Command;
use walk_common::*;

/// Where podman keeps alice's volume app_db (isolate computes it; it never asks).
const FROM: &str = "/home/alice/.local/share/containers/storage/volumes/app_db/_data";
const TO: &str = "/home/stk-app/.local/share/containers/storage/volumes/app_db/_data";
const STACK_HOME: &str = "/home/stk-app";

fn to_dir(root: &Path) -> PathBuf {
    root.join(TO.trim_start_matches('/'))
}

/// The identity of alice's volume directory under `root`, as the plan records it.
fn from_id(root: &Path) -> Option<isolate::handoff::volumes::DirId> {
    let m = std::fs::symlink_metadata(root.join(FROM.trim_start_matches('/'))).ok()?;
    Some(isolate::handoff::volumes::DirId {
        dev: std::os::unix::fs::MetadataExt::dev(&m),
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
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

/// The step plan makes for alice's volume app_db under `root` (resuming: as re-planned after an
/// interrupted run, when the record holds the identity).
fn step_at(root: &Path, resume: bool) -> HandoffStep {
    let spec = spec(MigrateMode::Shift);
    HandoffStep::MoveVolume {
        stack: "app".into(),
        name: "app_db".into(),
        labels: [("io.podman.compose.project".to_string(), "app".to_string())].into(),
        from_user: "alice".into(),
        from: FROM.into(),
        from_id: if resume { None } else { from_id(root) },
        to_user: "stk-app".into(),
        to: TO.into(),
        to_uid: STACK_ROOT,
        mode: spec.mode,
        shift: spec.shift,
        target_uid: STACK_ROOT,
        target_gid: STACK_ROOT,
        resume,
    }
}

fn stores(root: &Path) -> FakeSession {
    FakeSession {
        podman: FakePodman {
            homes: [(STACK_ROOT, PathBuf::from(STACK_HOME))].into(),
            root: root.into(),
            ..FakePodman::default()
        },
        ..FakeSession::default()
    }
}

/// alice's store directories (hers, as podman makes them) above `data`.
fn legacy_store(root: &Path) {
    let data = root.join(FROM.trim_start_matches('/'));
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    sh(&format!(
        "chown -R {LEGACY_ROOT}:{LEGACY_ROOT} '{}'",
        root.join("home/alice").display()
    ));
}

/// Moves `/legacy/volumes/app_db/_data` under `root`, checks the stack's container view,
/// rolls back and checks the legacy tree is byte for byte what it was.
fn move_and_roll_back(fx: &Fixture) {
    let root = fx.tmp.path();
    let before = listing(&fx.data);
    allocate(root);
    let st = stores(root);
    let walker = Walker::new();
    let step = step_at(root, false);
    let (outcome, summary) =
        apply::run(&Root::new(root), &step, Some(&st.session()), &walker, false).unwrap();
    assert_eq!(outcome, isolate::apply::Outcome::Done);
    assert!(summary.unwrap().changed > 0);
    assert!(!fx.data.exists(), "the legacy volume still holds its data");
    let to = to_dir(root);
    // Container uid 999 (legacy 100998) is 200998 in the stack's mapping.
    assert_eq!(owner(&to.join("file")), (200_998, 200_998));
    assert_eq!(owner(&to.join("legacy-root")), (STACK_ROOT, STACK_ROOT));
    assert_eq!(mode(&to.join("dir/suid")) & 0o777, 0o755);
    // A re-run is a no-op.
    let (again, _) =
        apply::run(&Root::new(root), &step, Some(&st.session()), &walker, false).unwrap();
    assert_eq!(again, isolate::apply::Outcome::AlreadyPresent);

    let lines =
        apply::rollback(&Root::new(root), "app", Some(&st.session()), &walker, false).unwrap();
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
    legacy_store(fx.tmp.path());
    standard_tree_for_rollback(&fx);
    only_alices(&fx.data);
    fx
}

/// Gives what a fixture tree holds outside alice's ids to her: isolate refuses a volume
/// holding someone else's inode (tested below).
fn only_alices(data: &Path) {
    sh(&format!(
        "find '{}' \\( -uid 0 -o -gid 0 -o -gid 4242 -o -gid 5000 \\) -exec chown -h 100000:100000 {{}} +",
        data.display()
    ));
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

/// Runs this test binary's test `name` again inside a private mount namespace; the child
/// must have run exactly that one test (a renamed test would otherwise run nothing and pass).
fn in_private_mount_ns(name: &str) {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("HANDOFF_IN_MOUNT_NS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed in its mount namespace");
    assert!(
        stdout.contains("running 1 test\n")
            && stdout.contains(&format!("test {name} ... "))
            && stdout.contains("test result: ok. 1 passed"),
        "the child did not run exactly {name}"
    );
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

// ---------------------------------------------------------------------------------------
// The legacy user's socket must not choose what root moves (issue 17, item 12).

/// A fake libpod on a unix socket (what the legacy user can run on hers): every volume query
/// answers with volume `app_db` of project `app` whose `Mountpoint` is `mountpoint`; images
/// are 404, container lists empty, `_ping` OK.
fn fake_podman(socket: &Path, mountpoint: &Path) {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    let volume = format!(
        r#"{{"Name":"app_db","Driver":"local","Mountpoint":{},"Labels":{{"io.podman.compose.project":"app"}}}}"#,
        serde_json::to_string(&mountpoint.display().to_string()).unwrap()
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req);
            let path = line.split(' ').nth(1).unwrap_or_default().to_string();
            let (status, body) = if path.contains("/volumes/json") {
                ("200 OK", format!("[{volume}]"))
            } else if path.contains("/volumes/app_db/json") {
                ("200 OK", volume.clone())
            } else if path.contains("/containers/json") {
                ("200 OK", "[]".to_string())
            } else if path.contains("_ping") {
                ("200 OK", "OK".to_string())
            } else {
                ("404 Not Found", r#"{"cause":"no such object"}"#.to_string())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// The stores as apply sees them: the legacy user's (uid 1000) over her real socket under the
/// root, the stack user's the recording fake.
struct Sockets {
    root: Root,
    stack: FakePodman,
}

type R<T> = isolate::error::Result<T>;
const QUERY: std::time::Duration = std::time::Duration::from_secs(5);

impl PodmanPort for Sockets {
    fn socket(&self, uid: u32) -> PathBuf {
        self.root.podman_socket(uid)
    }
    fn socket_exists(&self, _uid: u32) -> bool {
        true
    }
    fn ping(&self, _uid: u32) -> R<()> {
        Ok(())
    }
    fn running_container_mounts(
        &self,
        _uid: u32,
    ) -> R<Vec<isolate::host::podman::ContainerMounts>> {
        Ok(Vec::new())
    }
    fn image_id(&self, uid: u32, image: &str) -> R<Option<String>> {
        match uid {
            LEGACY_ROOT => {
                isolate::host::podman::store::image_id(&self.root.podman_socket(uid), image, QUERY)
            }
            _ => self.stack.image_id(uid, image),
        }
    }
    fn project_containers(&self, uid: u32, project: &str) -> R<Vec<ProjectContainer>> {
        match uid {
            LEGACY_ROOT => isolate::host::podman::store::project_containers(
                &self.root.podman_socket(uid),
                project,
                QUERY,
            ),
            _ => self.stack.project_containers(uid, project),
        }
    }
    fn copy_image(&self, from: u32, to: u32, image: &str) -> R<Copied> {
        self.stack.copy_image(from, to, image)
    }
    fn project_volumes(&self, uid: u32, project: &str) -> R<Vec<VolumeInfo>> {
        match uid {
            LEGACY_ROOT => isolate::host::podman::store::project_volumes(
                &self.root.podman_socket(uid),
                project,
                QUERY,
            ),
            _ => self.stack.project_volumes(uid, project),
        }
    }
    fn volume(&self, uid: u32, name: &str) -> R<Option<VolumeInfo>> {
        match uid {
            LEGACY_ROOT => {
                isolate::host::podman::store::volume(&self.root.podman_socket(uid), name, QUERY)
            }
            _ => self.stack.volume(uid, name),
        }
    }
    fn create_volume(
        &self,
        uid: u32,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> R<VolumeInfo> {
        self.stack.create_volume(uid, name, labels)
    }
    fn running_timeout(&self) -> std::time::Duration {
        self.stack.running_timeout()
    }
}

/// Every inode under `root`: path, type, owner, mode, inode number, size, link target.
fn snapshot(root: &Path) -> String {
    sh(&format!(
        "cd '{}' && find -P . -printf '%p %y %U:%G %m %i %s %l\\n' | LC_ALL=C sort",
        root.display()
    ))
}

/// A host under a fresh root: alice (uid 1000, 100000:65536) owns a podman store and her
/// runtime directory; stack `app` (uid 850) is allocated and hands off an image, so the plan
/// asks alice's socket for the project's volumes.
fn socket_host() -> Fixture {
    let fx = fixture();
    let r = fx.tmp.path();
    for d in ["etc", "root", "srv", "var/lib"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (f, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n\
             stk-app:x:850:850::/home/stk-app:/usr/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nalice:x:1000:\nstk-app:x:850:\n"),
        ("etc/subuid", "alice:100000:65536\n"),
        ("etc/subgid", "alice:100000:65536\n"),
        (
            "policy.toml",
            "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 850\nimages = [\"localhost/app\"]\n",
        ),
    ] {
        std::fs::write(r.join(f), text).unwrap();
    }
    sh(&format!(
        "cd '{}' && mkdir -p home/alice/.local/share/containers/storage/volumes run/user/1000/podman \
         && chown -R 1000:1000 home/alice run/user/1000 && chmod 0700 run/user/1000",
        r.display()
    ));
    allocate(r);
    fx
}

/// observe -> plan -> apply of the hand-off steps, as `isolate apply` runs them; the plan's
/// refusal when it refuses.
fn plan_and_apply(root: &Path) -> Result<(), isolate::error::Error> {
    plan_then_apply(root, || {})
}

/// Like [`plan_and_apply`], running `between` after the plan and before apply (what the
/// legacy user can do in that time).
fn plan_then_apply(root: &Path, between: impl Fn()) -> Result<(), isolate::error::Error> {
    let root = Root::new(root);
    let policy = isolate::policy::Policy::load(&root.join("policy.toml")).unwrap();
    let opts = isolate::plan::Options {
        systemd: true,
        ..Default::default()
    };
    let sockets = Sockets {
        root: root.clone(),
        stack: FakePodman {
            homes: [(STACK_ROOT, PathBuf::from(STACK_HOME))].into(),
            root: root.path().into(),
            ..FakePodman::default()
        },
    };
    let systemd = isolate::host::systemd::fake::FakeSystemd::default();
    let session = Session {
        systemd: &systemd,
        podman: &sockets,
    };
    let live = isolate::observe::Live {
        root: &root,
        session: Some(session),
        ping: false,
    };
    let (obs, allocs) = isolate::observe::observe(
        &root,
        &policy,
        &opts,
        &live,
        &isolate::observe::Probes {
            procs: &isolate::host::procs::RealProcs,
            sys: &isolate::walk::sys::RealSys::new(),
            acl: &isolate::isolation::fs::RealAclProbe,
        },
    )
    .unwrap();
    let plan = isolate::plan::plan_allocated(&policy, &obs, &allocs, &opts)?;
    between();
    for step in &plan.steps {
        if let isolate::plan::Step::Handoff(h) = step {
            apply::run(&root, h, Some(&session), &Walker::new(), false)?;
        }
    }
    Ok(())
}

#[test]
fn a_socket_naming_another_stacks_data_as_a_volume_moves_nothing() {
    // Stack `other`'s data, already migrated to its user (uid 851, 300000:65536).
    socket_names_with("/srv/other/data", |r: &Path| {
        sh(&format!(
            "cd '{}' && mkdir -p srv/other/data/db && echo row > srv/other/data/db/table \
             && chown -R 300999:300999 srv/other/data && chown 851:851 srv/other/data \
             && chmod 0750 srv/other/data",
            r.display()
        ));
    });
}

#[test]
fn a_socket_naming_a_root_only_directory_as_a_volume_moves_nothing() {
    socket_names_with("/root/secret", |r: &Path| {
        sh(&format!(
            "cd '{}' && mkdir -p root/secret && echo key > root/secret/key \
             && chmod 0700 root/secret && chmod 0600 root/secret/key",
            r.display()
        ));
    });
}

/// What the socket names is refused with exit 2 and nothing anywhere under the root changes.
fn socket_names_with(victim: &str, make: impl Fn(&Path)) {
    let fx = socket_host();
    let r = fx.tmp.path();
    make(r);
    fake_podman(
        &r.join("run/user/1000/podman/podman.sock"),
        Path::new(victim),
    );
    let before = snapshot(r);
    let result = plan_and_apply(r);
    assert_same(&snapshot(r), &before);
    let e = result.expect_err("the plan took a volume the socket placed elsewhere");
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = e.to_string();
    println!("refused: {text}");
    assert!(text.contains("app_db") && text.contains(victim), "{text}");
}

// ---------------------------------------------------------------------------------------
// What stands in alice's own store is refused, never followed (issue 17, item 16 and the rule).

/// alice's volume store, relative to the root.
const V: &str = "home/alice/.local/share/containers/storage/volumes";

/// alice's store holds volume app_db as the shell `make` leaves it (run in the root, `$V` her
/// volume store); her socket reports it exactly where podman keeps it. The plan refuses with
/// exit 2 naming the volume and `why`, and nothing under the root changes.
fn store_refused(make: &str, why: &str) {
    let fx = socket_host();
    let r = fx.tmp.path();
    sh(&format!("cd '{}' && V={V} && {make}", r.display()));
    fake_podman(&r.join("run/user/1000/podman/podman.sock"), Path::new(FROM));
    let before = snapshot(r);
    let result = plan_and_apply(r);
    assert_same(&snapshot(r), &before);
    let e = result.expect_err("the plan took a volume isolate must not move");
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = e.to_string();
    println!("refused: {text}");
    assert!(text.contains("app_db") && text.contains(why), "{text}");
}

#[test]
fn a_volume_whose_data_is_a_symlink_is_refused_not_left_behind_in_silence() {
    store_refused(
        "mkdir -p srv/elsewhere $V/app_db && echo row > srv/elsewhere/table \
         && chown -R 100998:100998 srv/elsewhere && ln -s /srv/elsewhere $V/app_db/_data \
         && chown -h 1000:1000 $V/app_db $V/app_db/_data",
        "_data is a symbolic link",
    );
}

#[test]
fn a_volume_directory_that_is_a_symlink_is_refused() {
    store_refused(
        "mkdir -p srv/vol/_data && echo row > srv/vol/_data/table \
         && chown -R 100998:100998 srv/vol && ln -s /srv/vol $V/app_db \
         && chown -h 1000:1000 $V/app_db",
        "symbolic link",
    );
}

#[test]
fn a_volume_directory_of_someone_else_is_refused() {
    store_refused(
        "mkdir -p $V/app_db/_data && echo row > $V/app_db/_data/table \
         && chown 1000:1000 $V/app_db && chown -R 851:851 $V/app_db/_data",
        "belongs to 851:851",
    );
}

#[test]
fn a_volume_holding_someone_elses_file_is_refused() {
    // bob's file, moved in from a directory alice can write (same filesystem, one link).
    store_refused(
        "mkdir -p $V/app_db/_data && echo bob > $V/app_db/_data/bobs && chown 1001:1001 $V/app_db/_data/bobs \
         && chown 1000:1000 $V/app_db && chown 100998:100998 $V/app_db/_data",
        "owned by ids that are not the store user's",
    );
}

#[test]
fn a_volume_with_a_file_linked_outside_it_is_refused() {
    store_refused(
        "mkdir -p $V/app_db/_data && echo secret > srv/rootfile && chmod 0600 srv/rootfile \
         && ln srv/rootfile $V/app_db/_data/f && chown 1000:1000 $V/app_db \
         && chown 100998:100998 $V/app_db/_data",
        "hardlinks outside it",
    );
}

#[test]
fn a_volume_data_directory_that_is_a_mount_point_is_refused() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns("a_volume_data_directory_that_is_a_mount_point_is_refused");
    }
    store_refused(
        "mkdir -p $V/app_db/_data srv/m && echo row > srv/m/table \
         && chown 1000:1000 $V/app_db && chown -R 100998:100998 $V/app_db/_data srv/m \
         && mount --bind srv/m $V/app_db/_data",
        "is a mount point",
    );
}

#[test]
fn a_volume_holding_a_mount_point_is_refused() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns("a_volume_holding_a_mount_point_is_refused");
    }
    store_refused(
        "mkdir -p $V/app_db/_data/sub srv/m && echo row > srv/m/table \
         && chown 1000:1000 $V/app_db && chown -R 100998:100998 $V/app_db/_data srv/m \
         && mount --bind srv/m $V/app_db/_data/sub",
        "holds mount point(s)",
    );
}

#[test]
fn a_volume_where_podman_keeps_it_is_moved_through_the_plan() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    plan_and_apply(r).unwrap();
    assert!(!r.join(FROM.trim_start_matches('/')).exists());
    assert_eq!(owner(&to_dir(r).join("table")), (200_998, 200_998));
}

/// alice's volume app_db as podman makes it, holding one row; her socket reports it where
/// podman keeps it. Returns the fixture and a snapshot of the whole root.
fn plain_volume() -> (Fixture, String) {
    let fx = socket_host();
    let r = fx.tmp.path();
    sh(&format!(
        "cd '{}' && mkdir -p {V}/app_db/_data && echo row > {V}/app_db/_data/table \
         && chown 1000:1000 {V}/app_db && chown -R 100998:100998 {V}/app_db/_data",
        r.display()
    ));
    fake_podman(&r.join("run/user/1000/podman/podman.sock"), Path::new(FROM));
    let before = snapshot(r);
    (fx, before)
}

#[test]
fn someone_elses_file_moved_in_after_the_plan_is_refused_by_apply() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    let e = plan_then_apply(r, || {
        sh(&format!(
            "cd '{}' && echo bob > {V}/app_db/_data/bobs && chown 1001:1001 {V}/app_db/_data/bobs",
            r.display()
        ));
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("bobs"), "{e}");
    // Nothing moved: the volume with bob's file is where it was, and no record was left.
    assert_eq!(
        owner(&r.join(FROM.trim_start_matches('/')).join("bobs")),
        (1001, 1001)
    );
    assert!(State::read(&Root::new(r)).unwrap().handoff.is_empty());
}

#[test]
fn a_data_directory_swapped_after_the_plan_is_refused_by_apply() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    let e = plan_then_apply(r, || {
        sh(&format!(
            "cd '{}' && mv {V}/app_db/_data {V}/app_db/old && mkdir {V}/app_db/_data \
             && chown 100998:100998 {V}/app_db/_data",
            r.display()
        ));
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(
        e.to_string()
            .contains("is no longer the directory the plan saw"),
        "{e}"
    );
    assert!(r.join(V).join("app_db/old/table").exists());
    assert!(State::read(&Root::new(r)).unwrap().handoff.is_empty());
}
