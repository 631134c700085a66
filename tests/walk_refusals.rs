//! What the migration refuses before changing anything (exit 2): missing paths, files,
//! network and FUSE filesystems (faked statfs), overlapping mappings.
mod walk_common;

use isolate::error::Error;
use isolate::ids::{Mapping, SubidRange};
use isolate::migration::MigrateMode;
use isolate::walk::error::Error as WalkError;
use isolate::walk::sys::{RealSys, RecordingSys};
use isolate::walk::{self, Progress};
use walk_common::*;

fn refused(result: Result<walk::Summary, WalkError>) -> String {
    match result {
        Err(e @ WalkError::Refused(_)) => {
            let shown = e.to_string();
            assert_eq!(Error::from(e).exit_code(), 2);
            shown
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn missing_and_non_directory_paths_are_refused() {
    let fx = fixture();
    standard_tree(&fx);
    let journal = fx.tmp.path().join("j");
    let missing = fx.tmp.path().join("nope");
    let msg = refused(walk::migrate(
        &RealSys::new(),
        &missing,
        &spec(MigrateMode::Shift),
        &journal,
        &Progress::off(),
    ));
    assert_eq!(
        msg,
        format!("data path {} does not exist", missing.display())
    );
    let file = fx.tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let msg = refused(walk::migrate(
        &RealSys::new(),
        &file,
        &spec(MigrateMode::Shift),
        &journal,
        &Progress::off(),
    ));
    assert_eq!(
        msg,
        format!(
            "data path {} is not a directory (or a symbolic link stands in it)",
            file.display()
        )
    );
    // A symbolic link is never followed: not as the data path, not on the way to it.
    let link = fx.tmp.path().join("link");
    std::os::unix::fs::symlink(&fx.data, &link).unwrap();
    for through in [link.clone(), link.join("sub")] {
        let msg = refused(walk::migrate(
            &RealSys::new(),
            &through,
            &spec(MigrateMode::Shift),
            &journal,
            &Progress::off(),
        ));
        assert_eq!(
            msg,
            format!(
                "data path {} goes through a symbolic link; isolate never follows one: \
                 name the real directory in the policy",
                through.display()
            )
        );
    }
    let err = walk::check_data_path(&RealSys::new(), std::path::Path::new("relative")).unwrap_err();
    assert_eq!(err.to_string(), "data path relative is not absolute");
    assert!(!journal.exists(), "a refused run writes no journal");
    walk::check_data_path(&RealSys::new(), &fx.data).unwrap();
}

#[test]
fn network_and_fuse_filesystems_are_refused_with_what_to_do() {
    let fx = fixture();
    standard_tree(&fx);
    let before = listing(&fx.data);
    for (magic, name) in [
        (0x6969, "NFS"),
        (0xff53_4d42, "CIFS/SMB"),
        (0xfe53_4d42, "CIFS/SMB"),
        (0x0102_1997, "9p"),
        (0x6573_5546, "FUSE (or virtiofs)"),
    ] {
        let sys = RecordingSys::new().with_fs_type(magic);
        let msg = refused(walk::migrate(
            &sys,
            &fx.data,
            &spec(MigrateMode::Auto),
            &fx.tmp.path().join("j"),
            &Progress::off(),
        ));
        assert_eq!(
            msg,
            format!(
                "data path {} is on {name}: chown there fails with EPERM or is not kept \
                 (the server owns the ids); run the migration on the file server itself \
                 (shift or reown the export there), or move the data to a local filesystem first",
                fx.data.display()
            )
        );
        assert!(sys.calls().is_empty());
        let survey = walk::survey(&sys, &fx.data, &spec(MigrateMode::Auto)).unwrap_err();
        assert!(matches!(survey, WalkError::Refused(_)));
    }
    assert_eq!(listing(&fx.data), before);
}

#[test]
fn overlapping_mappings_are_refused() {
    let fx = fixture();
    standard_tree(&fx);
    let before = listing(&fx.data);
    let mut overlapping = spec(MigrateMode::Shift);
    overlapping.shift.to.uid = Mapping::new(850, vec![SubidRange::new(150_000, 65_536).unwrap()]);
    let msg = refused(walk::migrate(
        &RealSys::new(),
        &fx.data,
        &overlapping,
        &fx.tmp.path().join("j"),
        &Progress::off(),
    ));
    assert_eq!(
        msg,
        "the legacy uid mapping (1000 + 100000-165535) overlaps the stack's uid mapping \
         (850 + 150000-215535): shifting between them would not be reversible; give the stack \
         a subordinate range that does not overlap the legacy owner's"
    );
    let mut same_root = spec(MigrateMode::Reown);
    same_root.shift.to.gid.root = 1000;
    let msg = refused(walk::rollback(
        &RealSys::new(),
        &fx.data,
        &same_root,
        &fx.tmp.path().join("j"),
        &Progress::off(),
    ));
    assert!(msg.starts_with("the legacy gid mapping (1000 + 100000-165535) overlaps the stack's gid mapping (1000 + 200000-265535)"), "{msg}");
    assert_eq!(listing(&fx.data), before);
}
