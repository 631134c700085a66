//! Root-run: the legacy user's socket and store must not choose what root moves (issue 17,
//! items 12 and 16): a socket naming another stack's data or a root-only directory as a
//! volume, and links, mounts, foreign inodes or swaps in alice's own store, are refused with
//! exit 2 and nothing under the root changes; a volume where podman keeps it moves.
mod handoff_volumes_common;
use handoff_volumes_common::*;

#[test]
fn a_socket_naming_another_stacks_data_as_a_volume_moves_nothing() {
    // Stack `other`'s data, already migrated to its user (uid 851, 300000:65536).
    socket_names_with("/srv/other/data", |r: &Path| {
        sh(&format!(
            "cd '{}' && mkdir -p srv/other/data/db && echo row > srv/other/data/db/table \
             && chown -R 300999:300999 srv/other/data && chown 851:851 srv/other/data \
             && chmod 0750 srv/other/data",
            r.display()
        ));
    });
}

#[test]
fn a_socket_naming_a_root_only_directory_as_a_volume_moves_nothing() {
    socket_names_with("/root/secret", |r: &Path| {
        sh(&format!(
            "cd '{}' && mkdir -p root/secret && echo key > root/secret/key \
             && chmod 0700 root/secret && chmod 0600 root/secret/key",
            r.display()
        ));
    });
}

/// What the socket names is refused with exit 2 and nothing anywhere under the root changes.
fn socket_names_with(victim: &str, make: impl Fn(&Path)) {
    let fx = socket_host();
    let r = fx.tmp.path();
    make(r);
    fake_podman(
        &r.join("run/user/1000/podman/podman.sock"),
        Path::new(victim),
    );
    let before = snapshot(r);
    let result = plan_and_apply(r);
    assert_same(&snapshot(r), &before);
    let e = result.expect_err("the plan took a volume the socket placed elsewhere");
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = e.to_string();
    println!("refused: {text}");
    assert!(text.contains("app_db") && text.contains(victim), "{text}");
}

// ---------------------------------------------------------------------------------------
// What stands in alice's own store is refused, never followed (issue 17, item 16 and the rule).

/// alice's volume store, relative to the root.
const V: &str = "home/alice/.local/share/containers/storage/volumes";

/// alice's store holds volume app_db as the shell `make` leaves it (run in the root, `$V` her
/// volume store); her socket reports it exactly where podman keeps it. The plan refuses with
/// exit 2 naming the volume and `why`, and nothing under the root changes.
fn store_refused(make: &str, why: &str) {
    let fx = socket_host();
    let r = fx.tmp.path();
    sh(&format!("cd '{}' && V={V} && {make}", r.display()));
    fake_podman(&r.join("run/user/1000/podman/podman.sock"), Path::new(FROM));
    let before = snapshot(r);
    let result = plan_and_apply(r);
    assert_same(&snapshot(r), &before);
    let e = result.expect_err("the plan took a volume isolate must not move");
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = e.to_string();
    println!("refused: {text}");
    assert!(text.contains("app_db") && text.contains(why), "{text}");
}

#[test]
fn a_volume_whose_data_is_a_symlink_is_refused_not_left_behind_in_silence() {
    store_refused(
        "mkdir -p srv/elsewhere $V/app_db && echo row > srv/elsewhere/table \
         && chown -R 100998:100998 srv/elsewhere && ln -s /srv/elsewhere $V/app_db/_data \
         && chown -h 1000:1000 $V/app_db $V/app_db/_data",
        "_data is a symbolic link",
    );
}

#[test]
fn a_volume_directory_that_is_a_symlink_is_refused() {
    store_refused(
        "mkdir -p srv/vol/_data && echo row > srv/vol/_data/table \
         && chown -R 100998:100998 srv/vol && ln -s /srv/vol $V/app_db \
         && chown -h 1000:1000 $V/app_db",
        "symbolic link",
    );
}

#[test]
fn a_volume_directory_of_someone_else_is_refused() {
    store_refused(
        "mkdir -p $V/app_db/_data && echo row > $V/app_db/_data/table \
         && chown 1000:1000 $V/app_db && chown -R 851:851 $V/app_db/_data",
        "belongs to 851:851",
    );
}

