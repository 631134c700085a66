//! Shared helpers of the walk integration tests: realistic mappings, temp trees with every
//! kind of inode the migration must handle, and full owner/mode/ACL/capability listings.
#![allow(dead_code)]
#[path = "../scratch_common/mod.rs"]
pub mod scratch_common;
use isolate::ids::{IdMaps, Mapping, Shift, SubidRange};
use isolate::migration::{MigrateMode, MigrationSpec};
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const LEGACY_ROOT: u32 = 1000;
pub const STACK_ROOT: u32 = 850;

fn mapping(root: u32, start: u32) -> Mapping {
    Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()])
}

/// legacy = uid 1000 + 100000:65536, stack = uid 850 + 200000:65536 (gids the same).
pub fn spec(mode: MigrateMode) -> MigrationSpec {
    let legacy = mapping(LEGACY_ROOT, 100_000);
    let stack = mapping(STACK_ROOT, 200_000);
    MigrationSpec {
        mode,
        shift: Shift {
            from: IdMaps {
                uid: legacy.clone(),
                gid: legacy,
            },
            to: IdMaps {
                uid: stack.clone(),
                gid: stack,
            },
        },
        target_uid: STACK_ROOT,
        target_gid: STACK_ROOT,
        outside_links: Default::default(),
    }
}

/// Runs a shell command, panics unless it succeeds, returns its stdout.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every owner, mode, link count, ACL and capability under `root`, paths relative, sorted.
pub fn listing(root: &Path) -> String {
    let q = root.display();
    let stat = sh(&format!(
        "cd '{q}' && find -P . -exec stat -c '%n %u %g %a %h' {{}} + | LC_ALL=C sort"
    ));
    // getfacl -R lists in directory order, which a copy (tmpfs, another filesystem) changes:
    // its per-file blocks are compared sorted.
    let acl = sh(&format!("cd '{q}' && getfacl -R -P -n . 2>/dev/null"));
    let mut blocks: Vec<&str> = acl.split("\n\n").filter(|b| !b.trim().is_empty()).collect();
    blocks.sort_unstable();
    let caps = sh(&format!("cd '{q}' && getcap -n -r . | LC_ALL=C sort"));
    format!("{stat}---\n{}\n---\n{caps}", blocks.join("\n\n"))
}

pub fn owner(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn file(path: &Path, uid: u32, gid: u32, perm: u32) {
    std::fs::write(path, b"data").unwrap();
    chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).unwrap();
}

fn dir(path: &Path, uid: u32, gid: u32, perm: u32) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).unwrap();
}

/// A temp dir holding `data/` (the tree to migrate) and `outside/` (owned by legacy ids:
/// anything the walk wrongly follows into would show up changed).
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub outside: PathBuf,
}

pub fn fixture() -> Fixture {
    // Not /tmp: it may be a tmpfs without xattr support for capabilities, and it is writable
    // by others (so is a checkout below it).
    let tmp = scratch_common::tempdir("walk-");
    let data = tmp.path().join("data");
    let outside = tmp.path().join("outside");
    dir(&outside, 100_998, 100_998, 0o755);
    file(&outside.join("target"), 100_998, 100_998, 0o644);
    dir(&outside.join("secret"), 100_998, 100_998, 0o700);
    file(&outside.join("secret/key"), 101_000, 101_000, 0o600);
    Fixture { tmp, data, outside }
}

