//! The migration rules on a real temp tree (run as root): shift, reown, auto, ACLs,
//! capabilities, setuid bits, hardlinks, symlinks, survey, exact rollback, injected failures.
mod walk_common;

use isolate::migration::MigrateMode;
use isolate::walk::sys::{Op, RealSys, RecordingSys};
use isolate::walk::{self, Progress};
use walk_common::*;

fn migrate(fx: &Fixture, mode: MigrateMode) -> walk::Summary {
    walk::migrate(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("journal/STACK-1.journal"),
        &Progress::off(),
    )
    .unwrap()
}

fn rollback(fx: &Fixture, mode: MigrateMode) -> walk::Summary {
    walk::rollback(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("journal/STACK-1.journal"),
        &Progress::off(),
    )
    .unwrap()
}

#[test]
fn shift_moves_legacy_ids_and_keeps_the_rest() {
    let fx = fixture();
    standard_tree(&fx);
    let outside_before = listing(&fx.outside);
    let s = migrate(&fx, MigrateMode::Shift);
    let d = &fx.data;
    assert_eq!(owner(d), (200_998, 200_998));
    assert_eq!(owner(&d.join("file")), (200_998, 200_998));
    assert_eq!(owner(&d.join("legacy-root")), (850, 850));
    assert_eq!(owner(&d.join("outside")), (0, 5000));
    assert_eq!(owner(&d.join("already")), (200_998, 200_998));
    assert_eq!(owner(&d.join("mixed")), (200_998, 0));
    assert_eq!(owner(&d.join("dir")), (201_000, 201_000));
    assert_eq!(mode(&d.join("dir")), 0o2775);
    assert_eq!(owner(&d.join("deep/a/b/c/d/file")), (200_998, 200_998));
    // Symlinks are re-owned themselves; what they point at is not touched.
    assert_eq!(owner(&d.join("link-out")), (200_998, 200_998));
    assert_eq!(owner(&d.join("dirlink-out")), (850, 850));
    assert_eq!(owner(&fx.outside.join("target")), (100_998, 100_998));
    assert_eq!(listing(&fx.outside), outside_before);
    // setuid/setgid survive the chown.
    assert_eq!(owner(&d.join("dir/suid")), (200_998, 201_000));
    assert_eq!(mode(&d.join("dir/suid")), 0o6755);
    // Hardlinks: one inode, moved once.
    assert_eq!(owner(&d.join("hl2")), (200_998, 200_998));
    // Capabilities: kept, v3 rootid moved.
    let caps = sh(&format!(
        "cd '{}' && getcap -n dir/cap2 dir/cap3",
        d.display()
    ));
    assert_eq!(
        caps,
        "dir/cap2 cap_net_bind_service=ep\ndir/cap3 cap_net_bind_service=ep [rootid=200998]\n"
    );
    // ACLs: named entries in the legacy mapping moved, others (33, 0) kept.
    let acl = sh(&format!(
        "cd '{}' && getfacl -n -c dir/acl dir/sub fifo",
        d.display()
    ));
    for line in [
        "user:200998:r-x",
        "group:201000:r--",
        "user:33:r--",
        "user:200998:rwx",
        "group:201000:r-x",
        "default:user:200998:rwx",
        "default:group:201000:r-x",
        "default:user:0:r--",
        "user:201000:r--",
    ] {
        assert!(acl.lines().any(|l| l == line), "{line} missing in\n{acl}");
    }
    assert!(
        !acl.contains(":100998:") && !acl.contains(":101000:"),
        "{acl}"
    );
    // Counts: outside ids are counted with samples; the journal holds the inodes whose
    // setuid bit or capability a chown drops.
    assert_eq!(s.skipped_outside, 2, "{s:?}");
    assert!(s.outside_samples.contains(&"outside".into()));
    assert!(s.outside_samples.contains(&"mixed".into()));
    assert_eq!(s.skipped_already, 1, "{s:?}");
    // (dir/suid, the setgid dir, dir/cap2, dir/cap3)
    assert_eq!(s.journalled, 4, "{s:?}");
    assert_eq!(s.reowned, 0);
    assert!(s.mounts_skipped.is_empty());

    // A second run finds nothing to do.
    let again = migrate(&fx, MigrateMode::Shift);
    assert_eq!(again.changed, 0, "{again:?}");
    assert_eq!(again.inodes, s.inodes);
}

