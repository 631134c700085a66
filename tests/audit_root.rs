//! Root-run audit of a temporary host prepared with every finding kind: the JSON report equals
//! tests/fixtures/audit/expected.json (times and the temporary root redacted), the CLI writes
//! all three formats (Prometheus atomically), exits 1 on error findings and 2 on bad input,
//! and the audit changes nothing: full listings (owners, modes, sizes, links, ctimes, every
//! xattr) are equal before and after, and a syscall layer that panics on any write is enough.
mod scratch_common;
use assert_cmd::Command;
use isolate::audit::run::{self, LiveCheck, Liveness};
use isolate::handoff::service::ProjectRuns;
use isolate::walk::sys::{RealSys, Stat, WalkSys};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::ffi::CStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const EXPECTED: &str = "tests/fixtures/audit/expected.json";

/// The real kernel for reads; `list_xattrs` of one name fails with EIO (an unreadable
/// entry); every write panics (the audit must never make one).
struct ReadOnlySys {
    inner: RealSys,
    unreadable: &'static CStr,
}

impl WalkSys for ReadOnlySys {
    fn open_root(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.inner.open_root(path)
    }
    fn open_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.inner.open_dir(dir, name)
    }
    fn open_subdir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.inner.open_subdir(dir, name)
    }
    fn fs_type(&self, fd: BorrowedFd<'_>) -> Result<i64, Errno> {
        self.inner.fs_type(fd)
    }
    fn devices_open(&self, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
        self.inner.devices_open(fd)
    }
    fn read_dir(
        &self,
        dir: BorrowedFd<'_>,
        each: &mut dyn FnMut(&CStr, FileType),
    ) -> Result<(), Errno> {
        self.inner.read_dir(dir, each)
    }
    fn stat(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
        self.inner.stat(dir, name)
    }
    fn pin(&self, _: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        panic!("audit pinned {name:?} for a change")
    }
    fn mkdir(&self, _: BorrowedFd<'_>, name: &CStr, _: u32) -> Result<(), Errno> {
        panic!("audit made directory {name:?}")
    }
    fn list_xattrs(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
        if name == self.unreadable {
            return Err(Errno::IO);
        }
        self.inner.list_xattrs(dir, name)
    }
    fn get_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
    ) -> Result<Option<Vec<u8>>, Errno> {
        self.inner.get_xattr(dir, name, attr)
    }
    fn set_xattr(&self, _: BorrowedFd<'_>, name: &CStr, _: &CStr, _: &[u8]) -> Result<(), Errno> {
        panic!("audit wrote an xattr of {name:?}")
    }
    fn chown(&self, _: BorrowedFd<'_>, name: &CStr, _: u32, _: u32) -> Result<(), Errno> {
        panic!("audit chowned {name:?}")
    }
    fn chmod(&self, _: BorrowedFd<'_>, name: &CStr, _: u32) -> Result<(), Errno> {
        panic!("audit chmodded {name:?}")
    }
}

/// Stack a: socket not answering, its service's project not running; stack b: no linger,
/// manager down.
struct FakeLive;

impl LiveCheck for FakeLive {
    fn check(&self, user: &str, _uid: u32) -> Liveness {
        match user {
            "stk-a" => Liveness {
                linger: true,
                manager_active: Some(true),
                socket_answers: Some(false),
            },
            _ => Liveness {
                linger: false,
                manager_active: Some(false),
                socket_answers: None,
            },
        }
    }
    /// a's compose project sits in `Created` (compose exited 0, the unit is active).
    fn project_runs(&self, uid: u32, _project: &str) -> Option<ProjectRuns> {
        Some(match uid {
            801 => ProjectRuns::No("not running: a_web_1 (created)".into()),
            _ => ProjectRuns::Yes,
        })
    }
}

/// Unmounts the tmpfs inside the tree, also when a test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let st = std::process::Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?}");
}

