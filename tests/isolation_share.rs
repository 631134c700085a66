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

impl Share {
    fn new() -> Share {
        let root = scratch_common::tempdir("share-");
        let s = root.path().join("srv/s");
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
        }
    }

    fn apply(&self, grants: &[(u32, u32, Access)]) -> Done {
        apply::share(
            &Root::new(self.root.path()),
            &RealSys::new(),
            &RealAclProbe,
            &self.step(grants),
        )
        .unwrap()
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
    assert!(Record::read(&Root::new(s.root.path()))
        .unwrap()
        .shares
        .contains_key("s"));
    s.rollback();
    assert_eq!(listing(&s.path()), before);
    assert!(Record::read(&Root::new(s.root.path()))
        .unwrap()
        .shares
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
        .shares
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
