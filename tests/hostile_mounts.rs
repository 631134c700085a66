//! Never "done" when not done (root-run): overlayfs data paths (lower on tmpfs or ext4,
//! upper on ext4, hardlinks in the lower layer), btrfs subvolumes, a read-only bind mount
//! inside the data, immutable files and ACLs that cannot be mapped. Mounts are made in a
//! child process inside a private mount namespace, so none outlives the test.
mod hardening_common;
// Both helpers carry the scratch directory module; two copies of it are harmless.
#[allow(clippy::duplicate_mod)]
mod walk_common;

use isolate::migration::MigrateMode;
use isolate::walk::sys::RealSys;
use isolate::walk::{self, Progress, Summary};
use std::path::{Path, PathBuf};
use std::process::Command;
use walk_common::*;

const CHILD_DIR: &str = "ISOLATE_HOSTILE_MOUNT_DIR";

fn migrate(data: &Path, journal: &Path, mode: MigrateMode) -> Summary {
    walk::migrate(
        &RealSys::new(),
        data,
        &spec(mode),
        journal,
        &Progress::off(),
    )
    .unwrap()
}

/// Runs the ignored test `name` of this binary in a private mount namespace.
fn in_mount_namespace(name: &str, base: &Path) {
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
        .env(CHILD_DIR, base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child {name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&base.display().to_string()),
        "a mount outlived the child"
    );
}

fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var(CHILD_DIR).expect("run by its parent test"))
}

/// Legacy-owned files of every kind, a hardlinked pair, a setuid file and an ACL.
fn legacy_tree(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    let q = root.display();
    sh(&format!(
        "cd '{q}' && mkdir -p d/e && echo a >f && echo b >d/e/g && cp /bin/true suid \
         && ln f d/hardlink && ln -s f link && mkfifo fifo \
         && chown -hR 100998:100998 . && chown 101000:100999 d/e/g \
         && chmod 4755 suid && setfacl -m u:100998:r,g:101000:r d/e/g"
    ));
}

/// Nothing under `root` is left in the legacy mapping (owners and ACL entries).
fn assert_migrated(root: &Path) {
    let q = root.display();
    let left = sh(&format!(
        "cd '{q}' && find -P . \\( -uid +99999 -uid -165536 -o -gid +99999 -gid -165536 \\) | head; \
         getfacl -R -P -n . 2>/dev/null | grep -E ':1[0-5][0-9]{{4}}:' | head"
    ));
    assert_eq!(left, "", "left in the legacy mapping under {q}");
}

