//! Root-run tests of closed data on temporary trees: closing shuts "other" out and lets the
//! stack's owners in, reopening is exact, group-only mode checks the top, and a parent the
//! stack cannot traverse is reported and left alone.
mod share_common;
use share_common::*;

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