#[test]
fn a_volume_holding_someone_elses_file_is_refused() {
    // bob's file, moved in from a directory alice can write (same filesystem, one link).
    store_refused(
        "mkdir -p $V/app_db/_data && echo bob > $V/app_db/_data/bobs && chown 1001:1001 $V/app_db/_data/bobs \
         && chown 1000:1000 $V/app_db && chown 100998:100998 $V/app_db/_data",
        "owned by ids that are not the store user's",
    );
}

#[test]
fn a_volume_with_a_file_linked_outside_it_is_refused() {
    store_refused(
        "mkdir -p $V/app_db/_data && echo secret > srv/rootfile && chmod 0600 srv/rootfile \
         && ln srv/rootfile $V/app_db/_data/f && chown 1000:1000 $V/app_db \
         && chown 100998:100998 $V/app_db/_data",
        "hardlinks outside it",
    );
}

#[test]
fn a_volume_data_directory_that_is_a_mount_point_is_refused() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns("a_volume_data_directory_that_is_a_mount_point_is_refused");
    }
    store_refused(
        "mkdir -p $V/app_db/_data srv/m && echo row > srv/m/table \
         && chown 1000:1000 $V/app_db && chown -R 100998:100998 $V/app_db/_data srv/m \
         && mount --bind srv/m $V/app_db/_data",
        "is a mount point",
    );
}

#[test]
fn a_volume_holding_a_mount_point_is_refused() {
    if std::env::var_os("HANDOFF_IN_MOUNT_NS").is_none() {
        return in_private_mount_ns("a_volume_holding_a_mount_point_is_refused");
    }
    store_refused(
        "mkdir -p $V/app_db/_data/sub srv/m && echo row > srv/m/table \
         && chown 1000:1000 $V/app_db && chown -R 100998:100998 $V/app_db/_data srv/m \
         && mount --bind srv/m $V/app_db/_data/sub",
        "holds mount point(s)",
    );
}

#[test]
fn a_volume_where_podman_keeps_it_is_moved_through_the_plan() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    plan_and_apply(r).unwrap();
    assert!(!r.join(FROM.trim_start_matches('/')).exists());
    assert_eq!(owner(&to_dir(r).join("table")), (200_998, 200_998));
}

/// alice's volume app_db as podman makes it, holding one row; her socket reports it where
/// podman keeps it. Returns the fixture and a snapshot of the whole root.
fn plain_volume() -> (Fixture, String) {
    let fx = socket_host();
    let r = fx.tmp.path();
    sh(&format!(
        "cd '{}' && mkdir -p {V}/app_db/_data && echo row > {V}/app_db/_data/table \
         && chown 1000:1000 {V}/app_db && chown -R 100998:100998 {V}/app_db/_data",
        r.display()
    ));
    fake_podman(&r.join("run/user/1000/podman/podman.sock"), Path::new(FROM));
    let before = snapshot(r);
    (fx, before)
}

#[test]
fn someone_elses_file_moved_in_after_the_plan_is_refused_by_apply() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    let e = plan_then_apply(r, || {
        sh(&format!(
            "cd '{}' && echo bob > {V}/app_db/_data/bobs && chown 1001:1001 {V}/app_db/_data/bobs",
            r.display()
        ));
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("bobs"), "{e}");
    // Nothing moved: the volume with bob's file is where it was, and no record was left.
    assert_eq!(
        owner(&r.join(FROM.trim_start_matches('/')).join("bobs")),
        (1001, 1001)
    );
    assert!(State::read(&Root::new(r)).unwrap().handoff.is_empty());
}

#[test]
fn a_data_directory_swapped_after_the_plan_is_refused_by_apply() {
    let (fx, _) = plain_volume();
    let r = fx.tmp.path();
    let e = plan_then_apply(r, || {
        sh(&format!(
            "cd '{}' && mv {V}/app_db/_data {V}/app_db/old && mkdir {V}/app_db/_data \
             && chown 100998:100998 {V}/app_db/_data",
            r.display()
        ));
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(
        e.to_string()
            .contains("is no longer the directory the plan saw"),
        "{e}"
    );
    assert!(r.join(V).join("app_db/old/table").exists());
    assert!(State::read(&Root::new(r)).unwrap().handoff.is_empty());
}