fn file(path: &Path, uid: u32, gid: u32, mode: u32) {
    fs::write(path, "data").unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn dir(path: &Path, uid: u32, gid: u32, mode: u32) {
    fs::create_dir_all(path).unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

const POLICY: &str = r#"legacy_owner = "alice"

[stacks.a]
data = ["/srv/a"]
migrate = "shift"

[stacks.b]
data = ["/srv/b"]
migrate = "shift"

[shares.media]
path = "/srv/media"
write = ["a"]
read = ["b:1000"]
"#;

/// A host with stacks a (migrated, 801, 200000+) and b (applied, not migrated, 802,
/// 265536+), the legacy owner alice (1000, 100000+), and one of each finding.
fn prepare() -> (tempfile::TempDir, Mounted) {
    let t = scratch_common::tempdir("audit-");
    let r = t.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n\
         stk-a:x:801:801::/var/lib/isolate/home/stk-a:/usr/sbin/nologin\n\
         stk-b:x:802:802::/var/lib/isolate/home/stk-b:/usr/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        "root:x:0:\nalice:x:1000:\nstk-a:x:801:\nstk-b:x:802:\nstk-shared:x:850:stk-a,stk-b\n",
    )
    .unwrap();
    let subids = "alice:100000:65536\nstk-a:200000:65536\nstk-b:265536:65536\n";
    fs::write(
        r.join("etc/subuid"),
        format!("{subids}ghost1:400000:100\nghost2:400050:100\n"),
    )
    .unwrap();
    fs::write(r.join("etc/subgid"), subids).unwrap();
    let maps = |root: u32, start: u32| {
        format!(
            r#"{{"uid":{{"root":{root},"ranges":[{{"start":{start},"count":65536}}]}},"gid":{{"root":{root},"ranges":[{{"start":{start},"count":65536}}]}}}}"#
        )
    };
    fs::create_dir_all(r.join("var/lib/isolate")).unwrap();
    fs::write(
        r.join("var/lib/isolate/state.json"),
        format!(
            r#"{{"version":1,"stacks":{{
"a":{{"allocation":{{"user":"stk-a","uid":801,"gid":801,"subids":{{"start":200000,"count":65536}}}},
 "migrations":[{{"path":"/srv/a","mode":"shift","from":{},"to":{},"phase":"done","journal":"var/lib/isolate/journal/a-0.journal"}}]}},
"b":{{"allocation":{{"user":"stk-b","uid":802,"gid":802,"subids":{{"start":265536,"count":65536}}}}}}}},
"handoff":{{"a":{{"service":{{"unit":"isolate-compose-a.service","path":"/var/lib/isolate/home/stk-a/.config/systemd/user/isolate-compose-a.service"}}}}}}}}"#,
            maps(1000, 100_000),
            maps(801, 200_000)
        ),
    )
    .unwrap();
    fs::write(r.join("policy.toml"), POLICY).unwrap();
    // A legacy system unit whose ExecStartPre hands a's data back to alice at every start.
    fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    fs::write(
        r.join("etc/systemd/system/a-legacy.service"),
        "[Unit]\nDescription=a, as alice ran it\n\n[Service]\nUser=alice\nExecStartPre=+/bin/chown -R alice: /srv/a\nExecStart=/usr/bin/podman start -a a_web_1\n",
    )
    .unwrap();

    dir(&r.join("srv"), 0, 0, 0o755);
    let (a, b, media) = (r.join("srv/a"), r.join("srv/b"), r.join("srv/media"));
    // a's top: recorded as closed, yet others can search it (closed_path_open), b reads it.
    dir(&a, 801, 801, 0o755);
    fs::write(
        r.join("var/lib/isolate/isolation.json"),
        format!(
            r#"{{"version":1,"closed":{{"a":[{{"path":"/srv/a","ino":{},"perm":488,"acl_access":null}}]}}}}"#,
            fs::metadata(&a).unwrap().ino()
        ),
    )
    .unwrap();
    file(&a.join("photo"), 200_998, 200_998, 0o644);
    file(&a.join("from-b"), 266_535, 266_535, 0o644); // b's container uid 1000
    file(&a.join("still-legacy"), 100_998, 100_998, 0o644);
    file(&a.join("world"), 801, 801, 0o666);
    file(&a.join("bad\nname\x1b[31m"), 801, 801, 0o666);
    file(&a.join("suid"), 801, 801, 0o4755);
    file(&a.join("cap"), 801, 801, 0o755);
    sh(
        "setcap",
        &["cap_net_raw+ep", a.join("cap").to_str().unwrap()],
    );
    file(&a.join("acl-b"), 801, 801, 0o644);
    sh(
        "setfacl",
        &["-m", "u:265999:r", a.join("acl-b").to_str().unwrap()],
    );
    file(&a.join("unreadable"), 801, 801, 0o644);
    // b: applied, not migrated: legacy ids are no finding there; 0700 keeps a out.
    dir(&b, 802, 802, 0o700);
    file(&b.join("notes"), 100_998, 100_998, 0o600);
    file(&b.join("shared"), 100_999, 100_999, 0o644);
    fs::hard_link(b.join("shared"), a.join("linked-from-b")).unwrap();
    // A share without the ACL entries its grants give: a can only read, not write.
    dir(&media, 0, 0, 0o755);
    file(&media.join("movie"), 801, 801, 0o644);
    // a's podman store under its home (images and layers in its ids), and a's slice as a
    // cgroup v2 host shows it; b has neither (no store yet, no process running).
    let store = r.join("var/lib/isolate/home/stk-a/.local/share/containers/storage");
    for d in [
        "var/lib/isolate/home/stk-a",
        "var/lib/isolate/home/stk-a/.local",
    ] {
        dir(&r.join(d), 801, 801, 0o700);
    }
    dir(&store, 801, 801, 0o700);
    dir(&store.join("overlay"), 801, 801, 0o700);
    fs::write(store.join("overlay/layer"), vec![0u8; 1000]).unwrap();
    std::os::unix::fs::lchown(store.join("overlay/layer"), Some(200_000), Some(200_000)).unwrap();
    let cgroup = r.join("sys/fs/cgroup");
    fs::create_dir_all(cgroup.join("user.slice/user-801.slice")).unwrap();
    fs::write(cgroup.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    for (name, text) in [
        ("memory.current", "52428800\n"),
        ("memory.max", "max\n"),
        (
            "memory.events",
            "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\noom_group_kill 0\n",
        ),
        (
            "cpu.stat",
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
        ),
        ("pids.current", "9\n"),
        ("pids.max", "4915\n"),
    ] {
        fs::write(cgroup.join("user.slice/user-801.slice").join(name), text).unwrap();
    }
    let mnt = a.join("mnt");
    fs::create_dir(&mnt).unwrap();
    sh("mount", &["-t", "tmpfs", "none", mnt.to_str().unwrap()]);
    let guard = Mounted(mnt);
    (t, guard)
}

