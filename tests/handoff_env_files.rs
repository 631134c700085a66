//! Root-run: `apply` hands a stack's env files to the stack user (0400), a secret other stacks
//! can read is a plan warning before and gone after, bad env files are refused with nothing
//! changed, and `rollback` gives back the exact owner and mode.
mod scratch_common;
use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn host() -> tempfile::TempDir {
    let dir = scratch_common::tempdir("env-");
    let r = dir.path();
    for d in [
        "etc",
        "root",
        "home/alice",
        "bin",
        "usr/sbin",
        "srv/app",
        "srv/other",
    ] {
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
    ];
    for (f, text) in files {
        fs::write(r.join(f), text).unwrap();
    }
    dir
}

fn isolate(root: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(root.join("policy.toml"))
        .args(args)
        .env_remove("ISOLATE_LOG")
        .assert()
}

fn out(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}
fn err(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// uid:gid mode of a file (no link followed).
fn owner(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    format!("{}:{} {:04o}", m.uid(), m.gid(), m.mode() & 0o7777)
}

const POLICY: &str = r#"legacy_owner = "alice"
[stacks.app]
data = []
uid = 850
env_files = ["/srv/app/.env", "/srv/app/db.env"]
[stacks.other]
data = []
"#;

fn write_env(root: &Path, name: &str, uid: u32, gid: u32, mode: u32) {
    let p = root.join("srv/app").join(name);
    fs::write(&p, "SECRET=hunter2\n").unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn env_files_become_the_stack_users_alone_and_rollback_restores_them_exactly() {
    let h = host();
    let r = h.path();
    fs::write(r.join("policy.toml"), POLICY).unwrap();
    // A world-readable secret and a group-only one.
    write_env(r, ".env", 1000, 1000, 0o644);
    write_env(r, "db.env", 1000, 1000, 0o640);
    // Accounts first, so the other stack's user exists when the env files are planned.
    isolate(r, &["apply", "--no-systemd", "--stack", "other"]).success();

    let plan = isolate(r, &["plan", "--no-systemd", "--stack", "app"]).success();
    let plan = out(&plan);
    assert!(
        plan.contains("! env file /srv/app/.env of stack `app` is readable by other stacks' users today: stk-other (owner 1000:1000, mode 0644); apply makes it stk-app's alone"),
        "{plan}"
    );
    assert!(
        !plan.contains("/srv/app/db.env of stack `app` is readable"),
        "{plan}"
    );
    assert!(
        plan.contains("~ env file /srv/app/db.env of app: owner stk-app (850:850), mode 0400 (was 1000:1000 mode 0640)"),
        "{plan}"
    );

    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).success();
    assert!(out(&a).contains("0 failed"), "{}{}", out(&a), err(&a));
    assert_eq!(owner(&r.join("srv/app/.env")), "850:850 0400");
    assert_eq!(owner(&r.join("srv/app/db.env")), "850:850 0400");
    let state = fs::read_to_string(r.join("var/lib/isolate/state.json")).unwrap();
    assert!(state.contains("\"handoff\""), "{state}");

    // After: no warning, nothing to do.
    let again = isolate(r, &["plan", "--no-systemd", "--stack", "app"]).success();
    let again = out(&again);
    assert!(!again.contains("readable by other stacks"), "{again}");
    assert!(
        again.contains("= env file /srv/app/.env is stk-app's alone (mode 0400)"),
        "{again}"
    );
    assert!(again.contains("nothing to do"), "{again}");

    let rb = isolate(r, &["rollback", "--stack", "app"]).success();
    assert!(
        out(&rb).contains("rolled back env file /srv/app/.env: owner 1000:1000, mode 0644 again"),
        "{}",
        out(&rb)
    );
    assert_eq!(owner(&r.join("srv/app/.env")), "1000:1000 0644");
    assert_eq!(owner(&r.join("srv/app/db.env")), "1000:1000 0640");
    let state = fs::read_to_string(r.join("var/lib/isolate/state.json")).unwrap();
    assert!(!state.contains("\"handoff\""), "{state}");
}

#[test]
fn a_symlinked_or_missing_env_file_is_refused_and_nothing_changes() {
    let h = host();
    let r = h.path();
    fs::write(r.join("policy.toml"), POLICY).unwrap();
    write_env(r, "db.env", 1000, 1000, 0o640);
    fs::write(r.join("srv/other/target"), "X=1\n").unwrap();
    std::os::unix::fs::symlink("../other/target", r.join("srv/app/.env")).unwrap();
    let passwd = fs::read(r.join("etc/passwd")).unwrap();

    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).code(2);
    assert_eq!(
        err(&a),
        "isolate: stack `app`: env file /srv/app/.env is reached through a symbolic link; isolate never follows one: name the real file\n"
    );
    fs::remove_file(r.join("srv/app/.env")).unwrap();
    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).code(2);
    assert_eq!(
        err(&a),
        "isolate: stack `app`: env file /srv/app/.env does not exist\n"
    );

    assert_eq!(fs::read(r.join("etc/passwd")).unwrap(), passwd);
    assert_eq!(owner(&r.join("srv/app/db.env")), "1000:1000 0640");
    assert_eq!(owner(&r.join("srv/other/target")), "0:0 0644");
    assert!(!r.join("var/lib/isolate/state.json").exists());
}

