//! Root-run tests of shares and closed data on temporary trees: ACL entries for the mapped
//! host uids, default ACLs, the mask, revoked grants, foreign entries, idempotence, the
//! refusal without POSIX ACLs, and rollbacks byte-identical in `getfacl` and `stat`.
mod scratch_common;
use isolate::error::Error;
use isolate::ids::{IdMaps, Mapping, SubidRange};
use isolate::isolation::apply::{self, Done};
use isolate::isolation::fs::{AclProbe, RealAclProbe};
use isolate::isolation::grants::{Access, HostGrant};
use isolate::isolation::record::Record;
use isolate::isolation::steps::{CloseData, ShareStep};
use isolate::layout::Root;
use isolate::policy::ShareMode;
use isolate::walk::sys::{RealSys, RecordingSys};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const A: u32 = 800;
const A_START: u32 = 200_000;
const B: u32 = 801;
const B_START: u32 = 265_536;
/// Container uid 1000 of b.
const B_1000: u32 = B_START + 999;
const C: u32 = 802;

fn maps(root: u32, start: u32) -> IdMaps {
    let m = Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()]);
    IdMaps {
        uid: m.clone(),
        gid: m,
    }
}

fn all_maps() -> Vec<IdMaps> {
    vec![
        maps(A, A_START),
        maps(B, B_START),
        maps(C, B_START + 65_536),
    ]
}