fn redacted(report: &isolate::audit::model::Report, root: &Path) -> String {
    let mut v = serde_json::to_value(report).unwrap();
    v["completed_at"] = 0.into();
    v["duration_seconds"] = 0.into();
    if let Some(u) = v.get_mut("usage") {
        u["read_at"] = 0.into();
    }
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    text.replace(root.to_str().unwrap(), "ROOT")
}

#[test]
fn every_finding_kind_matches_the_expected_report() {
    let (t, _mnt) = prepare();
    let root = t.path();
    let policy = isolate::policy::Policy::load(&root.join("policy.toml")).unwrap();
    let accounts = isolate::host::accounts::Accounts::read(root).unwrap();
    let layout = isolate::layout::Root::new(root);
    let state = isolate::state::State::read(&layout).unwrap();
    let isolation = isolate::isolation::record::Record::read(&layout).unwrap();
    let host = run::Host {
        root: &layout,
        accounts: &accounts,
        state: &state,
        isolation: &isolation,
        live: &FakeLive,
    };
    let sys = ReadOnlySys {
        inner: RealSys::new(),
        unreadable: c"unreadable",
    };
    let report = run::audit(&sys, &policy, &host, &[]).unwrap();
    let got = redacted(&report, root);
    let kinds: std::collections::BTreeSet<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds.len(),
        isolate::audit::model::FindingKind::ALL.len(),
        "every kind is prepared: {kinds:?}"
    );
    if std::env::var_os("ISOLATE_BLESS").is_some() {
        fs::write(EXPECTED, &got).unwrap();
    }
    let want = fs::read_to_string(EXPECTED).unwrap();
    assert_eq!(
        got, want,
        "the report differs from {EXPECTED} (ISOLATE_BLESS=1 rewrites it)"
    );
}

