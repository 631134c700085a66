//! Every exit-2 refusal of apply and rollback leaves the whole root as it was: paths, bytes,
//! modes and owners, the state file and the lock included; and a run inside a user
//! namespace (root there owns nothing on the host) is refused before it touches anything.
mod hardening_common;
use hardening_common::{expect_code, text, Host, APP_POLICY};
use std::process::Command;

/// Runs `args` against a host prepared by `prepare`, and asserts exit 2, the exact stderr
/// and a byte-identical root.
fn refused(prepare: impl FnOnce(&Host), cmd: impl FnOnce(&Host) -> Command, stderr: &str) {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 3, 3);
    prepare(&h);
    let before = h.snapshot();
    let out = cmd(&h).output().unwrap();
    expect_code(&out, 2);
    assert_eq!(
        text(&out.stderr),
        stderr
            .replace("ROOT", &h.root().display().to_string())
            .replace("POLICY", &h.policy_path().display().to_string())
    );
    let after = h.snapshot();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "paths changed"
    );
    assert_eq!(before, after, "contents, modes or owners changed");
}

fn isolate(args: &'static [&'static str]) -> impl FnOnce(&Host) -> Command {
    move |h| h.command(args)
}

#[test]
fn apply_under_unshare_r_is_refused_and_creates_nothing() {
    for args in [
        &["apply", "--no-systemd"][..],
        &["rollback", "--stack", "app"],
    ] {
        refused(
            |_| {},
            |h| {
                let mut c = Command::new("unshare");
                c.arg("-r")
                    .arg(env!("CARGO_BIN_EXE_isolate"))
                    .arg("--root")
                    .arg(h.root())
                    .arg("--policy")
                    .arg(h.policy_path())
                    .args(args);
                c
            },
            "isolate: missing privilege: this process runs in a user namespace \
             (/proc/self/uid_map is `0 0 1`, not `0 0 4294967295`): its root owns nothing on \
             the host, so nothing real would change; run isolate as root outside any user \
             namespace\n",
        );
    }
}

#[test]
fn a_broken_policy_changes_nothing() {
    for cmd in [
        &["apply", "--no-systemd"][..],
        &["rollback", "--stack", "app"],
        &["map", "app", "1"],
    ] {
        refused(
            |h| {
                h.policy("legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"srv/app\"]\n");
            },
            |h| h.command(cmd),
            "isolate: POLICY:3:9: \"srv/app\" is a relative path; data and share paths must be absolute\n",
        );
    }
}

#[test]
fn an_unknown_stack_changes_nothing() {
    refused(
        |_| {},
        isolate(&["apply", "--no-systemd", "--stack", "nope"]),
        "isolate: --stack nope: the policy POLICY defines no such stack\n",
    );
}

#[test]
fn overlapping_subuid_lines_change_nothing() {
    refused(
        |h| h.write("etc/subuid", b"alice:100000:65536\nalice:100000:65536\n"),
        isolate(&["apply", "--no-systemd"]),
        "isolate: ROOT/etc/subuid:1 (alice:100000-165535) and line 2 (alice:100000-165535) \
         overlap: newuidmap refuses a user whose ranges overlap (EINVAL), and a new range \
         cannot be proven free; remove or fix one of them\n",
    );
}

#[test]
fn missing_capabilities_change_nothing() {
    for args in [
        &["apply", "--no-systemd"][..],
        &["rollback", "--stack", "app"],
    ] {
        refused(
            |_| {},
            |h| {
                let mut c = Command::new("setpriv");
                c.args(["--bounding-set=-chown,-setfcap", "--inh-caps=-all"])
                    .arg(env!("CARGO_BIN_EXE_isolate"))
                    .arg("--root")
                    .arg(h.root())
                    .arg("--policy")
                    .arg(h.policy_path())
                    .args(args);
                c
            },
            "isolate: missing privilege: this process lacks CAP_CHOWN, CAP_SETFCAP; run it as \
             root, e.g. `sudo isolate apply`\n",
        );
    }
}

#[test]
fn a_held_lock_changes_nothing() {
    for args in [
        &["apply", "--no-systemd"][..],
        &["rollback", "--stack", "app"],
    ] {
        let h = Host::new();
        h.policy(APP_POLICY);
        h.legacy_data("srv/app", 2, 2);
        let _held =
            isolate::state::RunLock::acquire(&isolate::layout::Root::new(h.root())).unwrap();
        let before = h.snapshot();
        let out = h.run(args);
        expect_code(&out, 2);
        assert_eq!(
            text(&out.stderr),
            format!(
                "isolate: another isolate run holds the lock on {}\n",
                h.root().display()
            )
        );
        assert_eq!(h.snapshot(), before);
    }
}

#[test]
fn a_refused_rollback_changes_neither_the_state_nor_anything_else() {
    refused(
        |h| {
            expect_code(&h.run(&["apply", "--no-systemd"]), 0);
            // The data path goes away: rollback must refuse, recording nothing.
            std::fs::rename(h.root().join("srv/app"), h.root().join("srv/app.moved")).unwrap();
        },
        isolate(&["rollback", "--stack", "app"]),
        "isolate: data path ROOT/srv/app does not exist\n",
    );
}

#[test]
fn rollback_of_an_unknown_stack_changes_nothing() {
    refused(
        |_| {},
        isolate(&["rollback", "--stack", "nope"]),
        "isolate: stack `nope` has nothing recorded in ROOT/var/lib/isolate/state.json\n",
    );
}
