//! Hostile data against rollback (root-run, temp trees on ext4): a stack that rewrote a
//! reowned setuid or capability file must not get it back as root's, and a journal record
//! must not be applied to a later file that reused the inode number.
mod walk_common;

use isolate::migration::MigrateMode;
use isolate::walk::sys::RealSys;
use isolate::walk::{self, Progress, Summary};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::Path;
use walk_common::*;

fn migrate(fx: &Fixture, mode: MigrateMode) -> Summary {
    walk::migrate(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap()
}

fn rollback(fx: &Fixture, mode: MigrateMode) -> Summary {
    walk::rollback(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap()
}

fn setuid_root_binary(path: &Path) {
    std::fs::copy("/bin/true", path).unwrap();
    chown(path, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o4755)).unwrap();
}

/// Every root-owned file under `root` that is setuid/setgid or has a capability, with
/// its content hash: after a rollback these must be exactly the ones there before.
fn privileged_root_files(root: &Path) -> String {
    sh(&format!(
        "cd '{}' && {{ find -P . -type f -uid 0 -perm /6000 -exec sha256sum {{}} + ; \
         getcap -r . | cut -d' ' -f1 | xargs -r sha256sum; }} | LC_ALL=C sort",
        root.display()
    ))
}

#[test]
fn rollback_never_gives_root_privileges_to_content_the_stack_changed() {
    for mode in [MigrateMode::Reown, MigrateMode::Auto] {
        let fx = fixture();
        dir_owned(&fx.data, 100_998);
        // Foreign data (from Docker): root-owned setuid and capability binaries.
        setuid_root_binary(&fx.data.join("su-untouched"));
        setuid_root_binary(&fx.data.join("su-rewritten"));
        std::fs::copy("/bin/true", fx.data.join("cap-rewritten")).unwrap();
        sh(&format!(
            "setcap cap_net_raw+ep '{}'",
            fx.data.join("cap-rewritten").display()
        ));
        let before = privileged_root_files(&fx.data);
        let outside_before = listing(&fx.outside);
        let s = migrate(&fx, mode);
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(
            owner(&fx.data.join("su-rewritten")),
            (STACK_ROOT, STACK_ROOT)
        );
        assert_eq!(mode_of(&fx.data.join("su-rewritten")), 0o4755);
        // The stack's container (its root owns the files now) rewrites them and sets the
        // bits and the capability again, as an attacker would.
        for name in ["su-rewritten", "cap-rewritten"] {
            let p = fx.data.join(name);
            std::fs::write(&p, b"#!/bin/sh\nid -u\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
        }
        sh(&format!(
            "setcap cap_net_raw+ep '{}'",
            fx.data.join("cap-rewritten").display()
        ));
        let back = rollback(&fx, mode);
        eprintln!("{mode:?}: withheld {:?}", back.privilege_withheld);
        // Owners come back; privileges only for the untouched file.
        assert_eq!(owner(&fx.data.join("su-rewritten")), (0, 0));
        assert_eq!(mode_of(&fx.data.join("su-rewritten")), 0o755);
        assert_eq!(owner(&fx.data.join("cap-rewritten")), (0, 0));
        assert_eq!(
            sh(&format!(
                "getcap '{}'",
                fx.data.join("cap-rewritten").display()
            )),
            ""
        );
        assert_eq!(owner(&fx.data.join("su-untouched")), (0, 0));
        assert_eq!(mode_of(&fx.data.join("su-untouched")), 0o4755);
        let mut withheld = back.privilege_withheld.samples.clone();
        withheld.sort();
        assert_eq!(
            withheld,
            vec![
                std::path::PathBuf::from("cap-rewritten"),
                std::path::PathBuf::from("su-rewritten")
            ]
        );
        // No root-owned privileged file with changed content exists.
        let after = privileged_root_files(&fx.data);
        for line in after.lines() {
            assert!(before.contains(line), "a new privileged root file: {line}");
        }
        assert!(back.problems().is_empty(), "{:?}", back.problems());
        assert_same(&listing(&fx.outside), &outside_before);
    }
}

#[test]
fn a_journal_record_applies_only_to_the_file_it_was_written_for() {
    let fx = fixture();
    dir_owned(&fx.data, 100_998);
    let secret = fx.data.join("secret");
    std::fs::write(&secret, b"root's").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ino = std::fs::metadata(&secret).unwrap().ino();
    let outside_before = listing(&fx.outside);
    migrate(&fx, MigrateMode::Reown);
    // The stack deletes it and creates files until one gets the same inode number (ext4
    // hands the freed number out again at once).
    std::fs::remove_file(&secret).unwrap();
    sh("sync");
    let mut reused = false;
    for i in 0..5000 {
        let candidate = fx.data.join(format!("new{i}"));
        std::fs::write(&candidate, b"the stack's").unwrap();
        chown(&candidate, Some(200_000), Some(200_000)).unwrap();
        if std::fs::metadata(&candidate).unwrap().ino() == ino {
            std::fs::rename(&candidate, &secret).unwrap();
            reused = true;
            break;
        }
    }
    assert!(
        reused,
        "the inode number was not reused: the test proves nothing"
    );
    let back = rollback(&fx, MigrateMode::Reown);
    // The new file is not the journalled one: it is only shifted back, never made root's.
    assert_eq!(owner(&secret), (100_000, 100_000));
    assert_eq!(back.journal_missing, 1, "{back:?}");
    assert_same(&listing(&fx.outside), &outside_before);
}

fn dir_owned(path: &Path, id: u32) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, Some(id), Some(id)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}