#[test]
fn env_file_keys_are_checked_with_positions() {
    let h = host();
    let r = h.path();
    fs::write(
        r.join("policy.toml"),
        "[stacks.app]\ndata = []\nenv_files = [\"rel/.env\"]\nproject = \"Bad Name\"\nservice = \"yes\"\n",
    )
    .unwrap();
    let a = isolate(r, &["plan", "--no-systemd"]).code(2);
    let p = r.join("policy.toml");
    let p = p.display();
    assert_eq!(
        err(&a),
        format!(
            "isolate: {p}:3:14: env file \"rel/.env\" is a relative path; it must be absolute\n\
             isolate: {p}:4:11: project \"Bad Name\" is not a compose project name (lower-case letters, digits, `_`, `-`, starting with a letter or digit)\n\
             isolate: {p}:5:11: `service` must be true or false, found a string\n"
        )
    );
}

/// A root-only file: what an env file must never turn into a stack's secret.
fn root_secret(root: &Path) -> std::path::PathBuf {
    let p = root.join("srv/other/root-secret");
    fs::write(&p, "ROOT=only\n").unwrap();
    std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn a_root_file_hardlinked_in_as_an_env_file_is_refused_and_left_as_is() {
    let h = host();
    let r = h.path();
    fs::write(r.join("policy.toml"), POLICY).unwrap();
    write_env(r, "db.env", 1000, 1000, 0o640);
    let secret = root_secret(r);
    fs::hard_link(&secret, r.join("srv/app/.env")).unwrap();

    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).code(2);
    assert!(
        err(&a).contains("env file /srv/app/.env has 2 names"),
        "{}{}",
        out(&a),
        err(&a)
    );
    assert_eq!(owner(&secret), "0:0 0600");
    assert_eq!(owner(&r.join("srv/app/db.env")), "1000:1000 0640");

    // With one name left, it is still root's, not the legacy user's: refused too.
    fs::remove_file(&secret).unwrap();
    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).code(2);
    assert!(
        err(&a).contains("env file /srv/app/.env belongs to uid 0, not to the legacy user alice"),
        "{}{}",
        out(&a),
        err(&a)
    );
    assert_eq!(owner(&r.join("srv/app/.env")), "0:0 0600");
}

