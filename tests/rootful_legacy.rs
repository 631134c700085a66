//! Issue 24, root-run on temp roots: a rootful legacy (`legacy_owner = "root"`). Root's
//! containers map nothing, so host id N is their container id N: the data shifts to the stack's
//! same container ids for every id the stack's mapping holds and reports the ids beyond it; a
//! named volume comes from root's store (/var/lib/containers/storage/volumes), found through
//! root's API socket (/run/podman/podman.sock, here a fake libpod); a running rootful container
//! on the data stops the plan, named. Rollback gives every owner back.
mod walk_common;

use isolate::apply::Walker;
use isolate::handoff::apply;
use isolate::host::podman::fake::FakePodman;
use isolate::host::podman::store::{Copied, ProjectContainer, VolumeInfo};
use isolate::host::podman::{ContainerMounts, PodmanPort};
use isolate::host::session::Session;
use isolate::ids::{IdMaps, Mapping, Shift, SubidRange};
use isolate::layout::Root;
use isolate::migration::{MigrateMode, MigrationSpec};
use isolate::state::{Allocation, StackRecord, State};
use isolate::walk::{self, sys::RealSys, Progress};
use std::path::{Path, PathBuf};
use walk_common::*;

/// The stack's allocation as the default pools make it: uid 70002, subids 0x70000000:65536.
const UID: u32 = 70_002;
const SUB: u32 = 0x7000_0000;
const STACK_HOME: &str = "/home/stk-app";
const ROOTFUL_VOLUME: &str = "/var/lib/containers/storage/volumes/app_db/_data";

fn stack_maps() -> IdMaps {
    let m = Mapping::new(UID, vec![SubidRange::new(SUB, 65_536).unwrap()]);
    IdMaps {
        uid: m.clone(),
        gid: m,
    }
}

fn rootful_spec() -> MigrationSpec {
    MigrationSpec {
        mode: MigrateMode::Shift,
        shift: Shift {
            from: IdMaps::identity(65_536),
            to: stack_maps(),
        },
        target_uid: UID,
        target_gid: UID,
        outside_links: Default::default(),
    }
}