fn sh(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Owners, modes and ACLs of everything under `dir`, as `stat` and `getfacl -R -n -P` print.
fn listing(dir: &Path) -> String {
    sh(&format!(
        "cd '{}' && find -P . | LC_ALL=C sort | xargs -d '\\n' stat -c '%n %u %g %a %h' && getfacl -R -n -P . 2>/dev/null",
        dir.display()
    ))
}

fn getfacl(path: &Path) -> String {
    sh(&format!("getfacl -n -P '{}' 2>/dev/null", path.display()))
}

/// A temporary root (for the record) holding srv/s, a share tree of every kind of inode.
struct Share {
    root: tempfile::TempDir,
}

/// A share tree of every kind of inode at `s`: files, an executable, a setgid directory,
/// a symlink out, a host user's and a host group's entries and a default ACL.
fn fill_tree(s: &Path) {
    std::fs::create_dir_all(s.join("photos/2024")).unwrap();
    std::fs::write(s.join("probe"), "shared").unwrap();
    std::fs::write(s.join("photos/p1"), "photo").unwrap();
    std::fs::write(s.join("photos/2024/p2"), "photo").unwrap();
    std::fs::copy("/bin/true", s.join("tool")).unwrap();
    for (p, mode) in [
        ("", 0o755),
        ("probe", 0o644),
        ("photos", 0o755),
        ("photos/p1", 0o644),
        ("photos/2024", 0o2775),
        ("photos/2024/p2", 0o664),
        ("tool", 0o755),
    ] {
        let path = s.join(p);
        chown(&path, Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("/etc/shadow", s.join("link")).unwrap();
    sh(&format!(
        "cd '{}' && setfacl -m u:4242:r,g:4243:r photos/p1 && setfacl -d -m u:4242:rx photos/2024",
        s.display()
    ));
}

impl Share {
    fn new() -> Share {
        let root = scratch_common::tempdir("share-");
        fill_tree(&root.path().join("srv/s"));
        Share { root }
    }

    /// The same tree on a tmpfs mounted at ROOT/srv (call it in a private mount namespace).
    fn on_tmpfs() -> Share {
        let root = scratch_common::tempdir("share-tmpfs-");
        let srv = root.path().join("srv");
        std::fs::create_dir_all(&srv).unwrap();
        sh(&format!(
            "mount -t tmpfs -o mode=0755 isolate-test '{}'",
            srv.display()
        ));
        assert_eq!(sh(&format!("stat -f -c %T '{}'", srv.display())), "tmpfs\n");
        fill_tree(&srv.join("s"));
        Share { root }
    }

    fn path(&self) -> PathBuf {
        self.root.path().join("srv/s")
    }

    fn step(&self, grants: &[(u32, u32, Access)]) -> ShareStep {
        ShareStep {
            share: "s".into(),
            path: PathBuf::from("/srv/s"),
            mode: ShareMode::Acl,
            grants: grants
                .iter()
                .map(|(cuid, host_uid, access)| HostGrant {
                    stack: "x".into(),
                    container_uid: *cuid,
                    host_uid: *host_uid,
                    access: *access,
                })
                .collect(),
            owned: all_maps(),
            shared_group: "stk-shared".into(),
            shared_gid: None,
            inodes: 0,
            changes: 0,
            group_members: Vec::new(),
            moves_from: Vec::new(),
        }
    }

    fn apply(&self, grants: &[(u32, u32, Access)]) -> Done {
        let done = apply::share(
            &Root::new(self.root.path()),
            &RealSys::new(),
            &RealAclProbe,
            &self.step(grants),
        )
        .unwrap();
        assert_eq!(done.raced, 0, "nothing changes under these walks: {done:?}");
        done
    }

    fn pending(&self, grants: &[(u32, u32, Access)]) -> (u64, u64) {
        let rule = apply::apply_rule(&all_maps(), &self.step(grants).grants, None);
        apply::survey_share(
            &RealSys::new(),
            &RealAclProbe,
            "s",
            &self.path(),
            "stk-shared",
            rule,
        )
        .unwrap()
    }

    fn rollback(&self) -> Done {
        apply::rollback_share(
            &Root::new(self.root.path()),
            &RealSys::new(),
            &RealAclProbe,
            "s",
            &all_maps(),
            "stk-shared",
            None,
        )
        .unwrap()
    }
}

const GRANTS: &[(u32, u32, Access)] = &[(0, A, Access::Write), (1000, B_1000, Access::Read)];

#[test]
fn grants_become_entries_defaults_and_a_closed_top() {
    let s = Share::new();
    let p = s.path();
    assert_eq!(
        s.pending(GRANTS),
        (8, 7),
        "every inode but the symlink changes"
    );
    let done = s.apply(GRANTS);
    assert_eq!((done.inodes, done.changed), (8, 7));

    let top = getfacl(&p);
    assert!(top.contains(&format!("user:{A}:rwx\n")), "{top}");
    assert!(top.contains(&format!("user:{B_1000}:r-x\n")), "{top}");
    assert!(top.contains("other::---\n"), "the top is closed: {top}");
    assert!(top.contains(&format!("default:user:{A}:rwx\n")), "{top}");
    assert!(
        top.contains(&format!("default:user:{B_1000}:r-x\n")),
        "{top}"
    );
    assert!(top.contains("default:mask::rwx\n"), "{top}");

    let file = getfacl(&p.join("probe"));
    assert!(file.contains(&format!("user:{A}:rw-\n")), "{file}");
    assert!(file.contains(&format!("user:{B_1000}:r--\n")), "{file}");
    assert!(file.contains("mask::rw-\n"), "{file}");
    assert!(
        file.contains("other::r--\n"),
        "below the top, other stays: {file}"
    );
    let tool = getfacl(&p.join("tool"));
    assert!(
        tool.contains(&format!("user:{B_1000}:r-x\n")),
        "executables stay executable: {tool}"
    );

    // A host user's and a host group's entries stay, with the default ACL's foreign entry.
    let p1 = getfacl(&p.join("photos/p1"));
    assert!(
        p1.contains("user:4242:r--\n") && p1.contains("group:4243:r--\n"),
        "{p1}"
    );
    let dir = getfacl(&p.join("photos/2024"));
    assert!(dir.contains("default:user:4242:r-x\n"), "{dir}");
    assert!(dir.contains(&format!("default:user:{A}:rwx\n")), "{dir}");
    // The symlink's target was not followed.
    assert!(!getfacl(Path::new("/etc/shadow")).contains(&format!("user:{A}")));

    // A second apply changes nothing.
    assert_eq!(s.pending(GRANTS).1, 0);
    assert_eq!(s.apply(GRANTS).changed, 0);

    // What a writer creates inherits the grants (effective through the mask its mode gave);
    // the next apply writes its entries as for any file, then nothing more.
    std::fs::write(p.join("photos/2024/new"), "new").unwrap();
    let new = getfacl(&p.join("photos/2024/new"));
    assert!(
        new.contains(&format!("user:{B_1000}:r-x\t#effective:r--")),
        "{new}"
    );
    assert_eq!(s.pending(GRANTS).1, 1);
    assert_eq!(s.apply(GRANTS).changed, 1);
    assert_eq!(s.pending(GRANTS).1, 0);
}

#[test]
fn a_narrowed_mask_and_a_foreign_acl_moved_in_are_repaired() {
    let s = Share::new();
    let p = s.path();
    s.apply(GRANTS);
    sh(&format!("chmod 600 '{}'", p.join("probe").display()));
    assert!(getfacl(&p.join("probe")).contains("mask::---"));
    // Moved in from elsewhere on the same filesystem with its ACL: c's uid and a host user.
    let outside = s.root.path().join("moved");
    std::fs::write(&outside, "x").unwrap();
    sh(&format!(
        "setfacl -m u:{C}:rwx,u:{}:rw,u:4242:r '{}' && mv '{}' '{}'",
        B_START + 5,
        outside.display(),
        outside.display(),
        p.join("moved").display()
    ));
    assert_eq!(s.pending(GRANTS).1, 2);
    assert_eq!(s.apply(GRANTS).changed, 2);
    let probe = getfacl(&p.join("probe"));
    assert!(probe.contains("mask::rw-\n"), "{probe}");
    let moved = getfacl(&p.join("moved"));
    assert!(!moved.contains(&format!("user:{C}:")), "{moved}");
    assert!(
        !moved.contains(&format!("user:{}:", B_START + 5)),
        "{moved}"
    );
    assert!(moved.contains("user:4242:r--\n"), "{moved}");
    assert!(moved.contains(&format!("user:{B_1000}:r--\n")), "{moved}");
}

#[test]
fn a_revoked_grant_disappears_foreign_entries_stay() {
    let s = Share::new();
    let p = s.path();
    s.apply(GRANTS);
    s.apply(&[(0, A, Access::Write)]);
    let all = sh(&format!("getfacl -R -n -P '{}' 2>/dev/null", p.display()));
    assert!(!all.contains(&format!(":{B_1000}:")), "{all}");
    assert!(all.contains(&format!("user:{A}:rwx")), "{all}");
    assert!(all.contains("user:4242:r--"), "{all}");
    assert_eq!(s.pending(&[(0, A, Access::Write)]).1, 0);
}

#[test]
fn rollback_share_gives_back_identical_listings() {
    let s = Share::new();
    let before = listing(&s.path());
    s.apply(GRANTS);
    assert_ne!(listing(&s.path()), before);
    assert_eq!(
        Record::read(&Root::new(s.root.path()))
            .unwrap()
            .shares_named("s")
            .count(),
        1
    );
    s.rollback();
    assert_eq!(listing(&s.path()), before);
    assert!(Record::read(&Root::new(s.root.path()))
        .unwrap()
        .share_trees
        .is_empty());
}

/// A filesystem that keeps no POSIX ACLs (a ZFS dataset with acltype=off answers so).
struct NoAcls;
impl AclProbe for NoAcls {
    fn posix_acls(&self, _dir: BorrowedFd<'_>) -> Result<bool, Errno> {
        Ok(false)
    }
}

#[test]
fn no_posix_acls_is_a_clear_refusal_and_nothing_changes() {
    let s = Share::new();
    let before = listing(&s.path());
    let nfs = RecordingSys::new().with_fs_type(0x6969);
    let err = apply::share(
        &Root::new(s.root.path()),
        &nfs,
        &RealAclProbe,
        &s.step(GRANTS),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Refused(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "share `s`: {} is on NFS, which keeps no POSIX ACLs, so grants to single stacks cannot \
             be made there; move the share to a filesystem with POSIX ACLs (ext4, xfs, btrfs, or \
             `zfs set acltype=posixacl` on its dataset), or set `mode = \"group\"` in [shares.s] to \
             give it to group stk-shared instead (every member of stk-shared then reaches it: \
             `isolate plan` lists them)",
            s.path().display()
        )
    );
    let zfs = RecordingSys::new().with_fs_type(0x2fc1_2fc1);
    let err = apply::share(&Root::new(s.root.path()), &zfs, &NoAcls, &s.step(GRANTS)).unwrap_err();
    assert!(
        err.to_string()
            .contains("is on ZFS without acltype=posixacl"),
        "{err}"
    );
    assert!(nfs.calls().is_empty() && zfs.calls().is_empty());
    assert_eq!(listing(&s.path()), before);
    assert!(Record::read(&Root::new(s.root.path()))
        .unwrap()
        .share_trees
        .is_empty());
}

/// A migrated data path: the top owned by a's user, container 999 owning a directory below.
fn data_tree() -> (tempfile::TempDir, PathBuf) {
    let root = scratch_common::tempdir("closed-");
    let d = root.path().join("srv/a");
    std::fs::create_dir_all(d.join("pg")).unwrap();
    std::fs::write(d.join("probe"), "a").unwrap();
    chown(&d, Some(A), Some(A)).unwrap();
    chown(d.join("probe"), Some(A), Some(A)).unwrap();
    chown(d.join("pg"), Some(A_START + 998), Some(A_START + 998)).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o2755)).unwrap();
    // The admin's backup user and another stack's uid have entries on the top.
    sh(&format!("setfacl -m u:34:rx,u:{B}:rx '{}'", d.display()));
    (root, d)
}

fn close_step() -> CloseData {
    CloseData {
        stack: "a".into(),
        path: PathBuf::from("/srv/a"),
        maps: maps(A, A_START),
        others: vec![maps(B, B_START), maps(C, B_START + 65_536)],
        shared_gid: None,
        entered_by: None,
    }
}

#[test]
fn closing_shuts_other_and_lets_the_stacks_owners_in_and_reopening_is_exact() {
    let (root, d) = data_tree();
    let before = listing(&d);
    let pg_before = listing(&d.join("pg"));
    let done = apply::close(&Root::new(root.path()), &RealSys::new(), &close_step())
        .unwrap()
        .expect("changed");
    assert_eq!(done.entered_by, vec![A_START + 998]);
    let top = getfacl(&d);
    assert!(top.contains("other::---\n"), "{top}");
    assert!(
        top.contains(&format!("user:{}:--x\n", A_START + 998)),
        "{top}"
    );
    assert!(
        !top.contains(&format!("user:{B}:")),
        "another stack's entry goes: {top}"
    );
    assert!(
        top.contains("user:34:r-x\n"),
        "a host user's entry stays: {top}"
    );
    assert!(top.contains("flags: -s-"), "setgid kept: {top}");
    // Only the top changed.
    assert_eq!(
        listing(&d.join("pg")),
        pg_before,
        "below the top nothing changed"
    );
    // Closing again changes nothing.
    assert!(
        apply::close(&Root::new(root.path()), &RealSys::new(), &close_step())
            .unwrap()
            .is_none()
    );
    assert!(apply::reopen(
        &Root::new(root.path()),
        &RealSys::new(),
        "a",
        Path::new("/srv/a")
    )
    .unwrap());
    assert_eq!(listing(&d), before);
    assert!(Record::read(&Root::new(root.path()))
        .unwrap()
        .closed
        .is_empty());
}

#[test]
fn group_only_mode_checks_the_top_and_says_what_to_run_on_the_server() {
    let s = Share::new();
    let before = listing(&s.path());
    let mut step = s.step(GRANTS);
    step.mode = ShareMode::Group;
    step.shared_gid = Some(4321);
    let root = Root::new(s.root.path());
    let err = apply::share(&root, &RealSys::new(), &RealAclProbe, &step).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        "share `s` (group-only mode): /srv/s is not yet group stk-shared's with no access for \
         others; on the file server run: chgrp -R stk-shared /srv/s && chmod -R g+rXw,o-rwx /srv/s \
         && find /srv/s -type d -exec chmod g+s {} +"
    );
    assert_eq!(
        listing(&s.path()),
        before,
        "group-only mode changes nothing itself"
    );
    chown(s.path(), None, Some(4321)).unwrap();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
    let done = apply::share(&root, &RealSys::new(), &RealAclProbe, &step).unwrap();
    assert_eq!(done.changed, 0);
}

