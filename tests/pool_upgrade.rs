//! A host set up while the default subordinate pool started at 200000 keeps its ranges after
//! the default moved to 0x70000000: recorded allocations never move, only new stacks come
//! from the new pool, and plan warns that the old range lies where shadow's useradd hands
//! out ranges. Real apply into a temporary root through shadow's --prefix.
mod scratch_common;
use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn root() -> tempfile::TempDir {
    let dir = scratch_common::tempdir("pool-");
    let r = dir.path();
    for d in ["etc", "root", "home/alice", "bin", "usr/sbin"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    for sh in ["bin/bash", "usr/sbin/nologin"] {
        fs::write(r.join(sh), "").unwrap();
        fs::set_permissions(r.join(sh), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        ),
        (
            "etc/shadow",
            "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        ),
        ("etc/group", "root:x:0:\nalice:x:1000:\n"),
        ("etc/gshadow", "root:*::\nalice:!::\n"),
        ("etc/subuid", "alice:100000:65536\n"),
        ("etc/subgid", "alice:100000:65536\n"),
        (
            "etc/login.defs",
            "UID_MIN 1000\nSUB_UID_MIN 100000\nSUB_UID_MAX 600100000\nSUB_UID_COUNT 65536\n",
        ),
    ];
    for (f, text) in files {
        fs::write(r.join(f), text).unwrap();
    }
    dir
}

fn isolate(r: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(r.join("policy.toml"))
        .args(args)
        .env_remove("ISOLATE_LOG")
        .assert()
}

#[test]
fn ranges_from_the_old_default_pool_stay_and_new_stacks_use_the_new_one() {
    let h = root();
    let r = h.path();
    // What the previous version did with its default pool (subid_first = 200000).
    fs::write(
        r.join("policy.toml"),
        "legacy_owner = \"alice\"\n[pools]\nsubid_first = 200000\n[stacks.immich]\ndata = []\n",
    )
    .unwrap();
    isolate(r, &["apply", "--no-systemd"]).success();
    let state_before = fs::read_to_string(r.join("var/lib/isolate/state.json")).unwrap();
    assert!(state_before.contains("\"start\": 200000"), "{state_before}");

    // The same host with today's defaults and one more stack.
    fs::write(
        r.join("policy.toml"),
        "legacy_owner = \"alice\"\n[stacks.immich]\ndata = []\n[stacks.paperless]\ndata = []\n",
    )
    .unwrap();
    let p = isolate(r, &["plan", "--no-systemd"]).success();
    let out = String::from_utf8_lossy(&p.get_output().stdout).into_owned();
    assert!(
        out.contains("= subordinate ids stk-immich:200000:65536\n"),
        "{out}"
    );
    assert!(out.contains("! stack `immich`: subordinate ids 200000-265535 lie where shadow's useradd (SUB_UID_MIN..SUB_UID_MAX 100000-600100000, in /etc/login.defs) hands out ranges on its own; it may give them to a user whose line isolate does not see yet. This range is recorded and never moves"), "{out}");
    assert!(
        out.contains("+ subuid+subgid stk-paperless:1879048192:65536\n"),
        "{out}"
    );
    assert!(!out.contains("stack `paperless`: subordinate ids"), "{out}");

    isolate(r, &["apply", "--no-systemd"]).success();
    assert_eq!(
        fs::read_to_string(r.join("etc/subuid")).unwrap(),
        "alice:100000:65536\nstk-immich:200000:65536\nstk-paperless:1879048192:65536\n"
    );
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(r.join("var/lib/isolate/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["stacks"]["immich"]["allocation"]["subids"]["start"],
        200000
    );
    assert_eq!(
        state["stacks"]["paperless"]["allocation"]["subids"]["start"],
        1879048192u32
    );
}
