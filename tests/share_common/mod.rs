//! Shared helpers of the share and closed-data tests (isolation_share, isolation_close,
//! isolation_share_kills): the stacks' mappings, a share tree of every kind of inode, and
//! `getfacl`/`stat` listings.
#![allow(dead_code, unused_imports)]
#[path = "../scratch_common/mod.rs"]
pub mod scratch_common;
pub use isolate::error::Error;
pub use isolate::ids::{IdMaps, Mapping, SubidRange};
pub use isolate::isolation::apply::{self, Done};
pub use isolate::isolation::fs::{AclProbe, RealAclProbe};
pub use isolate::isolation::grants::{Access, HostGrant};
pub use isolate::isolation::record::Record;
pub use isolate::isolation::steps::{CloseData, ShareStep};
pub use isolate::layout::Root;
pub use isolate::policy::ShareMode;
pub use isolate::walk::sys::{RealSys, RecordingSys};
pub use rustix::fd::BorrowedFd;
pub use rustix::io::Errno;
pub use std::os::unix::fs::{chown, PermissionsExt};
pub use std::path::{Path, PathBuf};
pub use std::process::Command;

pub const A: u32 = 800;
pub const A_START: u32 = 200_000;
pub const B: u32 = 801;
pub const B_START: u32 = 265_536;
/// Container uid 1000 of b.
pub const B_1000: u32 = B_START + 999;
pub const C: u32 = 802;

pub fn maps(root: u32, start: u32) -> IdMaps {
    let m = Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()]);
    IdMaps {
        uid: m.clone(),
        gid: m,
    }
}

pub fn all_maps() -> Vec<IdMaps> {
    vec![
        maps(A, A_START),
        maps(B, B_START),
        maps(C, B_START + 65_536),
    ]
}

pub fn sh(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Owners, modes and ACLs of everything under `dir`, as `stat` and `getfacl -R -n -P` print.
pub fn listing(dir: &Path) -> String {
    sh(&format!(
        "cd '{}' && find -P . | LC_ALL=C sort | xargs -d '\\n' stat -c '%n %u %g %a %h' && getfacl -R -n -P . 2>/dev/null",
        dir.display()
    ))
}

pub fn getfacl(path: &Path) -> String {
    sh(&format!("getfacl -n -P '{}' 2>/dev/null", path.display()))
}

/// A temporary root (for the record) holding srv/s, a share tree of every kind of inode.
pub struct Share {
    pub root: tempfile::TempDir,
}

/// A share tree of every kind of inode at `s`: files, an executable, a setgid directory,
/// a symlink out, a host user's and a host group's entries and a default ACL.
pub fn fill_tree(s: &Path) {
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
    pub fn new() -> Share {
        let root = scratch_common::tempdir("share-");
        fill_tree(&root.path().join("srv/s"));
        Share { root }
    }

    /// The same tree on a tmpfs mounted at ROOT/srv (call it in a private mount namespace).
    pub fn on_tmpfs() -> Share {
        Share::on_tmpfs_with("mode=0755")
    }

    /// On a tmpfs mounted with `options` (in the test's private mount namespace).
    pub fn on_tmpfs_with(options: &str) -> Share {
        let root = scratch_common::tempdir("share-tmpfs-");
        let srv = root.path().join("srv");
        std::fs::create_dir_all(&srv).unwrap();
        sh(&format!(
            "mount -t tmpfs -o {options} isolate-test '{}'",
            srv.display()
        ));
        assert_eq!(sh(&format!("stat -f -c %T '{}'", srv.display())), "tmpfs\n");
        fill_tree(&srv.join("s"));
        Share { root }
    }

    pub fn path(&self) -> PathBuf {
        self.root.path().join("srv/s")
    }

    pub fn step(&self, grants: &[(u32, u32, Access)]) -> ShareStep {
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

    pub fn apply(&self, grants: &[(u32, u32, Access)]) -> Done {
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

    pub fn pending(&self, grants: &[(u32, u32, Access)]) -> (u64, u64) {
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

    pub fn rollback(&self) -> Done {
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

pub const GRANTS: &[(u32, u32, Access)] = &[(0, A, Access::Write), (1000, B_1000, Access::Read)];

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// Runs this binary's test `name` again inside a private mount namespace (for a tmpfs that
/// goes away with it).
pub fn in_private_mount_ns(name: &str) {
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

pub fn in_mount_ns() -> bool {
    std::env::var_os("SHARE_IN_MOUNT_NS").is_some()
}

/// The rights `who` ("user:34", "group:4243", "group:", "default:user:34") really has in a
/// `getfacl` listing: the entry's, or the `#effective` the mask leaves of it.
pub fn effective(listing: &str, who: &str) -> String {
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
pub fn moved_step(s: &Share, grants: &[(u32, u32, Access)]) -> ShareStep {
    ShareStep {
        path: PathBuf::from("/srv/t"),
        ..s.step(grants)
    }
}

/// A backup user (34) and a host group (4243) with named entries wider than the mask lets
/// them use, on the top, a directory's access and default ACLs and a file; the owning group
/// wider than the mask on another file.
pub fn narrow_masks(s: &Path) {
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