/// Everything about every entry under `root` that a write could change (atime aside: reading
/// a directory moves it): type and mode, owner, size, links, inode, mtime, ctime, xattrs.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let mut names = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&p, &mut names).unwrap_or(0);
        let mut attrs = Vec::new();
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = std::ffi::CString::new(name).unwrap();
            let mut value = vec![0u8; 4096];
            let len = rustix::fs::lgetxattr(&p, &name, &mut value).unwrap();
            attrs.push(format!("{name:?}={:02x?}", &value[..len]));
        }
        out.push(format!(
            "{:?} {:o} {}:{} {} {} {} {}.{} {}.{} {}",
            p.strip_prefix(root).unwrap(),
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.nlink(),
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            attrs.join(",")
        ));
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

fn isolate(root: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(root.join("policy.toml"))
        .arg("audit")
        .args(args)
        .env_remove("ISOLATE_LOG")
        .assert()
}

#[test]
fn the_cli_writes_every_format_changes_nothing_and_exits_by_severity() {
    let (t, _mnt) = prepare();
    let root = t.path();
    let out = tempfile::tempdir().unwrap();
    let before = listing(root);

    let text = isolate(root, &[]).code(1).get_output().stdout.clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("/srv/a/bad\\x0aname\\x1b[31m"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no raw escape character reaches the terminal"
    );

    let json = isolate(root, &["--format", "json"])
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["schema_version"], 1);

    let prom = out.path().join("isolate.prom");
    isolate(
        root,
        &["--format", "prometheus", "--output", prom.to_str().unwrap()],
    )
    .code(1)
    .stdout("");
    let names: Vec<_> = fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("isolate.prom")],
        "no temporary file left"
    );
    let check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&prom).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let metrics = fs::read_to_string(&prom).unwrap();
    assert!(!metrics.contains("photo"), "no file path in a label");
    assert!(
        metrics.contains("kind=\"undoing_unit\""),
        "the undoing unit is counted: {metrics}"
    );
    assert!(
        text.contains("system unit a-legacy.service (ExecStartPre, /etc/systemd/system/a-legacy.service line 6) runs `/bin/chown -R alice: /srv/a` on stack `a`'s data /srv/a: at its next start it gives the migrated files back, undoing isolation. Fix: remove line 6 of /etc/systemd/system/a-legacy.service (then `systemctl daemon-reload`), or stop the unit for good: `systemctl disable --now a-legacy.service`"),
        "{text}"
    );

    // b's data has an error finding too (the link to a's data).
    isolate(root, &["--stack", "b", "--format", "json"]).code(1);
    isolate(root, &["--stack", "nosuch"])
        .code(2)
        .stderr(format!(
            "isolate: --stack nosuch: the policy {} defines no such stack\n",
            root.join("policy.toml").display()
        ));

    Command::cargo_bin("isolate")
        .unwrap()
        .args([
            "--root",
            root.to_str().unwrap(),
            "--format",
            "prometheus",
            "map",
            "a",
            "1",
        ])
        .assert()
        .code(2)
        .stderr("isolate: --format prometheus is only for `isolate audit`\n");

    assert_eq!(before, listing(root), "the audit changed something");
}

