mod scratch_common;
// apply for real against temporary root directories through shadow's --prefix, checked with
// shadow's own pwck/grpck; plus the bad-input paths: exit 2, exact text, nothing changed.
use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// A small host: root, alice (uid 1000, subuid 100000:65536), and what pwck checks exist.
    fn new() -> Host {
        let dir = scratch_common::tempdir("cli-");
        let r = dir.path();
        for d in ["etc", "root", "home/alice", "bin", "usr/sbin", "srv"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        for sh in ["bin/bash", "usr/sbin/nologin"] {
            fs::write(r.join(sh), "").unwrap();
            fs::set_permissions(r.join(sh), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        fs::write(
            r.join("etc/shadow"),
            "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
        fs::write(r.join("etc/gshadow"), "root:*::\nalice:!::\n").unwrap();
        fs::write(r.join("etc/subuid"), "alice:100000:65536\n").unwrap();
        fs::write(r.join("etc/subgid"), "alice:100000:65536\n").unwrap();
        Host { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn policy(&self, text: &str) -> PathBuf {
        let p = self.root().join("policy.toml");
        fs::write(&p, text).unwrap();
        p
    }

    fn isolate(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("isolate")
            .unwrap()
            .arg("--root")
            .arg(self.root())
            .arg("--policy")
            .arg(self.root().join("policy.toml"))
            .args(args)
            .env_remove("ISOLATE_LOG")
            .assert()
    }

    fn read(&self, f: &str) -> String {
        fs::read_to_string(self.root().join(f)).unwrap_or_default()
    }

    /// Every account file, byte for byte.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        [
            "etc/passwd",
            "etc/shadow",
            "etc/group",
            "etc/gshadow",
            "etc/subuid",
            "etc/subgid",
        ]
        .iter()
        .map(|f| (f.to_string(), fs::read(self.root().join(f)).unwrap()))
        .collect()
    }
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}
fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

const TWO_STACKS: &str = r#"legacy_owner = "alice"
[stacks.immich]
data = []
[stacks.paperless]
data = []
migrate = "reown"
uid = 850
"#;

#[test]
fn apply_creates_accounts_that_shadow_accepts_and_a_second_run_changes_nothing() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    let a = h.isolate(&["apply", "--no-systemd"]).success();
    assert!(
        stdout(&a).contains("applied 11 step(s), 0 already present, 0 failed"),
        "{}",
        stdout(&a)
    );

    assert!(h.read("etc/passwd").contains("stk-immich:x:70000:70000:isolate stack immich:/var/lib/isolate/home/stk-immich:/usr/sbin/nologin\n"));
    assert!(h.read("etc/passwd").contains("stk-paperless:x:850:850:"));
    assert_eq!(
        h.read("etc/subuid"),
        "alice:100000:65536\nstk-immich:1879048192:65536\nstk-paperless:1879113728:65536\n"
    );
    assert_eq!(h.read("etc/subgid"), h.read("etc/subuid"));
    assert!(h.read("etc/group").contains("stk-shared:x:"));
    assert!(h
        .read("etc/group")
        .lines()
        .any(|l| l.starts_with("stk-shared:") && l.ends_with(":stk-immich,stk-paperless")));
    let home = h.root().join("var/lib/isolate/home/stk-immich");
    let meta = fs::metadata(&home).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 70_000);

    // shadow's own checkers accept the result.
    for (tool, args) in [("pwck", vec!["-r", "-R"]), ("grpck", vec!["-r", "-R"])] {
        let out = std::process::Command::new(tool)
            .args(&args)
            .arg(h.root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let state: serde_json::Value =
        serde_json::from_str(&h.read("var/lib/isolate/state.json")).unwrap();
    assert_eq!(
        state["stacks"]["immich"]["allocation"]["subids"]["start"],
        1879048192
    );

    let before = h.snapshot();
    let again = h.isolate(&["apply", "--no-systemd"]).success();
    assert_eq!(
        stdout(&again),
        "nothing to do: the host matches the policy\n"
    );
    assert_eq!(h.snapshot(), before);
    let plan = h.isolate(&["plan", "--no-systemd", "--json"]).success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    assert_eq!(v["steps"], serde_json::json!([]));
}

#[test]
fn stack_selection_touches_only_the_named_stack() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    h.isolate(&["apply", "--no-systemd", "--stack", "paperless"])
        .success();
    assert!(h.read("etc/passwd").contains("stk-paperless:"));
    assert!(!h.read("etc/passwd").contains("stk-immich"));
    assert!(!h.read("etc/subuid").contains("stk-immich"));
    // paperless is pinned elsewhere, so immich later still gets the first free range.
    h.isolate(&["apply", "--no-systemd", "--stack", "immich"])
        .success();
    assert!(h.read("etc/subuid").contains("stk-immich:1879113728:65536"));
}

#[test]
fn a_broken_policy_exits_2_with_every_problem_and_changes_nothing() {
    let h = Host::new();
    h.policy("legacy_owner = \"alice\"\n[stacks.immich]\ndata = [\"srv/immich\"]\nsize = 3\n[stacks.Bad]\ndata = []\n");
    let before = h.snapshot();
    let a = h.isolate(&["apply", "--no-systemd"]).code(2);
    let p = h.root().join("policy.toml").display().to_string();
    assert_eq!(
        stderr(&a),
        format!(
            "isolate: {p}:3:9: \"srv/immich\" is a relative path; data and share paths must be absolute\n\
             isolate: {p}:4:1: unknown key `size` in [stacks.immich]; expected one of: data, migrate, uid, subid_start, outside_hardlinks, closed, compose, project, env_files, images, service, compose_command, reaches, limits\n\
             isolate: {p}:5:9: stack name `Bad` gives user name \"stk-Bad\", which is not a valid user name (lower-case letters, digits, `_`, `-`; 32 bytes at most)\n"
        )
    );
    assert_eq!(h.snapshot(), before);
    assert!(!h.root().join("var/lib/isolate").exists());
}

#[test]
fn overlapping_host_ranges_are_refused_by_line() {
    let h = Host::new();
    fs::write(
        h.root().join("etc/subuid"),
        "alice:100000:65536\nalice:100000:65536\n",
    )
    .unwrap();
    h.policy(TWO_STACKS);
    let before = h.snapshot();
    let a = h.isolate(&["plan", "--no-systemd"]).code(2);
    let f = h.root().join("etc/subuid").display().to_string();
    assert_eq!(
        stderr(&a),
        format!("isolate: {f}:1 (alice:100000-165535) and line 2 (alice:100000-165535) overlap: newuidmap refuses a user whose ranges overlap (EINVAL), and a new range cannot be proven free; remove or fix one of them\n")
    );
    h.isolate(&["apply", "--no-systemd"]).code(2);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_subuid_comment_is_bad_input() {
    let h = Host::new();
    fs::write(
        h.root().join("etc/subuid"),
        "# ranges\nalice:100000:65536\n",
    )
    .unwrap();
    h.policy(TWO_STACKS);
    let a = h.isolate(&["plan", "--no-systemd"]).code(2);
    assert!(
        stderr(&a).contains("subuid:1: comments are not allowed"),
        "{}",
        stderr(&a)
    );
}

#[test]
fn an_unknown_stack_and_a_missing_policy_are_bad_input() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    let a = h
        .isolate(&["plan", "--no-systemd", "--stack", "nope"])
        .code(2);
    assert!(
        stderr(&a).contains("--stack nope: the policy"),
        "{}",
        stderr(&a)
    );
    let b = Command::cargo_bin("isolate")
        .unwrap()
        .args([
            "--root",
            "/nonexistent",
            "--policy",
            "/nonexistent/p.toml",
            "plan",
        ])
        .assert()
        .code(2);
    assert_eq!(
        stderr(&b),
        "isolate: cannot read policy /nonexistent/p.toml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_concurrent_apply_is_locked_out() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    let _held = isolate::state::RunLock::acquire(&isolate::layout::Root::new(h.root())).unwrap();
    let a = h.isolate(&["apply", "--no-systemd"]).code(2);
    assert_eq!(
        stderr(&a),
        format!(
            "isolate: another isolate run holds the lock on {}\n",
            h.root().display()
        )
    );
    assert!(!h.read("etc/passwd").contains("stk-"));
}

#[test]
fn map_translates_both_ways() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    h.isolate(&["apply", "--no-systemd"]).success();
    assert_eq!(
        stdout(&h.isolate(&["map", "immich", "999"]).success()),
        "host uid 1879049190 gid 1879049190\n"
    );
    assert_eq!(
        stdout(&h.isolate(&["map", "immich", "0"]).success()),
        "host uid 70000 gid 70000\n"
    );
    assert_eq!(
        stdout(&h.isolate(&["map", "--host", "1879049190"]).success()),
        "stack immich: container uid 999 gid 999\n"
    );
    assert_eq!(
        stdout(&h.isolate(&["map", "--host", "100000"]).success()),
        "legacy owner alice: container uid 1 gid 1\n"
    );
    assert_eq!(
        stdout(&h.isolate(&["map", "--host", "5"]).success()),
        "host id 5 belongs to no stack's mapping\n"
    );
    let e = h.isolate(&["map", "immich", "65537"]).code(2);
    assert_eq!(
        stderr(&e),
        "isolate: container id 65537 does not exist in stack `immich` (ids 0 to 65536)\n"
    );
}

#[test]
fn removing_a_stack_from_the_policy_keeps_everything_and_says_so() {
    let h = Host::new();
    h.policy(TWO_STACKS);
    h.isolate(&["apply", "--no-systemd"]).success();
    h.policy(
        "legacy_owner = \"alice\"\n[stacks.immich]\ndata = []\n[stacks.jellyfin]\ndata = []\n",
    );
    let a = h.isolate(&["plan", "--no-systemd"]).success();
    let out = stdout(&a);
    assert!(out.contains("? stack `paperless` is no longer in the policy; kept: user stk-paperless (uid 850), subordinate ids 1879113728-1879179263."), "{out}");
    // The orphan's range is never handed out again: jellyfin gets the next free one.
    assert!(
        out.contains("+ subuid+subgid stk-jellyfin:1879179264:65536"),
        "{out}"
    );
}