#[test]
fn rootful_data_shifts_every_id_the_stack_holds_and_leaves_the_ids_beyond_it() {
    let fx = fixture();
    let d = &fx.data;
    sh(&format!(
        "mkdir -p '{d}/pgdata' && echo row >'{d}/pgdata/table' && chown -R 999:999 '{d}/pgdata' \
         && echo x >'{d}/by-root' && echo w >'{d}/www' && chown 33:33 '{d}/www' \
         && echo e >'{d}/edge' && chown 65536:65536 '{d}/edge' \
         && echo b >'{d}/beyond' && chown 70000:70000 '{d}/beyond'",
        d = d.display()
    ));
    let before = listing(d);
    let journal = fx.tmp.path().join("journal/app.journal");
    let s = walk::migrate(
        &RealSys::new(),
        d,
        &rootful_spec(),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert_eq!(owner(d), (UID, UID), "container root's directory");
    assert_eq!(
        owner(&d.join("pgdata/table")),
        (SUB + 998, SUB + 998),
        "container 999"
    );
    assert_eq!(owner(&d.join("by-root")), (UID, UID));
    // A host system user's file (a rootful container ran as www-data) is container uid 33.
    assert_eq!(owner(&d.join("www")), (SUB + 32, SUB + 32));
    assert_eq!(owner(&d.join("edge")), (SUB + 65_535, SUB + 65_535));
    // Beyond the stack's mapping: left as it is and reported.
    assert_eq!(owner(&d.join("beyond")), (70_000, 70_000));
    assert_eq!(s.skipped_outside, 1, "{s:?}");
    assert!(
        s.outside_samples.iter().any(|p| p.ends_with("beyond")),
        "{s:?}"
    );
    // A re-run converges.
    let again = walk::migrate(
        &RealSys::new(),
        d,
        &rootful_spec(),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert_eq!(again.changed, 0, "{again:?}");
    assert_eq!(owner(&d.join("pgdata/table")), (SUB + 998, SUB + 998));
    walk::rollback(
        &RealSys::new(),
        d,
        &rootful_spec(),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert_same(&listing(d), &before);
}

// ---------------------------------------------------------------------------------------
// observe -> plan -> apply over root's API socket (a fake libpod) under a temp root.

/// A fake libpod on root's socket: volume app_db of project app where root's podman keeps it,
/// `running` (name, mount source) as its running containers, images 404, `_ping` OK.
fn fake_root_podman(socket: &Path, running: Option<(&str, &str)>) {
    use std::io::{Read, Write};
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    let volume = format!(
        r#"{{"Name":"app_db","Driver":"local","Mountpoint":"{ROOTFUL_VOLUME}","Labels":{{"io.podman.compose.project":"app"}}}}"#
    );
    let (list, inspect) = match running {
        Some((name, source)) => (
            format!(r#"[{{"Id":"abc123","Names":["{name}"],"State":"running"}}]"#),
            format!(r#"{{"Mounts":[{{"Source":"{source}"}}]}}"#),
        ),
        None => ("[]".to_string(), "{}".to_string()),
    };
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
            } else if path.contains("/containers/abc123/json") {
                ("200 OK", inspect.clone())
            } else if path.contains("/containers/json") {
                ("200 OK", list.clone())
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

/// Root's store over its socket under the root (the real client), the stack user's the
/// recording fake.
struct Sockets {
    root: Root,
    stack: FakePodman,
}

type R<T> = isolate::error::Result<T>;
const QUERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Sockets {
    fn root_socket(&self) -> PathBuf {
        self.root.podman_socket(0)
    }
}

impl PodmanPort for Sockets {
    fn socket(&self, uid: u32) -> PathBuf {
        self.root.podman_socket(uid)
    }
    fn socket_exists(&self, uid: u32) -> bool {
        uid != 0 || self.root_socket().exists()
    }
    fn ping(&self, uid: u32) -> R<()> {
        match uid {
            0 => isolate::host::podman::ping(&self.root_socket(), QUERY),
            _ => Ok(()),
        }
    }
    fn running_container_mounts(&self, uid: u32) -> R<Vec<ContainerMounts>> {
        match uid {
            0 => isolate::host::podman::running_container_mounts(&self.root_socket(), QUERY),
            _ => Ok(Vec::new()),
        }
    }
    fn image_id(&self, uid: u32, image: &str) -> R<Option<String>> {
        match uid {
            0 => isolate::host::podman::store::image_id(&self.root_socket(), image, QUERY),
            _ => self.stack.image_id(uid, image),
        }
    }
    fn project_containers(&self, uid: u32, project: &str) -> R<Vec<ProjectContainer>> {
        match uid {
            0 => Ok(Vec::new()),
            _ => self.stack.project_containers(uid, project),
        }
    }
    fn copy_image(&self, from: u32, to: u32, image: &str) -> R<Copied> {
        self.stack.copy_image(from, to, image)
    }
    fn project_volumes(&self, uid: u32, project: &str) -> R<Vec<VolumeInfo>> {
        match uid {
            0 => isolate::host::podman::store::project_volumes(&self.root_socket(), project, QUERY),
            _ => self.stack.project_volumes(uid, project),
        }
    }
    fn volume(&self, uid: u32, name: &str) -> R<Option<VolumeInfo>> {
        match uid {
            0 => isolate::host::podman::store::volume(&self.root_socket(), name, QUERY),
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
}

/// A host under a fresh root: root's store holds volume app_db written by a rootful container
/// (a directory of 0, a file of 999), /srv/app holds a file of 999; stack `app` (uid 70002) is
/// allocated. The legacy owner is root.
fn rootful_host() -> Fixture {
    let mut fx = fixture();
    let r = fx.tmp.path();
    for d in ["etc", "root", "var/lib"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (f, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n\
             stk-app:x:70002:70002::/home/stk-app:/usr/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nstk-app:x:70002:\n"),
        ("etc/subuid", "stk-app:1879048192:65536\n"),
        ("etc/subgid", "stk-app:1879048192:65536\n"),
        (
            "policy.toml",
            "legacy_owner = \"root\"\n[stacks.app]\ndata = [\"/srv/app\"]\nmigrate = \"shift\"\nimages = [\"localhost/pg\"]\n",
        ),
    ] {
        std::fs::write(r.join(f), text).unwrap();
    }
    sh(&format!(
        "cd '{}' && mkdir -p {V}/app_db/_data/db srv/app/pgdata && chmod 0700 {V}/app_db \
         && echo v >{V}/app_db/_data/db/f && chown 999:999 {V}/app_db/_data/db/f \
         && echo row >srv/app/pgdata/table && chown -R 999:999 srv/app/pgdata",
        r.display(),
        V = "var/lib/containers/storage/volumes"
    ));
    let mut s = State::default();
    s.stacks.insert(
        "app".into(),
        StackRecord {
            allocation: Allocation {
                user: "stk-app".into(),
                uid: UID,
                gid: UID,
                subids: SubidRange::new(SUB, 65_536).unwrap(),
            },
            migrations: vec![],
        },
    );
    s.write(&Root::new(r)).unwrap();
    fx.data = r.join(ROOTFUL_VOLUME.trim_start_matches('/'));
    fx
}

/// observe -> plan as `isolate apply` makes it, then `then` with the plan and the session.
fn plan_then(
    root: &Path,
    then: impl FnOnce(&Root, &isolate::plan::Plan, &Session),
) -> R<isolate::plan::Plan> {
    let root = Root::new(root);
    let policy = isolate::policy::Policy::load(&root.join("policy.toml")).unwrap();
    let opts = isolate::plan::Options {
        systemd: true,
        ..Default::default()
    };
    let sockets = Sockets {
        root: root.clone(),
        stack: FakePodman {
            homes: [(UID, PathBuf::from(STACK_HOME))].into(),
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
            quota: &isolate::quota::real::RealQuota,
        },
    )
    .unwrap();
    let plan = isolate::plan::plan_allocated(&policy, &obs, &allocs, &opts)?;
    then(&root, &plan, &session);
    Ok(plan)
}

#[test]
fn a_rootful_stack_plans_the_identity_shift_and_moves_roots_volume_and_back() {
    let fx = rootful_host();
    let r = fx.tmp.path();
    fake_root_podman(&r.join("run/podman/podman.sock"), None);
    let before = listing(&fx.data);
    let to = r
        .join(STACK_HOME.trim_start_matches('/'))
        .join(".local/share/containers/storage/volumes/app_db/_data");
    let plan = plan_then(r, |root, plan, session| {
        // The hand-off: the volume moves with its owners shifted, and rollback gives it back.
        for step in &plan.steps {
            if let isolate::plan::Step::Handoff(h) = step {
                apply::run(root, h, Some(session), &Walker::new(), false).unwrap();
            }
        }
        assert!(!fx.data.exists(), "root's volume still holds its data");
        assert_eq!(
            owner(&to.join("db/f")),
            (SUB + 998, SUB + 998),
            "container 999"
        );
        assert_eq!(owner(&to.join("db")), (UID, UID), "container root");
        let lines = apply::rollback(root, "app", Some(session), &Walker::new(), false).unwrap();
        assert_eq!(
            lines,
            vec![format!("volume app_db: data back in {ROOTFUL_VOLUME}")]
        );
        assert_same(&listing(&fx.data), &before);
    })
    .unwrap();
    let (shift, survey) = plan
        .steps
        .iter()
        .find_map(|s| match s {
            isolate::plan::Step::Migrate { shift, survey, .. } => Some((shift, survey)),
            _ => None,
        })
        .expect("a migration of /srv/app");
    assert_eq!(
        shift.uid(999),
        Some(SUB + 998),
        "container 999 to the stack's 999"
    );
    assert_eq!(shift.uid(0), Some(UID));
    assert_eq!(shift.uid(70_000), None, "beyond the stack's mapping");
    assert_eq!((survey.shift, survey.outside), (3, 0), "{survey:?}");
    let moved = plan.steps.iter().find_map(|s| match s {
        isolate::plan::Step::Handoff(isolate::handoff::HandoffStep::MoveVolume {
            from,
            to,
            ..
        }) => Some((from.clone(), to.clone())),
        _ => None,
    });
    assert_eq!(
        moved,
        Some((
            PathBuf::from(ROOTFUL_VOLUME),
            PathBuf::from(STACK_HOME).join(".local/share/containers/storage/volumes/app_db/_data")
        ))
    );
}

#[test]
fn a_running_rootful_container_on_the_data_stops_the_plan_naming_it() {
    let fx = rootful_host();
    let r = fx.tmp.path();
    fake_root_podman(&r.join("run/podman/podman.sock"), Some(("pg", "/srv/app")));
    let e = plan_then(r, |_, _, _| {}).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("containers are running on /srv/app: pg (of root)"),
        "{e}"
    );
}

#[test]
fn a_stack_whose_uid_a_rootful_container_id_could_be_is_refused() {
    let fx = rootful_host();
    let r = fx.tmp.path();
    fake_root_podman(&r.join("run/podman/podman.sock"), None);
    // Pinned at 850 (or adopted from the old 800-899 pool): root's container uid 850 would be
    // the same host id as the stack's root.
    let mut s = State::read(&Root::new(r)).unwrap();
    s.stacks.get_mut("app").unwrap().allocation.uid = 850;
    s.stacks.get_mut("app").unwrap().allocation.gid = 850;
    s.write(&Root::new(r)).unwrap();
    sh(&format!(
        "cd '{}' && sed -i 's/70002/850/g' etc/passwd etc/group",
        r.display()
    ));
    let before = listing(&r.join("srv/app"));
    let e = plan_then(r, |_, _, _| {}).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("stack `app`: the legacy mapping and the stack's mapping overlap"),
        "{e}"
    );
    assert_same(&listing(&r.join("srv/app")), &before);
}