#[test]
fn reown_makes_everything_container_root_and_rolls_back_exactly() {
    let fx = fixture();
    standard_tree_for_rollback(&fx);
    let before = listing(&fx.data);
    let outside_before = listing(&fx.outside);
    let s = migrate(&fx, MigrateMode::Reown);
    for p in [
        "", "file", "outside", "mixed", "dir/suid", "link-out", "fifo",
    ] {
        assert_eq!(owner(&fx.data.join(p)), (850, 850), "{p}");
    }
    assert_eq!(mode(&fx.data.join("dir/suid")), 0o6755);
    assert_eq!((s.reowned, s.journalled), (s.inodes, s.inodes), "{s:?}");
    // A re-run does not journal the reowned owners as originals.
    let again = migrate(&fx, MigrateMode::Reown);
    assert_eq!((again.changed, again.journalled), (0, 0), "{again:?}");
    rollback(&fx, MigrateMode::Reown);
    assert_same(&listing(&fx.data), &before);
    assert_same(&listing(&fx.outside), &outside_before);
}

#[test]
fn auto_shifts_legacy_ids_reowns_the_rest_and_rolls_back_exactly() {
    let fx = fixture();
    standard_tree(&fx);
    let s = migrate(&fx, MigrateMode::Auto);
    assert_eq!(owner(&fx.data.join("file")), (200_998, 200_998));
    assert_eq!(owner(&fx.data.join("outside")), (850, 850));
    assert_eq!(owner(&fx.data.join("mixed")), (200_998, 850));
    assert_eq!(owner(&fx.data.join("already")), (200_998, 200_998));
    assert_eq!(s.reowned, 2, "{s:?}");
    assert_eq!(s.skipped_outside, 0);

    let fx = fixture();
    standard_tree_for_rollback(&fx);
    let before = listing(&fx.data);
    migrate(&fx, MigrateMode::Auto);
    rollback(&fx, MigrateMode::Auto);
    assert_same(&listing(&fx.data), &before);
}

#[test]
fn shift_rolls_back_byte_identical() {
    let fx = fixture();
    standard_tree_for_rollback(&fx);
    big_tree(&fx.data.join("big"), 2_000);
    let before = listing(&fx.data);
    migrate(&fx, MigrateMode::Shift);
    assert_ne!(listing(&fx.data), before);
    let r = rollback(&fx, MigrateMode::Shift);
    assert_same(&listing(&fx.data), &before);
    assert_eq!(r.journal_missing, 0);
}

#[test]
fn survey_counts_and_changes_nothing() {
    let fx = fixture();
    standard_tree(&fx);
    let before = listing(&fx.data);
    let survey = walk::survey(&RealSys::new(), &fx.data, &spec(MigrateMode::Shift)).unwrap();
    assert_eq!(listing(&fx.data), before);
    // data, file, legacy-root, outside, already, mixed, dir, suid, hl1(=hl2), cap2, cap3,
    // acl, sub, deep, a, b, c, d, deep file, fifo, link-out, dirlink-out
    assert_eq!(survey.inodes, 22, "{survey:?}");
    assert_eq!(survey.outside, 2);
    assert_eq!(survey.already, 1);
    assert_eq!(survey.shift, 20);
    assert_eq!(survey.reown, 0);
    let auto = walk::survey(&RealSys::new(), &fx.data, &spec(MigrateMode::Auto)).unwrap();
    assert_eq!((auto.reown, auto.outside), (2, 0));
}