#[test]
fn a_parent_the_stack_cannot_traverse_is_found_and_left_alone() {
    let (root, d) = data_tree();
    let srv = d.parent().unwrap().to_path_buf();
    let root = Root::new(root.path());
    let sys = RealSys::new();
    let untraversable = |uid| {
        isolate::isolation::observe::untraversable(&sys, &root, Path::new("/srv/a"), uid, &[uid])
    };
    assert_eq!(untraversable(A), None);
    std::fs::set_permissions(&srv, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(
        untraversable(A).as_deref(),
        Some("uid 800 cannot enter /srv (owner 0:0, mode 0750)")
    );
    // An ACL entry for the stack user is enough.
    sh(&format!("setfacl -m u:{A}:x '{}'", srv.display()));
    assert_eq!(untraversable(A), None);
    assert_eq!(mode_of(&srv), 0o750, "reported, never changed");
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_file_linked_from_outside_the_share_is_never_changed() {
    let s = Share::new();
    let outside = s.root.path().join("private");
    std::fs::write(&outside, "not shared").unwrap();
    std::fs::hard_link(&outside, s.path().join("linked")).unwrap();
    let before = getfacl(&outside);
    let done = s.apply(GRANTS);
    assert_eq!(done.outside_links, vec![PathBuf::from("linked")]);
    assert_eq!(getfacl(&outside), before);
}

/// Runs this binary's test `name` again inside a private mount namespace (for a tmpfs that
/// goes away with it).
fn in_private_mount_ns(name: &str) {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHARE_IN_MOUNT_NS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed in its mount namespace: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_mount_ns() -> bool {
    std::env::var_os("SHARE_IN_MOUNT_NS").is_some()
}

/// The rights `who` ("user:34", "group:4243", "group:", "default:user:34") really has in a
/// `getfacl` listing: the entry's, or the `#effective` the mask leaves of it.
fn effective(listing: &str, who: &str) -> String {
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("{who}:")))
        .unwrap_or_else(|| panic!("no {who} entry in {listing}"));
    match line.split_once("#effective:") {
        Some((_, e)) => e.trim().to_string(),
        None => line[who.len() + 1..].trim().to_string(),
    }
}

/// The policy moved the share: same name, another path.
fn moved_step(s: &Share, grants: &[(u32, u32, Access)]) -> ShareStep {
    ShareStep {
        path: PathBuf::from("/srv/t"),
        ..s.step(grants)
    }
}

#[test]
fn a_changed_share_path_takes_the_grants_off_the_old_tree() {
    let s = Share::new();
    let t = s.root.path().join("srv/t");
    fill_tree(&t);
    // The new top had a mode and an ACL of its own.
    sh(&format!(
        "chmod 2750 '{}' && setfacl -m u:34:rx '{}'",
        t.display(),
        t.display()
    ));
    let (old_before, new_before) = (listing(&s.path()), listing(&t));
    s.apply(GRANTS);
    let root = Root::new(s.root.path());
    let done = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap();
    assert_eq!(
        listing(&s.path()),
        old_before,
        "the old tree keeps none of isolate's entries, its top is back as it was"
    );
    assert_eq!(done.moved_from, Some(PathBuf::from("/srv/s")));
    let top = getfacl(&t);
    assert!(top.contains(&format!("user:{A}:rwx\n")), "{top}");
    assert!(top.contains("other::---\n"), "{top}");
    let record = Record::read(&root).unwrap();
    let paths: Vec<_> = record.shares_named("s").map(|t| t.path.clone()).collect();
    assert_eq!(
        paths,
        vec![PathBuf::from("/srv/t")],
        "keyed by the path changed"
    );
    // A second apply changes nothing; rollback gives the new tree back exactly.
    let again = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap();
    assert_eq!((again.changed, again.moved_from), (0, None));
    s.rollback();
    assert_eq!(
        listing(&t),
        new_before,
        "the new top's mode and ACL come back"
    );
    assert_eq!(listing(&s.path()), old_before);
    assert_eq!(Record::read(&root).unwrap().shares_named("s").count(), 0);
}

/// A backup user (34) and a host group (4243) with named entries wider than the mask lets
/// them use, on the top, a directory's access and default ACLs and a file; the owning group
/// wider than the mask on another file.
fn narrow_masks(s: &Path) {
    sh(&format!(
        "cd '{}' && chmod g+s . \
         && setfacl -m u:34:rwx,m::rx . \
         && setfacl -m u:34:rwx,g:4243:rwx,m::rx photos \
         && setfacl -d -m u:34:rwx,m::rx photos/2024 \
         && setfacl -m u:34:rw,g:4243:rw,m::r photos/p1 \
         && setfacl -m g::rw,m::r probe",
        s.display()
    ));
}

fn backup_rights(s: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (p, who) in [
        ("", "user:34"),
        ("photos", "user:34"),
        ("photos", "group:4243"),
        ("photos/2024", "default:user:34"),
        ("photos/p1", "user:34"),
        ("photos/p1", "group:4243"),
        ("probe", "group:"),
    ] {
        out.push((format!("{p} {who}"), effective(&getfacl(&s.join(p)), who)));
    }
    out
}

fn never_widened_and_rolled_back_exactly(s: &Share) {
    let p = s.path();
    narrow_masks(&p);
    let before = listing(&p);
    let rights = backup_rights(&p);
    assert_eq!(
        rights.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
        ["r-x", "r-x", "r-x", "r-x", "r--", "r--", "r--"]
    );
    s.apply(GRANTS);
    assert_eq!(backup_rights(&p), rights, "no host entry gains a right");
    let top = getfacl(&p);
    assert!(top.contains(&format!("user:{A}:rwx\n")), "{top}");
    for f in ["photos/p1", "probe"] {
        let acl = getfacl(&p.join(f));
        assert!(
            acl.contains(&format!("user:{A}:rw-\n")),
            "the grant is whole: {acl}"
        );
        assert!(acl.contains(&format!("user:{B_1000}:r--\n")), "{acl}");
    }
    for d in ["", "photos", "photos/2024"] {
        let acl = getfacl(&p.join(d));
        assert!(acl.contains(&format!("user:{A}:rwx\n")), "{d}: {acl}");
    }
    // A second apply changes nothing and still widens nothing.
    assert_eq!(s.apply(GRANTS).changed, 0);
    assert_eq!(backup_rights(&p), rights);
    s.rollback();
    assert_eq!(
        listing(&p),
        before,
        "masks, entries and the top's mode come back"
    );
}

#[test]
fn share_grants_never_widen_a_host_users_entry_and_rollback_gives_the_masks_back() {
    never_widened_and_rolled_back_exactly(&Share::new());
}

#[test]
fn share_grants_never_widen_a_host_users_entry_on_tmpfs() {
    if !in_mount_ns() {
        return in_private_mount_ns("share_grants_never_widen_a_host_users_entry_on_tmpfs");
    }
    let s = Share::on_tmpfs();
    never_widened_and_rolled_back_exactly(&s);
    sh(&format!("umount '{}'", s.root.path().join("srv").display()));
}

#[test]
fn a_journalled_change_that_never_happened_and_one_changed_since_roll_back_right() {
    use isolate::walk::sys::Op;
    let s = Share::new();
    let p = s.path();
    narrow_masks(&p);
    let before = listing(&p);
    let root = Root::new(s.root.path());
    // photos/p1's line is journalled, then its ACL write fails: as a crash between the two.
    let failing = RecordingSys::new().fail(Op::SetXattr, "p1", Errno::IO);
    let err = apply::share(&root, &failing, &RealAclProbe, &s.step(GRANTS)).unwrap_err();
    assert!(
        err.to_string().contains("1 inodes could not be changed"),
        "{err}"
    );
    assert!(!getfacl(&p.join("photos/p1")).contains(&format!("user:{A}:")));
    s.rollback();
    assert_eq!(
        listing(&p),
        before,
        "a journalled change never made is left as it is"
    );

    // Applied again; then an admin adds an entry to a journalled inode.
    s.apply(GRANTS);
    sh(&format!(
        "setfacl -m u:4244:r '{}'",
        p.join("photos/p1").display()
    ));
    let done = s.rollback();
    assert_eq!(
        (done.changed_since_count, done.changed_since.clone()),
        (1, vec![PathBuf::from("photos/p1")])
    );
    let p1 = getfacl(&p.join("photos/p1"));
    assert!(p1.contains("user:4244:r--\n"), "their change stays: {p1}");
    assert!(
        !p1.contains(&format!("user:{A}:")),
        "isolate's entry goes: {p1}"
    );
    assert_eq!(effective(&p1, "user:34"), "r--", "still no wider: {p1}");
    // Everything else is exactly as before.
    let strip = |l: &str| {
        l.split("\n\n")
            .filter(|b| !b.contains("# file: photos/p1\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(strip(&listing(&p)), strip(&before));
}

/// Inodes of the share that get a's entry (every one but the symlink), counted once.
fn granted_total(p: &Path) -> usize {
    sh(&format!("find -P '{}' ! -type l | wc -l", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn apply_on(root: &Path) -> Result<Done, Error> {
    let s = Share {
        root: tempfile::TempDir::new().unwrap(), // only for step(): not used as the root
    };
    apply::share(
        &Root::new(root),
        &RealSys::new(),
        &RealAclProbe,
        &s.step(GRANTS),
    )
}

fn rollback_on(root: &Path) -> Result<Done, Error> {
    apply::rollback_share(
        &Root::new(root),
        &RealSys::new(),
        &RealAclProbe,
        "s",
        &all_maps(),
        "stk-shared",
        None,
    )
}

/// Not a test on its own: the process `kill -9` interrupts. Applies (SHARE_KILL_OP=apply) or
/// rolls back the share under SHARE_KILL_ROOT.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn share_kill_child_entry() {
    let root = PathBuf::from(
        std::env::var_os("SHARE_KILL_ROOT").expect("run by a kill -9 test, with SHARE_KILL_ROOT"),
    );
    match std::env::var("SHARE_KILL_OP").unwrap().as_str() {
        "apply" => drop(apply_on(&root).unwrap()),
        _ => drop(rollback_on(&root).unwrap()),
    }
}

/// Runs the child entry on `root` and kills it after `delay_ms`; true if it was cut short.
fn killed_after(root: &Path, op: &str, delay_ms: u64) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "share_kill_child_entry",
            "--test-threads=1",
        ])
        .env("SHARE_KILL_ROOT", root)
        .env("SHARE_KILL_OP", op)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    child.kill().unwrap(); // SIGKILL
    !child.wait().unwrap().success()
}

/// Rolls back what is recorded (nothing may be, if the kill came first).
fn finish_rollback(root: &Path) {
    if Record::read(&Root::new(root))
        .unwrap()
        .shares_named("s")
        .count()
        > 0
    {
        rollback_on(root).unwrap();
    }
}

#[test]
fn a_share_apply_or_rollback_killed_anywhere_still_rolls_back_exactly() {
    let s = Share::new();
    let p = s.path();
    narrow_masks(&p);
    // 3,000 more inodes, half of them with a backup user's entry wider than the mask.
    sh(&format!(
        "cd '{}' && for d in $(seq 30); do mkdir -p big/d$d; for f in $(seq 100); do echo x >big/d$d/f$f; done; done \
         && chown -R 1000:1000 big && setfacl -R -m u:34:rwx,m::rx big/d1 big/d2 big/d3 big/d4 big/d5 big/d6 big/d7 big/d8 big/d9 big/d10 big/d11 big/d12 big/d13 big/d14 big/d15",
        p.display()
    ));
    let before = listing(&p);
    let root = s.root.path();
    let (mut interrupted, mut rounds, mut midway) = (0, 0, 0);
    // How many inodes carry a's entry now.
    let granted = || {
        sh(&format!("getfacl -R -n -P '{}' 2>/dev/null", p.display()))
            .lines()
            .filter(|l| l.starts_with(&format!("user:{A}:")))
            .count()
    };
    let total = granted_total(&p);
    for delay_ms in [5u64, 8, 10, 12, 15, 20, 25, 30, 40, 60, 100, 250] {
        // Apply killed, then rolled back.
        rounds += 1;
        interrupted += u32::from(killed_after(root, "apply", delay_ms));
        let n = granted();
        midway += u32::from(n > 0 && n < total);
        finish_rollback(root);
        assert_eq!(
            listing(&p),
            before,
            "after an apply killed at {delay_ms} ms"
        );
        // Apply killed, applied again to the end: nobody else gains a right.
        rounds += 1;
        interrupted += u32::from(killed_after(root, "apply", delay_ms));
        apply_on(root).unwrap();
        assert_eq!(
            effective(&getfacl(&p.join("big/d1/f1")), "user:34"),
            "r-x",
            "after an apply killed at {delay_ms} ms and run again"
        );
        // Rollback killed, then run to the end.
        assert_eq!(granted(), total);
        rounds += 1;
        interrupted += u32::from(killed_after(root, "rollback", delay_ms));
        let n = granted();
        midway += u32::from(n > 0 && n < total);
        finish_rollback(root);
        assert_eq!(
            listing(&p),
            before,
            "after a rollback killed at {delay_ms} ms"
        );
    }
    eprintln!(
        "{interrupted} of {rounds} runs cut short by kill -9, {midway} of them mid-walk; every one rolled back exactly"
    );
    assert!(
        midway > 0,
        "no run was cut short mid-walk; the tree is too small"
    );
}

#[test]
fn a_moved_share_whose_old_tree_was_replaced_stops_and_one_gone_is_forgotten() {
    let s = Share::new();
    let t = s.root.path().join("srv/t");
    fill_tree(&t);
    let t_before = listing(&t);
    let root = Root::new(s.root.path());
    s.apply(GRANTS);
    // Another directory stands at the old path (the old one moved aside, or a mount missing).
    let aside = s.root.path().join("srv/s.old");
    std::fs::rename(s.path(), &aside).unwrap();
    std::fs::create_dir(s.path()).unwrap();
    let err = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("/srv/s is another directory than the one isolate changed"),
        "{err}"
    );
    assert_eq!(listing(&t), t_before, "the new path is not touched");
    assert_eq!(Record::read(&root).unwrap().shares_named("s").count(), 1);
    // Gone for good: nothing stands there; the old tree is forgotten, the new one granted.
    std::fs::remove_dir(s.path()).unwrap();
    let done = apply::share(
        &root,
        &RealSys::new(),
        &RealAclProbe,
        &moved_step(&s, GRANTS),
    )
    .unwrap();
    assert!(done.moved_gone && done.changed > 0, "{done:?}");
    assert!(
        done.line()
            .starts_with("/srv/s (the share's old path) no longer exists"),
        "{}",
        done.line()
    );
    let paths: Vec<_> = Record::read(&root)
        .unwrap()
        .shares_named("s")
        .map(|t| t.path.clone())
        .collect();
    assert_eq!(paths, vec![PathBuf::from("/srv/t")]);
    s.rollback();
    assert_eq!(listing(&t), t_before);
}