#[test]
fn an_env_file_hardlinked_to_another_stacks_env_file_is_refused() {
    let h = host();
    let r = h.path();
    fs::write(
        r.join("policy.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nenv_files = [\"/srv/app/.env\"]\n[stacks.other]\ndata = []\nenv_files = [\"/srv/other/.env\"]\n",
    )
    .unwrap();
    let theirs = r.join("srv/other/.env");
    fs::write(&theirs, "OTHER_SECRET=1\n").unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o600)).unwrap();
    isolate(r, &["apply", "--no-systemd", "--stack", "other"]).success();
    let handed = owner(&theirs);
    assert!(handed.ends_with(" 0400"), "{handed}");
    // The legacy user linked it into app's directory while she still owned it.
    fs::hard_link(&theirs, r.join("srv/app/.env")).unwrap();

    let a = isolate(r, &["apply", "--no-systemd", "--stack", "app"]).code(2);
    assert!(
        err(&a).contains("env file /srv/app/.env has 2 names"),
        "{}{}",
        out(&a),
        err(&a)
    );
    assert_eq!(owner(&theirs), handed, "the other stack keeps its secret");
}

#[test]
fn a_race_exchanging_the_env_file_with_a_root_files_link_never_reowns_the_root_file() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut taken = 0;
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let h = host();
        let r = h.path().to_path_buf();
        fs::write(
            r.join("policy.toml"),
            "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nenv_files = [\"/srv/app/.env\"]\n",
        )
        .unwrap();
        write_env(&r, ".env", 1000, 1000, 0o600);
        let secret = root_secret(&r);
        // The evil name sits beside the env file; the racer swaps the two names all along.
        fs::hard_link(&secret, r.join("srv/app/evil")).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let racer = {
            let (stop, dir) = (stop.clone(), r.join("srv/app"));
            std::thread::spawn(move || {
                let d = nix::fcntl::open(
                    &dir,
                    nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
                    nix::sys::stat::Mode::empty(),
                )
                .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _ = nix::fcntl::renameat2(
                        &d,
                        ".env",
                        &d,
                        "evil",
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    );
                }
            })
        };
        let a = isolate(&r, &["apply", "--no-systemd", "--stack", "app"]);
        stop.store(true, Ordering::Relaxed);
        racer.join().unwrap();
        outcomes.push(a.get_output().status.code());
        if owner(&secret) != "0:0 0600" {
            taken += 1;
        }
    }
    eprintln!("exit codes of the racing applies: {outcomes:?}");
    assert_eq!(taken, 0, "the root file was re-owned ({outcomes:?})");
}

#[test]
fn a_replaced_env_file_is_named_in_plan_and_rollback_gives_back_the_new_one() {
    let h = host();
    let r = h.path();
    fs::write(
        r.join("policy.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nuid = 850\nenv_files = [\"/srv/app/.env\"]\n",
    )
    .unwrap();
    write_env(r, ".env", 1000, 1000, 0o600);
    isolate(r, &["apply", "--no-systemd", "--stack", "app"]).success();
    assert_eq!(owner(&r.join("srv/app/.env")), "850:850 0400");
    // The legacy user owns the directory: she replaces the handed file with her own.
    fs::remove_file(r.join("srv/app/.env")).unwrap();
    write_env(r, ".env", 1000, 1000, 0o644);
    let plan = isolate(r, &["plan", "--no-systemd", "--stack", "app"]).success();
    assert!(
        out(&plan).contains("! env file /srv/app/.env of stack `app` was replaced since isolate handed it to stk-app (owner now uid 1000); apply hands over the new file"),
        "{}",
        out(&plan)
    );
    // status says what the file is now, not what the record says was done.
    let st = isolate(r, &["status", "--stack", "app"]).success();
    assert!(
        out(&st).contains("env file /srv/app/.env: no longer stk-app's alone: owner uid 1000, mode 0644, 1 name(s)"),
        "{}",
        out(&st)
    );
    isolate(r, &["apply", "--no-systemd", "--stack", "app"]).success();
    assert_eq!(owner(&r.join("srv/app/.env")), "850:850 0400");
    let st = isolate(r, &["status", "--stack", "app"]).success();
    assert!(
        out(&st).contains("env file /srv/app/.env: stk-app's alone"),
        "{}",
        out(&st)
    );
    isolate(r, &["rollback", "--stack", "app"]).success();
    // Hers again (the mode is the recorded one: the new file may have the old inode number).
    assert!(owner(&r.join("srv/app/.env")).starts_with("1000:1000 "));
}