/// Disk per stack comes from the walk's owner rows (a file counts for the stack whose mapping
/// holds its uid, wherever it lies) and from a walk of the stack's podman store; the slice's
/// cgroup files are read for recorded stacks, and a stack without a slice is unavailable.
#[test]
fn usage_per_stack_from_the_walk_the_store_and_the_slice() {
    use isolate::usage::disk::Tree;
    let (t, _mnt) = prepare();
    let root = t.path();
    let policy = isolate::policy::Policy::load(&root.join("policy.toml")).unwrap();
    let accounts = isolate::host::accounts::Accounts::read(root).unwrap();
    let layout = isolate::layout::Root::new(root);
    let state = isolate::state::State::read(&layout).unwrap();
    let isolation = isolate::isolation::record::Record::read(&layout).unwrap();
    let host = run::Host {
        root: &layout,
        accounts: &accounts,
        state: &state,
        isolation: &isolation,
        live: &FakeLive,
    };
    let report = run::audit(&RealSys::new(), &policy, &host, &[]).unwrap();
    let disk: Vec<(String, Tree, u64, u64)> = report
        .disk
        .iter()
        .map(|d| (d.stack.clone(), d.tree, d.inodes, d.bytes))
        .collect();
    assert_eq!(
        disk,
        vec![
            // /srv/a itself and its seven files of 4 bytes in a's ids.
            ("a".into(), Tree::Data, 8, 28),
            ("a".into(), Tree::Share, 1, 4),
            // storage, overlay and the 1000-byte layer.
            ("a".into(), Tree::Store, 3, 1000),
            // /srv/b and `from-b`, a file in b's ids inside a's data.
            ("b".into(), Tree::Data, 2, 4),
        ]
    );
    let usage = report.usage.expect("read by default");
    let a = &usage.stacks[0];
    assert_eq!((a.stack.as_str(), a.uid), ("a", 801));
    assert_eq!(a.slice.memory_bytes, Some(52_428_800));
    assert_eq!(a.slice.cpu_usage_usec, Some(1_500_000));
    assert_eq!(a.slice.tasks, Some(9));
    assert_eq!(a.slice.oom_kills, Some(1));
    let b = &usage.stacks[1];
    assert!(b.slice.unavailable.is_some());
    assert_eq!(b.slice.memory_bytes, None);
}

/// `--only usage` reads the slices and nothing else (no walk, no finding, exit 0 although the
/// host has error findings); `--skip usage` leaves them out, so the two outputs share no family.
#[test]
fn only_usage_reads_the_slices_alone_and_skip_usage_leaves_them_out() {
    let (t, _mnt) = prepare();
    let root = t.path();
    let only = isolate(root, &["--only", "usage", "--format", "prometheus"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let only = String::from_utf8(only).unwrap();
    assert!(
        only.contains("isolate_stack_memory_bytes{stack=\"a\"} 52428800\n"),
        "{only}"
    );
    assert!(only.contains("isolate_stack_cgroup_available{stack=\"b\"} 0\n"));
    assert!(!only.contains("isolate_audit_"), "{only}");
    assert!(!only.contains("isolate_stack_disk"), "{only}");
    let skip = isolate(root, &["--skip", "usage", "--format", "prometheus"])
        .code(1)
        .get_output()
        .stdout
        .clone();
    let skip = String::from_utf8(skip).unwrap();
    assert!(skip.contains("isolate_stack_disk_bytes{stack=\"a\",tree=\"store\"} 1000\n"));
    let families = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let both: Vec<_> = families(&only)
        .intersection(&families(&skip))
        .cloned()
        .collect();
    assert!(both.is_empty(), "families in both files: {both:?}");

    let text = isolate(root, &["--only", "usage"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("unavailable"), "{text}");
    let json = isolate(root, &["--only", "usage", "--format", "json"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["stacks"][0]["memory_bytes"], 52_428_800);
    assert_eq!(doc["stacks"][1]["memory_bytes"], serde_json::Value::Null);
}