/// The standard tree: every rule and every kind of inode, with their original owners.
pub fn standard_tree(fx: &Fixture) {
    let d = &fx.data;
    dir(d, 100_998, 100_998, 0o755);
    file(&d.join("file"), 100_998, 100_998, 0o644);
    file(&d.join("legacy-root"), LEGACY_ROOT, LEGACY_ROOT, 0o640);
    file(&d.join("outside"), 0, 5000, 0o644);
    file(&d.join("already"), 200_998, 200_998, 0o644);
    file(&d.join("mixed"), 100_998, 0, 0o644);
    dir(&d.join("dir"), 101_000, 101_000, 0o2775);
    std::fs::copy("/bin/true", d.join("dir/suid")).unwrap();
    chown(d.join("dir/suid"), Some(100_998), Some(101_000)).unwrap();
    std::fs::set_permissions(d.join("dir/suid"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    file(&d.join("dir/hl1"), 100_998, 100_998, 0o644);
    std::fs::hard_link(d.join("dir/hl1"), d.join("hl2")).unwrap();
    file(&d.join("dir/cap2"), 100_998, 100_998, 0o755);
    file(&d.join("dir/cap3"), 101_000, 101_000, 0o755);
    file(&d.join("dir/acl"), 100_998, 100_998, 0o640);
    dir(&d.join("dir/sub"), 100_998, 100_998, 0o755);
    dir(&d.join("deep/a/b/c/d"), 100_998, 100_998, 0o755);
    file(&d.join("deep/a/b/c/d/file"), 100_005, 100_006, 0o600);
    let q = d.display();
    sh(&format!(
        "cd '{q}' && chown -R 100998:100998 deep \
         && setcap cap_net_bind_service+ep dir/cap2 \
         && setcap -n 100998 cap_net_bind_service+ep dir/cap3 \
         && setfacl -m u:100998:rx,g:101000:r,u:33:r dir/acl \
         && setfacl -m u:100998:rwx,g:101000:rx dir/sub \
         && setfacl -d -m u:100998:rwx,g:101000:rx,u:0:r dir/sub \
         && mkfifo fifo && chown 100998:100998 fifo && setfacl -m u:101000:r fifo"
    ));
    symlink(fx.outside.join("target"), d.join("link-out")).unwrap();
    lchown(d.join("link-out"), Some(100_998), Some(100_998)).unwrap();
    symlink(&fx.outside, d.join("dirlink-out")).unwrap();
    lchown(d.join("dirlink-out"), Some(LEGACY_ROOT), Some(LEGACY_ROOT)).unwrap();
}

/// A wide, deep tree of `files` files, about 20 per directory, owners cycling through the
/// legacy mapping, some outside it; every 97th file setuid, every 101st hardlinked.
pub fn big_tree(root: &Path, files: usize) {
    dir(root, 100_998, 100_998, 0o755);
    let mut made_dirs = std::collections::HashSet::new();
    for i in 0..files {
        let d = root.join(format!("d{}/e{}", i / 400, (i / 20) % 20));
        if made_dirs.insert(d.clone()) {
            dir(
                &d,
                100_000 + (i % 7) as u32,
                100_000 + (i % 5) as u32,
                0o755,
            );
            if let Some(parent) = d.parent() {
                chown(parent, Some(100_998), Some(101_000)).unwrap();
            }
        }
        let f = d.join(format!("f{i}"));
        let (uid, gid) = match i % 10 {
            0 => (0, 0),
            1 => (LEGACY_ROOT, 4242),
            _ => (100_000 + (i % 1000) as u32, 100_000 + (i % 300) as u32),
        };
        let perm = if i % 97 == 0 { 0o4755 } else { 0o644 };
        file(&f, uid, gid, perm);
        if i % 101 == 0 {
            std::fs::hard_link(&f, d.join(format!("h{i}"))).unwrap();
        }
    }
}

/// Compares two listings and panics with only the lines that differ.
pub fn assert_same(actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let a: std::collections::BTreeSet<&str> = actual.lines().collect();
    let e: std::collections::BTreeSet<&str> = expected.lines().collect();
    let extra: Vec<_> = a.difference(&e).take(20).collect();
    let missing: Vec<_> = e.difference(&a).take(20).collect();
    panic!("listings differ\nunexpected: {extra:#?}\nmissing: {missing:#?}");
}

/// The standard tree without the inode that was in the stack mapping before migrating:
/// rollback cannot tell it from a shifted one (see the walk module's docs).
pub fn standard_tree_for_rollback(fx: &Fixture) {
    standard_tree(fx);
    std::fs::remove_file(fx.data.join("already")).unwrap();
}