fn overlay_case(base: &Path, lower_dev: Option<&str>, label: &str) {
    let top = base.join(label);
    let (lower, upper, work, data) = (
        top.join("lower"),
        top.join("upper"),
        top.join("work"),
        top.join("data"),
    );
    for d in [&lower, &upper, &work, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    if let Some(fstype) = lower_dev {
        sh(&format!(
            "mount -t {fstype} isolate-lower '{}'",
            lower.display()
        ));
    }
    legacy_tree(&lower);
    sh(&format!(
        "mount -t overlay overlay -o lowerdir='{}',upperdir='{}',workdir='{}' '{}'",
        lower.display(),
        upper.display(),
        work.display(),
        data.display()
    ));
    // A hardlinked pair made through the overlay lives in the upper layer: one inode.
    sh(&format!(
        "cd '{}' && echo u >up && ln up up-link && chown 100998:100998 up",
        data.display()
    ));
    let before = sh(&format!("cd '{}' && find -P . | sort", data.display()));
    let s = migrate(&data, &top.join("j"), MigrateMode::Shift);
    eprintln!("{label}: {s:?}");
    assert!(
        s.mounts_skipped.is_empty(),
        "{label}: {:?}",
        s.mounts_skipped
    );
    assert!(s.problems().is_empty(), "{label}: {:?}", s.problems());
    assert_migrated(&data);
    assert_eq!(owner(&data.join("d/hardlink")), (200_998, 200_998));
    assert_eq!(owner(&data.join("up-link")), (200_998, 200_998));
    assert_eq!(mode(&data.join("suid")), 0o4755);
    assert_eq!(
        sh(&format!("cd '{}' && find -P . | sort", data.display())),
        before
    );
    // The lower layer was never changed (copy-up).
    assert_eq!(owner(&lower.join("f")), (100_998, 100_998));
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn overlay_child() {
    let base = child_dir();
    // Lower on tmpfs, upper on ext4 (the temp dir).
    overlay_case(&base, Some("tmpfs"), "tmpfs-lower");
    // Both layers on ext4: the temp dir, and a loop-mounted ext4 image.
    overlay_case(&base, None, "ext4-both");
    let image = base.join("ext4.img");
    sh(&format!(
        "truncate -s 64M '{i}' && mkfs.ext4 -q '{i}' && mkdir -p '{b}/loop' && mount -o loop '{i}' '{b}/loop'",
        i = image.display(),
        b = base.display()
    ));
    overlay_case(&base.join("loop"), None, "ext4-loop");
    println!("CHILD-OK");
}

/// An overlay whose merged tree holds the data path below its top (an overlay root, as on
/// a live system or `--volatile=overlay`), with files outside the data hardlinked into it:
/// a root 0600 file and another stack's (legacy-mapped) secret created on the mounted
/// overlay (one upper inode, several names), and a legacy file of the lower layer with a
/// name outside. None may change owner: each is reported as having links outside.
fn overlay_outside_links_case(base: &Path, lower_dev: Option<&str>, label: &str) {
    let top = base.join(label);
    let (lower, upper, work, merged) = (
        top.join("lower"),
        top.join("upper"),
        top.join("work"),
        top.join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    if let Some(fstype) = lower_dev {
        sh(&format!(
            "mount -t {fstype} isolate-lower '{}'",
            lower.display()
        ));
    }
    legacy_tree(&lower.join("data"));
    sh(&format!(
        "cd '{}' && mkdir -p other && echo lower-secret >other/lower-secret \
         && chown 100998:100998 other/lower-secret && ln other/lower-secret data/lower-planted",
        lower.display()
    ));
    sh(&format!(
        "mount -t overlay overlay -o lowerdir='{}',upperdir='{}',workdir='{}' '{}'",
        lower.display(),
        upper.display(),
        work.display(),
        merged.display()
    ));
    // Made on the mounted overlay: upper-layer inodes with a name inside the data.
    sh(&format!(
        "cd '{}' && echo root >root-secret && chmod 600 root-secret \
         && ln root-secret data/root-planted \
         && mkdir -p stack-b && echo b >stack-b/secret && chown 100998:100998 stack-b/secret \
         && ln stack-b/secret data/b-planted \
         && echo u >data/up && ln data/up data/up-link && chown 100998:100998 data/up",
        merged.display()
    ));
    let data = merged.join("data");
    let outside = [
        (merged.join("root-secret"), (0, 0)),
        (merged.join("stack-b/secret"), (100_998, 100_998)),
        (merged.join("other/lower-secret"), (100_998, 100_998)),
    ];
    let survey = walk::survey(&RealSys::new(), &data, &spec(MigrateMode::Auto)).unwrap();
    eprintln!("{label}: survey {survey:?}");
    let s = migrate(&data, &top.join("j"), MigrateMode::Auto);
    eprintln!("{label}: {s:?}");
    for (path, was) in &outside {
        assert_eq!(
            owner(path),
            *was,
            "{label}: {} changed owner",
            path.display()
        );
    }
    assert_eq!(mode(&merged.join("root-secret")), 0o600, "{label}");
    assert!(
        s.outside_links.count >= 3,
        "{label}: outside links {:?}",
        s.outside_links
    );
    assert!(
        !s.problems().is_empty(),
        "{label}: links outside the data went unreported"
    );
    assert!(
        survey.outside_links.count >= 3,
        "{label}: plan does not warn: {:?}",
        survey.outside_links
    );
    // Hardlinks with every name inside still migrate (upper inode, lower pair).
    assert_eq!(owner(&data.join("up-link")), (200_998, 200_998), "{label}");
    assert_eq!(
        owner(&data.join("d/hardlink")),
        (200_998, 200_998),
        "{label}"
    );
    assert_eq!(owner(&data.join("f")), (200_998, 200_998), "{label}");
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn overlay_outside_links_child() {
    let base = child_dir();
    overlay_outside_links_case(&base, Some("tmpfs"), "tmpfs-lower");
    overlay_outside_links_case(&base, None, "ext4-both");
    println!("CHILD-OK");
}

#[test]
fn overlayfs_files_linked_from_outside_the_data_are_never_changed() {
    let fx = fixture();
    in_mount_namespace("overlay_outside_links_child", fx.tmp.path());
}

#[test]
fn overlayfs_data_paths_migrate_completely() {
    let fx = fixture();
    in_mount_namespace("overlay_child", fx.tmp.path());
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn btrfs_child() {
    let base = child_dir();
    let image = base.join("btrfs.img");
    let mnt = base.join("btrfs");
    std::fs::create_dir_all(&mnt).unwrap();
    sh(&format!(
        "truncate -s 200M '{i}' && mkfs.btrfs -q '{i}' && mount -o loop '{i}' '{m}' \
         && mkdir '{m}/data' && btrfs -q subvolume create '{m}/data/sub' \
         && btrfs -q subvolume create '{m}/data/sub/nested'",
        i = image.display(),
        m = mnt.display()
    ));
    let data = mnt.join("data");
    legacy_tree(&data.join("sub/nested/tree"));
    legacy_tree(&data.join("plain"));
    sh(&format!("chown -R 100998:100998 '{}'", data.display()));
    let s = migrate(&data, &base.join("j"), MigrateMode::Shift);
    eprintln!("btrfs: {s:?}");
    assert!(s.mounts_skipped.is_empty(), "{:?}", s.mounts_skipped);
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    assert_migrated(&data);
    println!("CHILD-OK");
}

#[test]
fn btrfs_subvolumes_are_part_of_the_tree() {
    let fx = fixture();
    in_mount_namespace("btrfs_child", fx.tmp.path());
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn read_only_bind_child() {
    let base = child_dir();
    let data = base.join("data");
    legacy_tree(&data);
    sh(&format!(
        "cd '{}' && mount --bind d/e d/e && mount -o remount,bind,ro d/e",
        data.display()
    ));
    let survey = walk::survey(&RealSys::new(), &data, &spec(MigrateMode::Shift)).unwrap();
    let warnings = survey.warnings();
    assert_eq!(
        warnings,
        vec!["1 mount point(s) inside the data are not crossed and stay unmigrated: d/e"]
    );
    let s = migrate(&data, &base.join("j"), MigrateMode::Shift);
    assert_eq!(s.mounts_skipped, vec![PathBuf::from("d/e")]);
    assert_eq!(
        s.problems(),
        vec![
            "1 mount point(s) inside the data were not crossed: d/e; unmount them (or migrate \
             each on its own) and apply again"
        ]
    );
    // A re-run (as the next apply does) still says so, and still exits non-zero upstream.
    let again = migrate(&data, &base.join("j"), MigrateMode::Shift);
    assert!(!again.problems().is_empty());
    println!("CHILD-OK");
}

#[test]
fn a_read_only_mount_inside_the_data_is_reported_and_not_done() {
    let fx = fixture();
    in_mount_namespace("read_only_bind_child", fx.tmp.path());
}

/// The state file's phase of stack `app`'s migration of /srv/app.
fn app_phase(h: &hardening_common::Host) -> String {
    let t = std::fs::read_to_string(h.root().join("var/lib/isolate/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    v["stacks"]["app"]["migrations"][0]["phase"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn read_only_bind_apply_child() {
    use hardening_common::{expect_code, text, Host, APP_POLICY};
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 3, 4);
    let inner = h.root().join("srv/app/d1");
    sh(&format!(
        "mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}'",
        d = inner.display()
    ));
    let first = h.run(&["apply", "--no-systemd"]);
    let phase = app_phase(&h);
    let second = h.run(&["apply", "--no-systemd"]);
    let phase_again = app_phase(&h);
    let legacy_left = owner(&inner.join("f0"));
    sh(&format!("umount '{}'", inner.display()));
    expect_code(&first, 1);
    assert!(
        text(&first.stdout).contains("not crossed: d1"),
        "{}",
        text(&first.stdout)
    );
    assert_eq!(
        phase, "migrating",
        "a skipped mount is not a done migration"
    );
    // The re-run walks it again and says so again: never "nothing to do".
    expect_code(&second, 1);
    assert!(
        text(&second.stdout).contains("not crossed: d1"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(phase_again, "migrating");
    assert_eq!(legacy_left, (100_999, 100_999));
    // Unmounted, the next apply finishes the job and only then says done.
    let third = h.run(&["apply", "--no-systemd"]);
    expect_code(&third, 0);
    assert_eq!(app_phase(&h), "done");
    assert_ne!(owner(&inner.join("f0")).0, 100_999);
    println!("CHILD-OK");
}

#[test]
fn apply_with_a_read_only_mount_inside_the_data_stays_migrating() {
    let fx = fixture();
    in_mount_namespace("read_only_bind_apply_child", fx.tmp.path());
}

#[test]
fn immutable_files_are_warned_about_before_and_reported_after() {
    let fx = fixture();
    legacy_tree(&fx.data);
    let locked = fx.data.join("d/e/g");
    sh(&format!("chattr +i '{}'", locked.display()));
    let unlock = || sh(&format!("chattr -i '{}'", locked.display()));
    let result = std::panic::catch_unwind(|| {
        let survey = walk::survey(&RealSys::new(), &fx.data, &spec(MigrateMode::Shift)).unwrap();
        assert_eq!(
            survey.warnings(),
            vec!["1 immutable or append-only file(s) (chattr +i/+a) cannot change owner: d/e/g"]
        );
        let s = migrate(&fx.data, &fx.tmp.path().join("j"), MigrateMode::Shift);
        assert_eq!(
            s.problems(),
            vec![
                "1 inode(s) are still in the source mapping: d/e/g".to_string(),
                "1 immutable or append-only file(s) could not change: d/e/g; `chattr -i -a` \
                 them and apply again"
                    .to_string(),
            ]
        );
        assert_eq!(owner(&locked), (101_000, 100_999));
    });
    unlock();
    result.unwrap();
    // Unlocked, the next run finishes the job.
    let s = migrate(&fx.data, &fx.tmp.path().join("j"), MigrateMode::Shift);
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    assert_migrated(&fx.data);
}

#[test]
fn an_acl_entry_that_would_collide_is_a_failure_not_silence() {
    let fx = fixture();
    legacy_tree(&fx.data);
    // One entry for the legacy uid of container uid 999, one for the stack's.
    let f = fx.data.join("collide");
    sh(&format!(
        "echo x >'{p}' && chown 100998:100998 '{p}' && setfacl -m u:100998:r,u:200998:rw '{p}'",
        p = f.display()
    ));
    let acl_before = sh(&format!("getfacl -n '{}'", f.display()));
    let s = migrate(&fx.data, &fx.tmp.path().join("j"), MigrateMode::Shift);
    assert_eq!(s.acl_unmapped.samples, vec![PathBuf::from("collide")]);
    assert!(s.problems().contains(
        &"1 ACL(s) hold entries that would collide once mapped (left unchanged): collide"
            .to_string()
    ));
    assert_eq!(sh(&format!("getfacl -n '{}'", f.display())), acl_before);
}