#[test]
fn hardlinked_inode_is_changed_once() {
    let fx = fixture();
    standard_tree(&fx);
    let sys = RecordingSys::new();
    walk::migrate(
        &sys,
        &fx.data,
        &spec(MigrateMode::Shift),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap();
    let chowns: Vec<_> = sys
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::Chown && (c.name == "hl1" || c.name == "hl2"))
        .collect();
    assert_eq!(chowns.len(), 1, "{chowns:?}");
    assert_eq!(chowns[0].detail, "200998:200998");
    assert_eq!(owner(&fx.data.join("dir/hl1")), (200_998, 200_998));
    // Nothing at the target owner already was touched.
    assert!(!sys.calls().iter().any(|c| c.name == "already"));
}

#[test]
fn injected_failure_mid_walk_is_reported_with_its_path() {
    let fx = fixture();
    standard_tree(&fx);
    let sys = RecordingSys::new().fail(Op::Chown, "suid", rustix::io::Errno::IO);
    let s = walk::migrate(
        &sys,
        &fx.data,
        &spec(MigrateMode::Shift),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap();
    // The failure is counted with its path, the rest of the tree migrated, and the
    // verification pass finds the one inode left: the step is not done.
    let expected = format!(
        "chown {}: Input/output error (os error 5)",
        fx.data.join("dir/suid").display()
    );
    assert_eq!(s.failure_messages, vec![expected.clone()]);
    assert_eq!(s.failed.count, 1);
    assert_eq!(s.left.samples, vec![std::path::PathBuf::from("dir/suid")]);
    assert_eq!(
        s.problems(),
        vec![
            "1 inode(s) are still in the source mapping: dir/suid".to_string(),
            format!("1 inode(s) failed: {expected}"),
        ]
    );
    assert_eq!(owner(&fx.data.join("file")), (200_998, 200_998));
    // A failed setxattr is reported the same way.
    let fx2 = fixture();
    standard_tree(&fx2);
    let sys = RecordingSys::new().fail(Op::SetXattr, "acl", rustix::io::Errno::NOSPC);
    let s = walk::migrate(
        &sys,
        &fx2.data,
        &spec(MigrateMode::Shift),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap();
    assert!(
        s.failure_messages[0].starts_with(&format!(
            "write ACL of {}:",
            fx2.data.join("dir/acl").display()
        )),
        "{s:?}"
    );
    // The run that failed converges when re-run without the fault.
    migrate(&fx, MigrateMode::Shift);
    assert_eq!(owner(&fx.data.join("dir/suid")), (200_998, 201_000));
    assert_eq!(mode(&fx.data.join("dir/suid")), 0o6755);
}

#[test]
fn journal_is_written_before_the_chown_it_describes() {
    let fx = fixture();
    standard_tree_for_rollback(&fx);
    let journal = fx.tmp.path().join("journal/STACK-1.journal");
    let sys = RecordingSys::new().fail(Op::Chown, "legacy-root", rustix::io::Errno::IO);
    let s = walk::migrate(
        &sys,
        &fx.data,
        &spec(MigrateMode::Reown),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert_eq!(s.failed.count, 1);
    // The chown failed (as if the machine died at that moment): its record is already there.
    let mut records = Vec::new();
    walk::journal::read(&journal, |l| {
        if let walk::journal::Line::Before(r) = l {
            records.push(r);
        }
        Ok(())
    })
    .unwrap();
    let record = records
        .iter()
        .find(|r| r.path == std::path::Path::new("legacy-root"))
        .expect("journalled before the chown");
    assert_eq!((record.uid, record.gid, record.perm), (1000, 1000, 0o640));
    assert_eq!(owner(&fx.data.join("legacy-root")), (1000, 1000));
    use std::os::unix::fs::PermissionsExt;
    let journal_mode = std::fs::metadata(journal.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(journal_mode & 0o777, 0o700);
}
