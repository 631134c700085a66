//! Shared helpers of the volume hand-off tests (handoff_volumes, handoff_volumes_sockets):
//! alice's store and volume, the stack's allocation, the step plan makes, a fake libpod on a
//! socket of hers, and observe -> plan -> apply as `isolate apply` runs it.
#![allow(dead_code, unused_imports)]
#[path = "../walk_common/mod.rs"]
pub mod walk_common;
pub use isolate::apply::Walker;
pub use isolate::handoff::{apply, HandoffStep};
pub use isolate::host::podman::fake::FakePodman;
pub use isolate::host::podman::store::{Copied, ProjectContainer, VolumeInfo};
pub use isolate::host::podman::PodmanPort;
pub use isolate::host::session::{FakeSession, Session};
pub use isolate::ids::SubidRange;
pub use isolate::layout::Root;
pub use isolate::migration::MigrateMode;
pub use isolate::state::{Allocation, StackRecord, State};
pub use std::path::{Path, PathBuf};
pub use std::process::Command;
pub use walk_common::*;

/// Where podman keeps alice's volume app_db (isolate computes it; it never asks).
pub const FROM: &str = "/home/alice/.local/share/containers/storage/volumes/app_db/_data";
pub const TO: &str = "/home/stk-app/.local/share/containers/storage/volumes/app_db/_data";
pub const STACK_HOME: &str = "/home/stk-app";

pub fn to_dir(root: &Path) -> PathBuf {
    root.join(TO.trim_start_matches('/'))
}

/// The identity of alice's volume directory under `root`, as the plan records it.
pub fn from_id(root: &Path) -> Option<isolate::handoff::volumes::DirId> {
    let m = std::fs::symlink_metadata(root.join(FROM.trim_start_matches('/'))).ok()?;
    Some(isolate::handoff::volumes::DirId {
        dev: std::os::unix::fs::MetadataExt::dev(&m),
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// The state file of a root where stack `app` is allocated uid 850 and 200000:65536.
pub fn allocate(root: &Path) {
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
pub fn step_at(root: &Path, resume: bool) -> HandoffStep {
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

pub fn stores(root: &Path) -> FakeSession {
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
pub fn legacy_store(root: &Path) {
    let data = root.join(FROM.trim_start_matches('/'));
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    sh(&format!(
        "chown -R {LEGACY_ROOT}:{LEGACY_ROOT} '{}'",
        root.join("home/alice").display()
    ));
}

/// Moves `/legacy/volumes/app_db/_data` under `root`, checks the stack's container view,
/// rolls back and checks the legacy tree is byte for byte what it was.
pub fn move_and_roll_back(fx: &Fixture) {
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
pub fn volume_fixture() -> Fixture {
    let mut fx = fixture();
    fx.data = fx.tmp.path().join(FROM.trim_start_matches('/'));
    legacy_store(fx.tmp.path());
    standard_tree_for_rollback(&fx);
    only_alices(&fx.data);
    fx
}

/// Gives what a fixture tree holds outside alice's ids to her: isolate refuses a volume
/// holding someone else's inode (tested below).
pub fn only_alices(data: &Path) {
    sh(&format!(
        "find '{}' \\( -uid 0 -o -gid 0 -o -gid 4242 -o -gid 5000 \\) -exec chown -h 100000:100000 {{}} +",
        data.display()
    ));
}

/// Runs this test binary's test `name` again inside a private mount namespace; the child
/// must have run exactly that one test (a renamed test would otherwise run nothing and pass).
pub fn in_private_mount_ns(name: &str) {
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

// ---------------------------------------------------------------------------------------
// The legacy user's socket must not choose what root moves (issue 17, item 12).

/// A fake libpod on a unix socket (what the legacy user can run on hers): every volume query
/// answers with volume `app_db` of project `app` whose `Mountpoint` is `mountpoint`; images
/// are 404, container lists empty, `_ping` OK.
pub fn fake_podman(socket: &Path, mountpoint: &Path) {
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
pub struct Sockets {
    root: Root,
    stack: FakePodman,
}

type R<T> = isolate::error::Result<T>;
pub const QUERY: std::time::Duration = std::time::Duration::from_secs(5);

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
pub fn snapshot(root: &Path) -> String {
    sh(&format!(
        "cd '{}' && find -P . -printf '%p %y %U:%G %m %i %s %l\\n' | LC_ALL=C sort",
        root.display()
    ))
}

/// A host under a fresh root: alice (uid 1000, 100000:65536) owns a podman store and her
/// runtime directory; stack `app` (uid 850) is allocated and hands off an image, so the plan
/// asks alice's socket for the project's volumes.
pub fn socket_host() -> Fixture {
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
pub fn plan_and_apply(root: &Path) -> Result<(), isolate::error::Error> {
    plan_then_apply(root, || {})
}

/// Like [`plan_and_apply`], running `between` after the plan and before apply (what the
/// legacy user can do in that time).
pub fn plan_then_apply(root: &Path, between: impl Fn()) -> Result<(), isolate::error::Error> {
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
