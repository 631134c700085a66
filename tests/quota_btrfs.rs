//! The disk budget on a real btrfs (root-run): a loop-mounted image with qgroups enabled, made
//! in a child process inside a private mount namespace so no mount outlives the test. A
//! writer running as one of the stack's mapped uids is stopped at `disk_max` (EDQUOT), another
//! stack's subvolume is not, a second apply does nothing, and removing the key lifts the limit.
mod scratch_common;

use isolate::layout::Root;
use isolate::model::{Outcome, Planned};
use isolate::quota::plan::{plan_stack, StackQuota, Tree};
use isolate::quota::port::QuotaPort;
use isolate::quota::real::RealQuota;
use isolate::quota::QuotaStep;
use isolate::state::State;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHILD_DIR: &str = "ISOLATE_QUOTA_DIR";
const MIB: u64 = 1 << 20;
/// Container uid 1000 of the stack `app` (subordinate ids from 300000) and of `other`.
const APP_WRITER: u32 = 300_999;
const OTHER_WRITER: u32 = 400_999;

fn sh(script: &str) {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `mib` MiB as `uid` into `file`; the writer's stderr when it failed.
fn write_as(uid: u32, file: &Path, mib: u64) -> Result<(), String> {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "dd",
            "if=/dev/zero",
        ])
        .arg(format!("of={}", file.display()))
        .args([
            "bs=1M",
            &format!("count={mib}"),
            "conv=fsync",
            "status=none",
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn plan(root: &Root, stack: &str, disk_max: Option<u64>) -> (Planned<QuotaStep>, Vec<String>) {
    let path = PathBuf::from(format!("/btrfs/{stack}"));
    let facts = RealQuota.look(&root.at(&path)).unwrap();
    let trees = [Tree { path, facts }];
    let state = State::read(root).unwrap();
    let mut planned = Planned::default();
    let mut refusals = Vec::new();
    plan_stack(
        &mut planned,
        &mut refusals,
        &StackQuota {
            stack,
            disk_max,
            trees: &trees,
            recorded: state.quota.get(stack),
        },
    );
    (planned, refusals)
}

fn apply(root: &Root, planned: &Planned<QuotaStep>) -> Vec<Outcome> {
    planned
        .steps
        .iter()
        .map(|s| isolate::quota::apply::run(root, &RealQuota, s).unwrap())
        .collect()
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn btrfs_quota_child() {
    let base = PathBuf::from(std::env::var(CHILD_DIR).expect("run by its parent test"));
    let root = Root::new(base.join("root"));
    let mnt = root.at(Path::new("/btrfs"));
    std::fs::create_dir_all(&mnt).unwrap();
    sh(&format!(
        "truncate -s 512M '{i}' && mkfs.btrfs -q '{i}' && mount -o loop '{i}' '{m}' \
         && btrfs -q subvolume create '{m}/app' && btrfs -q subvolume create '{m}/other' \
         && mkdir '{m}/plain' && chown {APP_WRITER}:{APP_WRITER} '{m}/app' \
         && chown {OTHER_WRITER}:{OTHER_WRITER} '{m}/other'",
        i = base.join("btrfs.img").display(),
        m = mnt.display()
    ));

    // Quotas off: refused, nothing recorded.
    let (planned, refusals) = plan(&root, "app", Some(32 * MIB));
    assert!(planned.steps.is_empty());
    assert!(refusals[0].contains("quotas are off"), "{refusals:?}");
    // A directory inside a subvolume: refused too.
    sh(&format!("btrfs quota enable '{}'", mnt.display()));
    let facts = RealQuota.look(&mnt.join("plain")).unwrap().unwrap();
    assert!(!facts.btrfs.unwrap().is_subvolume_top);

    // Set: the stack's mapped uid is stopped at the limit, the other stack is not.
    let (planned, refusals) = plan(&root, "app", Some(32 * MIB));
    assert!(refusals.is_empty(), "{refusals:?}");
    assert_eq!(apply(&root, &planned), vec![Outcome::Done]);
    let seen = RealQuota.look(&mnt.join("app")).unwrap().unwrap();
    assert_eq!(seen.btrfs.unwrap().limit, Some(32 * MIB));
    let err = write_as(APP_WRITER, &mnt.join("app/big"), 64).unwrap_err();
    assert!(err.contains("Disk quota exceeded"), "{err}");
    write_as(OTHER_WRITER, &mnt.join("other/big"), 64).unwrap();

    // A second apply does nothing.
    let (planned, _) = plan(&root, "app", Some(32 * MIB));
    assert!(planned.steps.is_empty(), "{:?}", planned.steps);

    // The key removed: the limit is gone, the writer goes past it, nothing is recorded.
    let (planned, _) = plan(&root, "app", None);
    assert_eq!(apply(&root, &planned), vec![Outcome::Done]);
    assert_eq!(
        RealQuota
            .look(&mnt.join("app"))
            .unwrap()
            .unwrap()
            .btrfs
            .unwrap()
            .limit,
        None
    );
    std::fs::remove_file(mnt.join("app/big")).unwrap();
    write_as(APP_WRITER, &mnt.join("app/big"), 64).unwrap();
    assert!(State::read(&root).unwrap().quota.is_empty());

    // Rollback of the stack takes back a limit set again.
    let (planned, _) = plan(&root, "app", Some(32 * MIB));
    assert_eq!(apply(&root, &planned), vec![Outcome::Done]);
    let undone = isolate::quota::apply::restore_stack(&root, &RealQuota, "app").unwrap();
    assert_eq!(undone.len(), 1);
    assert_eq!(
        RealQuota
            .look(&mnt.join("app"))
            .unwrap()
            .unwrap()
            .btrfs
            .unwrap()
            .limit,
        None
    );
    assert!(State::read(&root).unwrap().quota.is_empty());
    println!("CHILD-OK");
}

/// Runs the ignored test `name` of this binary in a private mount namespace, in a new
/// directory below the scratch dir, and checks no mount outlived it.
fn in_mount_namespace(name: &str) {
    let tmp = scratch_common::tempdir("quota-");
    // The writers (mapped uids) pass through to their subvolumes.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&tmp.path().display().to_string()),
        "a mount outlived the child"
    );
}

#[test]
fn disk_max_stops_a_mapped_writer_on_btrfs_and_only_there() {
    in_mount_namespace("btrfs_quota_child");
}

/// The CLI end to end on a host tree (`--root`, `--no-systemd`) whose /srv is a btrfs image.
fn isolate(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isolate"))
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(root.join("policy.toml"))
        .args(args)
        .env_remove("ISOLATE_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const APP: &str = "legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\n";
const OTHER: &str = "[stacks.other]\ndata = [\"/srv/other\"]\n";
const LIMIT: &str = "[stacks.app.limits]\ndisk_max = \"32M\"\n";

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn cli_child() {
    let base = PathBuf::from(std::env::var(CHILD_DIR).expect("run by its parent test"));
    let r = base.join("root");
    for d in [
        "etc",
        "root",
        "home/alice",
        "bin",
        "usr/sbin",
        "srv",
        "scratch",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (f, body) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        ),
        (
            "etc/shadow",
            "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        ),
        ("etc/group", "root:x:0:\nalice:x:1000:\n"),
        ("etc/gshadow", "root:*::\nalice:!::\n"),
        ("etc/subuid", "alice:100000:65536\n"),
        ("etc/subgid", "alice:100000:65536\n"),
        ("bin/bash", ""),
        ("usr/sbin/nologin", ""),
    ] {
        std::fs::write(r.join(f), body).unwrap();
    }
    // The data tops belong to alice's container uid 1000 (100999): the shift gives them to
    // the stack's container uid 1000, the writer below.
    sh(&format!(
        "chmod 755 '{r}/bin/bash' '{r}/usr/sbin/nologin' \
         && truncate -s 512M '{i}' && mkfs.btrfs -q '{i}' && mount -o loop '{i}' '{r}/srv' \
         && btrfs quota enable '{r}/srv' \
         && btrfs -q subvolume create '{r}/srv/app' && btrfs -q subvolume create '{r}/srv/other' \
         && chown 100999:100999 '{r}/srv/app' '{r}/srv/other' \
         && mount -t tmpfs isolate-quota '{r}/scratch' && chown 1000:1000 '{r}/scratch'",
        r = r.display(),
        i = base.join("btrfs.img").display(),
    ));
    let policy = |text: &str| std::fs::write(r.join("policy.toml"), text).unwrap();

    // Where the filesystem cannot: refused, exit 2, nothing changed.
    policy(&format!(
        "{APP}{LIMIT}[stacks.tmp]\ndata = [\"/scratch\"]\n[stacks.tmp.limits]\ndisk_max = \"1G\"\n"
    ));
    let passwd = std::fs::read(r.join("etc/passwd")).unwrap();
    let out = isolate(&r, &["apply", "--no-systemd"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "tmp: disk_max: /scratch is on tmpfs, which has no limit for one tree. What would \
             make it possible: the data on a btrfs subvolume of its own (quotas enabled) or on \
             ext4/xfs with project quotas"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(r.join("etc/passwd")).unwrap(), passwd);
    assert!(!r.join("var/lib/isolate/state.json").exists());
    // plan shows it too (and exits 2).
    let out = isolate(&r, &["plan", "--no-systemd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("/scratch is on tmpfs")
            || text(&out.stderr).contains("/scratch is on tmpfs")
    );

    // Set: plan shows the step, apply sets it, a mapped uid of the stack stops at the limit.
    policy(&format!("{APP}{LIMIT}{OTHER}"));
    let out = isolate(&r, &["plan", "--no-systemd"]);
    assert!(
        text(&out.stdout).contains("+ disk_max 32M for app: btrfs qgroup 0/256 of /srv/app limited to 33554432 bytes referenced"),
        "{}",
        text(&out.stdout)
    );
    let out = isolate(&r, &["apply", "--no-systemd"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("var/lib/isolate/state.json")).unwrap())
            .unwrap();
    let writer = |stack: &str| {
        state["stacks"][stack]["allocation"]["subids"]["start"]
            .as_u64()
            .unwrap() as u32
            + 999
    };
    let err = write_as(writer("app"), &r.join("srv/app/big"), 64).unwrap_err();
    assert!(err.contains("Disk quota exceeded"), "{err}");
    write_as(writer("other"), &r.join("srv/other/big"), 64).unwrap();

    // A second apply does nothing.
    let out = isolate(&r, &["apply", "--no-systemd"]);
    assert_eq!(
        text(&out.stdout),
        "nothing to do: the host matches the policy\n"
    );

    // The key removed: the limit goes, the writer goes past it.
    policy(&format!("{APP}{OTHER}"));
    let out = isolate(&r, &["apply", "--no-systemd"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout)
            .contains("- disk_max 32M for app: btrfs qgroup 0/256 of /srv/app no longer limited"),
        "{}",
        text(&out.stdout)
    );
    std::fs::remove_file(r.join("srv/app/big")).unwrap();
    write_as(writer("app"), &r.join("srv/app/big"), 64).unwrap();
    let out = isolate(&r, &["apply", "--no-systemd"]);
    assert_eq!(
        text(&out.stdout),
        "nothing to do: the host matches the policy\n"
    );
    println!("CHILD-OK");
}

#[test]
fn disk_max_through_the_cli_refuses_tmpfs_and_limits_a_btrfs_subvolume() {
    in_mount_namespace("cli_child");
}
