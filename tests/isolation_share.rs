//! Root-run tests of shares and closed data on temporary trees: ACL entries for the mapped
//! host uids, default ACLs, the mask, revoked grants, foreign entries, idempotence, the
//! refusal without POSIX ACLs, and rollbacks byte-identical in `getfacl` and `stat`.
mod share_common;
use share_common::*;

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

/// On a `nodev` mount a share walk changes a regular file's ACL through a read-only
/// descriptor of the file itself, not an `O_PATH` pin (whose xattr reads and writes each go
/// through a `/proc/self/fd` path walk: four times the kernel work of the call); only the
/// directories (the top, photos, photos/2024) and the symlink (looked at, never changed) are
/// pinned. On a mount that opens devices every entry is pinned: a name swapped for a device
/// node is never opened. The ACLs come out the same either way.
#[test]
fn a_share_walk_opens_regular_files_only_on_a_nodev_mount() {
    if !in_mount_ns() {
        return in_private_mount_ns("a_share_walk_opens_regular_files_only_on_a_nodev_mount");
    }
    // Applies the grants to `s` through a recording fake: (pins, files opened).
    let share = |s: &Share| {
        let sys = RecordingSys::new();
        let done = apply::share(
            &Root::new(s.root.path()),
            &sys,
            &RealAclProbe,
            &s.step(GRANTS),
        )
        .unwrap();
        assert_eq!((done.inodes, done.changed, done.raced), (8, 7, 0));
        (sys.pins(), sys.opened_files())
    };
    let through_pins = Share::new();
    assert_eq!(share(&through_pins), (8, 0), "all pinned");
    let s = Share::on_tmpfs_with("mode=0755,nodev");
    assert_eq!(
        share(&s),
        (4, 4),
        "only the three directories and the symlink are pinned; the four regular files are opened"
    );
    for f in ["probe", "photos/p1", "photos/2024/p2", "tool"] {
        let acl =
            |root: &std::path::Path| sh(&format!("getfacl -c -n -P '{}'", root.join(f).display()));
        assert_eq!(acl(&s.path()), acl(&through_pins.path()), "{f}");
    }
}
