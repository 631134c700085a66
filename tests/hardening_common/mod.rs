//! Shared helpers of the hardening and crash tests: a small host under a temporary root (in a
//! root-owned directory of the tests' own, wherever the checkout is: `scratch_common`), the isolate binary run against it,
//! and a snapshot of the whole root (paths, bytes, modes, owners, link targets).
#![allow(dead_code)]
#[path = "../scratch_common/mod.rs"]
pub mod scratch_common;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Host {
    /// Holds `root/` (the host) and `policy.toml` beside it.
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

/// legacy owner alice (uid 1000, subuid 100000:65536), stack `app` with one data path.
pub const APP_POLICY: &str = r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app"]
migrate = "auto"
"#;

impl Host {
    /// root, alice (uid 1000, subuid 100000:65536), and what pwck checks exist.
    pub fn new() -> Host {
        let dir = scratch_common::tempdir("host");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let r = root.clone();
        for d in ["etc", "root", "home/alice", "bin", "usr/sbin", "srv"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        for sh in ["bin/bash", "usr/sbin/nologin"] {
            fs::write(r.join(sh), "").unwrap();
            fs::set_permissions(r.join(sh), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let h = Host { dir, root };
        h.write(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        );
        h.write(
            "etc/shadow",
            b"root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        );
        h.write("etc/group", b"root:x:0:\nalice:x:1000:\n");
        h.write("etc/gshadow", b"root:*::\nalice:!::\n");
        h.write("etc/subuid", b"alice:100000:65536\n");
        h.write("etc/subgid", b"alice:100000:65536\n");
        for f in ["etc/shadow", "etc/gshadow"] {
            fs::set_permissions(r.join(f), fs::Permissions::from_mode(0o640)).unwrap();
        }
        chown(r.join("home/alice"), Some(1000), Some(1000)).unwrap();
        h
    }

    /// A copy of `other` (root and policy), owners, modes and links kept.
    pub fn copy_of(other: &Host) -> Host {
        let dir = scratch_common::tempdir("host");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(other.root())
            .arg(other.policy_path())
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let root = dir.path().join("root");
        Host { dir, root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    /// Writes the policy outside the root, so snapshots of the root do not hold it.
    pub fn policy(&self, text: &str) -> PathBuf {
        let p = self.policy_path();
        fs::write(&p, text).unwrap();
        p
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// A data tree under `rel` in the legacy mapping: `dirs` directories of `files` files.
    pub fn legacy_data(&self, rel: &str, dirs: u32, files: u32) {
        let base = self.root().join(rel);
        fs::create_dir_all(&base).unwrap();
        chown(&base, Some(100_000), Some(100_000)).unwrap();
        for d in 0..dirs {
            let dp = base.join(format!("d{d}"));
            fs::create_dir(&dp).unwrap();
            chown(&dp, Some(100_000 + d % 7), Some(100_000)).unwrap();
            for f in 0..files {
                let fp = dp.join(format!("f{f}"));
                fs::write(&fp, format!("{d}/{f}")).unwrap();
                chown(&fp, Some(100_000 + 999 + f % 3), Some(100_000 + 999)).unwrap();
            }
        }
    }

    /// The isolate binary with `--root ROOT --policy POLICY` and `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_isolate"));
        c.arg("--root")
            .arg(self.root())
            .arg("--policy")
            .arg(self.policy_path())
            .args(args)
            .env_remove("ISOLATE_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Every entry under the root: path -> (type, mode, uid, gid, content or link target).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (String, u32, u32, u32, Vec<u8>)> {
        self.snapshot_under("")
    }

    /// [`Host::snapshot`] of the subtree `rel` of the root.
    pub fn snapshot_under(&self, rel: &str) -> BTreeMap<PathBuf, (String, u32, u32, u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        let top = self.root().join(rel);
        walk(&top, &top, &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, u32, u32, u32, Vec<u8>)>) {
    let m = fs::symlink_metadata(dir).unwrap();
    out.insert(
        dir.strip_prefix(root).unwrap().to_path_buf(),
        ("dir".into(), m.mode(), m.uid(), m.gid(), Vec::new()),
    );
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if m.is_dir() {
            walk(root, &p, out);
        } else if m.file_type().is_symlink() {
            let t = fs::read_link(&p).unwrap();
            out.insert(
                rel,
                (
                    "link".into(),
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    t.into_os_string().into_encoded_bytes(),
                ),
            );
        } else {
            out.insert(
                rel,
                (
                    "file".into(),
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    fs::read(&p).unwrap(),
                ),
            );
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics with the output unless the run exited with `code`.
pub fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// shadow's own checkers, read-only, on the root.
pub fn shadow_checks(root: &Path) -> Result<(), String> {
    for tool in ["pwck", "grpck"] {
        let out = Command::new(tool)
            .args(["-r", "-R"])
            .arg(root)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "{tool} -r -R: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
    }
    Ok(())
}
