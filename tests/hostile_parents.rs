//! Swappable parents (root-run, temp trees): whoever can write a directory above a data
//! path can rename another stack's data into its place between plan and apply. Such a
//! data path is refused, with a message naming the directory and what to do, also when
//! the directory is inside a `--root` tree or above it, and nothing changes.
mod walk_common;

use isolate::error::Error;
use isolate::migration::MigrateMode;
use isolate::walk::error::Error as WalkError;
use isolate::walk::sys::RealSys;
use isolate::walk::{self, Progress};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use walk_common::*;

fn refusal(path: &Path) -> String {
    match walk::check_data_path(&RealSys::new(), path) {
        Err(e @ WalkError::Refused(_)) => {
            let shown = e.to_string();
            assert_eq!(Error::from(e).exit_code(), 2);
            shown
        }
        other => panic!("not refused: {other:?}"),
    }
}

fn expected(path: &Path, dir: &Path, uid: u32, mode: u32) -> String {
    let d = dir.display();
    format!(
        "data path {}: the directory {d} above it is owned by uid {uid} with mode {mode:04o}; \
         whoever can write it could swap the data path for another directory while isolate \
         works. Make every directory above the data path owned by root and writable only by \
         root (`chown root: {d} && chmod go-w {d}`), or move the data below such a directory",
        path.display()
    )
}

fn dir(path: &Path, uid: u32, mode: u32) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_data_path_below_a_directory_others_can_write_is_refused() {
    let fx = fixture();
    let t = fx.tmp.path();
    // /srv owned by the legacy user (common), a sticky world-writable directory, a
    // group-writable root-owned one.
    for (name, uid, mode) in [
        ("user-srv", 1000, 0o755),
        ("sticky", 0, 0o1777),
        ("group", 0, 0o775),
    ] {
        let parent = t.join(name);
        dir(&parent, uid, mode);
        let data = parent.join("a/data");
        dir(&data, 100_998, 0o755);
        std::fs::write(data.join("f"), b"x").unwrap();
        chown(data.join("f"), Some(100_998), Some(100_998)).unwrap();
        std::fs::set_permissions(parent.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(refusal(&data), expected(&data, &parent, uid, mode));
        let before = listing(&parent);
        let err = walk::migrate(
            &RealSys::new(),
            &data,
            &spec(MigrateMode::Shift),
            &t.join("j"),
            &Progress::off(),
        )
        .unwrap_err();
        assert_eq!(Error::from(err).exit_code(), 2);
        assert_eq!(listing(&parent), before, "a refusal changed something");
        assert!(!t.join("j").exists());
        // Fixed as the message says, it is accepted.
        sh(&format!(
            "chown root: '{p}' && chmod go-w '{p}'",
            p = parent.display()
        ));
        walk::check_data_path(&RealSys::new(), &data).unwrap();
    }
}

#[test]
fn root_trees_follow_the_same_rule_inside_and_above_the_root() {
    let fx = fixture();
    let t = fx.tmp.path();
    // A --root tree inside a sticky world-writable directory (like /tmp).
    let above = t.join("tmp-like");
    dir(&above, 0, 0o1777);
    let root = above.join("root");
    dir(&root.join("srv/app"), 0, 0o755);
    let data = root.join("srv/app");
    assert_eq!(refusal(&data), expected(&data, &above, 0, 0o1777));
    // A root tree in a good place, with a directory inside it the legacy user owns.
    let root = t.join("good-root");
    dir(&root.join("srv"), 1000, 0o755);
    dir(&root.join("srv/app"), 0, 0o755);
    let data = root.join("srv/app");
    assert_eq!(
        refusal(&data),
        expected(&data, &root.join("srv"), 1000, 0o755)
    );
}

#[test]
fn a_new_data_path_is_created_for_the_stack_below_a_trusted_parent_only() {
    let fx = fixture();
    let t = fx.tmp.path();
    let sys = RealSys::new();
    dir(&t.join("srv"), 0, 0o755);
    let data = t.join("srv/new-stack");
    assert!(walk::data_path_missing(&sys, &data).unwrap());
    walk::create_data_dir(&sys, &data, 850, 850).unwrap();
    assert_eq!(owner(&data), (850, 850));
    assert_eq!(mode(&data), 0o750);
    assert!(!walk::data_path_missing(&sys, &data).unwrap());
    // Created meanwhile: not taken over as if it were new.
    let err = walk::create_data_dir(&sys, &data, 850, 850).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "data path {} exists now but did not when planned; run plan again",
            data.display()
        )
    );
    // Below a directory others can write: refused, nothing created.
    dir(&t.join("open"), 1000, 0o755);
    let data = t.join("open/new-stack");
    let err = walk::create_data_dir(&sys, &data, 850, 850).unwrap_err();
    assert_eq!(
        err.to_string(),
        expected(&data, &t.join("open"), 1000, 0o755)
    );
    assert!(walk::data_path_missing(&sys, &data).is_err());
    assert!(!data.exists());
}
