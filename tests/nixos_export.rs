//! `isolate export nixos` judged by NixOS itself: the exported module is evaluated with the
//! real `users-groups.nix` and the real nixpkgs lib, NixOS's own `update-users-groups.pl`
//! writes a scratch /etc from it, and the stack lines must equal what `apply --root` writes.
//! Also the NixOS flow end to end: plan and apply refuse on a root with /etc/NIXOS, export
//! records, the "rebuild" (the real activation script) creates the accounts, apply goes on.
//! Root-run (the activation uses a private mount namespace). The harness comes from
//! `../shared/nixos-eval/nixpkgs-eval.tar.xz` and is unpacked at test time.
mod nixos_common;
mod scratch_common;
use assert_cmd::Command;
use nixos_common::harness;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const NIXOS_NOLOGIN: &str = "run/current-system/sw/bin/nologin";

/// A root with root, alice (uid 1000, subuid 100000:65536) and NixOS's nologin path, so the
/// shell apply gives stack users is the one NixOS gives system users.
fn new_root(nixos: bool) -> tempfile::TempDir {
    // Not /tmp: apply refuses data below a directory others can write (/tmp is 1777).
    let dir = scratch_common::tempdir("nixos-");
    let r = dir.path();
    for d in [
        "etc",
        "root",
        "home/alice",
        "bin",
        "run/current-system/sw/bin",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    for sh in ["bin/bash", NIXOS_NOLOGIN] {
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
    if nixos {
        fs::write(r.join("etc/NIXOS"), "").unwrap();
    }
    dir
}

const POLICY: &str = r#"legacy_owner = "alice"
[stacks.immich]
data = ["/srv/immich/library"]
[stacks.paperless]
data = []
migrate = "reown"
uid = 850
[stacks.jellyfin]
data = []
"#;

fn isolate(root: &Path, policy: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(policy)
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

/// Evaluates `module` inside a host configuration with the harness; returns the summary.
fn evaluate(top: &Path, module: &Path, work: &Path) -> serde_json::Value {
    let host = work.join("host.nix");
    fs::write(
        &host,
        format!(
            "{{\n  imports = [ {} ];\n  system.stateVersion = \"25.11\";\n  users.mutableUsers = false;\n  users.users.root.hashedPassword = \"!\";\n  users.allowNoPasswordLogin = true;\n}}\n",
            module.display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--read-write-mode"])
        .arg(top.join("harness/eval.nix"))
        .arg("--arg")
        .arg("configuration")
        .arg(&host)
        .args(["-A", "summary"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "evaluation failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Runs NixOS's activation script on the evaluated spec; returns the scratch /etc's parent.
fn activate(top: &Path, summary: &serde_json::Value, work: &Path) -> PathBuf {
    let spec = summary["spec"].as_str().expect("spec path");
    let dest = work.join("activated");
    let o = std::process::Command::new(top.join("harness/run-activation.sh"))
        .arg(spec)
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "activation failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    dest
}

/// The lines of an account file that belong to isolate's users and groups (prefix `stk-`).
fn stack_lines(file: &Path) -> BTreeSet<String> {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("stk-"))
        .map(str::to_string)
        .collect()
}

fn assert_no_failed_assertion_and_linger(summary: &serde_json::Value, users: &[&str]) {
    assert_eq!(
        summary["failedAssertions"],
        serde_json::json!([]),
        "{summary}"
    );
    // The real linger-users script's variables: `declare -a lingeringUserNames=(a b)`.
    let vars: Vec<&str> = summary["lingerVars"]
        .as_array()
        .expect("the linger-users service exists")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let names = |key: &str| -> BTreeSet<String> {
        let line = vars
            .iter()
            .find(|l| l.contains(&format!("{key}=(")))
            .unwrap_or_else(|| panic!("no {key} in {vars:?}"));
        let inner = &line[line.find('(').unwrap() + 1..line.rfind(')').unwrap()];
        inner.split_whitespace().map(str::to_string).collect()
    };
    let want: BTreeSet<String> = users.iter().map(|u| u.to_string()).collect();
    assert_eq!(names("lingeringUserNames"), want, "{vars:?}");
    assert_eq!(names("nonLingeringUserNames"), BTreeSet::new(), "{vars:?}");
    for u in users {
        assert_eq!(summary["users"][u]["linger"], true);
    }
}

#[test]
fn nixos_writes_the_same_account_lines_as_apply() {
    let Some((_h, top)) = harness() else { return };
    let root = new_root(false);
    let r = root.path();
    fs::create_dir_all(r.join("srv/immich/library")).unwrap();
    let policy = r.join("policy.toml");
    fs::write(&policy, POLICY).unwrap();
    isolate(r, &policy, &["apply", "--no-systemd"]).success();

    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("isolate-stacks.nix");
    let a = isolate(
        r,
        &policy,
        &["export", "nixos", "--output", module.to_str().unwrap()],
    )
    .success();
    assert!(
        err(&a).starts_with(&format!(
            "isolate: wrote {}: 3 stack(s), shared group stk-shared (gid ",
            module.display()
        )),
        "{}",
        err(&a)
    );
    // Everything was recorded by apply: the export recorded nothing.
    assert!(!err(&a).contains("recorded"));

    let summary = evaluate(&top, &module, work.path());
    assert_no_failed_assertion_and_linger(
        &summary,
        &["stk-immich", "stk-jellyfin", "stk-paperless"],
    );
    let nixos = activate(&top, &summary, work.path());
    for f in ["passwd", "group", "subuid", "subgid"] {
        let ours = stack_lines(&r.join("etc").join(f));
        let theirs = stack_lines(&nixos.join("etc").join(f));
        assert_eq!(theirs, ours, "/etc/{f}");
        assert!(!ours.is_empty(), "/etc/{f}");
    }
    // Spot check what both wrote.
    assert!(stack_lines(&r.join("etc/subuid")).contains("stk-immich:1879048192:65536"));
    assert!(stack_lines(&r.join("etc/passwd")).contains(
        "stk-paperless:x:850:850:isolate stack paperless:/var/lib/isolate/home/stk-paperless:/run/current-system/sw/bin/nologin"
    ));
}

#[test]
fn on_nixos_apply_waits_for_the_configuration_then_goes_on() {
    let Some((_h, top)) = harness() else { return };
    let root = new_root(true);
    let r = root.path();
    fs::create_dir_all(r.join("srv/immich/library")).unwrap();
    fs::write(r.join("srv/immich/library/photo.jpg"), "x").unwrap();
    let policy = r.join("policy.toml");
    fs::write(&policy, POLICY).unwrap();
    let before: Vec<Vec<u8>> = ["passwd", "group", "subuid", "subgid", "shadow"]
        .iter()
        .map(|f| fs::read(r.join("etc").join(f)).unwrap())
        .collect();

    // plan says what to do; apply refuses with exit 2 and changes nothing.
    let p = isolate(r, &policy, &["plan", "--no-systemd"]).success();
    assert!(out(&p).contains("! NixOS host: accounts and subordinate ids are declared in its configuration (a rebuild rewrites /etc/subuid and /etc/subgid from it). Not declared yet: group stk-shared; group stk-immich (gid 70000); user stk-immich (uid 70000, gid 70000, home /var/lib/isolate/home/stk-immich); member stk-immich of group stk-shared; subuid+subgid stk-immich:1879048192:65536; "), "{}", out(&p));
    let a = isolate(r, &policy, &["apply", "--no-systemd"]).code(2);
    let e = err(&a);
    assert!(e.starts_with("isolate: this is a NixOS host (/etc/NIXOS): its configuration declares accounts and subordinate ids, and a rebuild would undo any isolate created. Not declared yet: group stk-shared; "), "{e}");
    assert!(e.ends_with("isolate: run `isolate export nixos --output /etc/nixos/isolate-stacks.nix`, add that file to `imports` in /etc/nixos/configuration.nix, run `nixos-rebuild switch`, then `isolate apply` again\n"), "{e}");
    assert!(!r.join("var/lib/isolate/state.json").exists());
    let now: Vec<Vec<u8>> = ["passwd", "group", "subuid", "subgid", "shadow"]
        .iter()
        .map(|f| fs::read(r.join("etc").join(f)).unwrap())
        .collect();
    assert_eq!(now, before);

    // export records the allocations (they must never move once a configuration holds them).
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("isolate-stacks.nix");
    let a = isolate(
        r,
        &policy,
        &["export", "nixos", "--output", module.to_str().unwrap()],
    )
    .success();
    assert_eq!(
        err(&a),
        format!("isolate: wrote {}: 3 stack(s), shared group stk-shared (gid 999); recorded the allocations of immich, jellyfin, paperless in the state file\n", module.display())
    );
    let first = fs::read_to_string(&module).unwrap();
    // A second export is the same module and records nothing.
    let again = isolate(r, &policy, &["export", "nixos"]).success();
    assert_eq!(out(&again), first);
    assert!(!err(&again).contains("recorded"));

    // The "rebuild": NixOS's activation writes the accounts; put them on the root.
    let summary = evaluate(&top, &module, work.path());
    assert_no_failed_assertion_and_linger(
        &summary,
        &["stk-immich", "stk-jellyfin", "stk-paperless"],
    );
    let nixos = activate(&top, &summary, work.path());
    for f in ["passwd", "group", "subuid", "subgid"] {
        let mut text = fs::read_to_string(r.join("etc").join(f)).unwrap();
        for l in stack_lines(&nixos.join("etc").join(f)) {
            text.push_str(&l);
            text.push('\n');
        }
        fs::write(r.join("etc").join(f), text).unwrap();
    }

    // apply goes on with what NixOS does not own: here the data (reown).
    let a = isolate(r, &policy, &["apply", "--no-systemd"]).success();
    assert!(
        out(&a).contains("~ migrate /srv/immich/library for immich (auto)"),
        "{}",
        out(&a)
    );
    let meta = fs::metadata(r.join("srv/immich/library/photo.jpg")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 70_000);
    let p = isolate(r, &policy, &["plan", "--no-systemd"]).success();
    assert!(
        out(&p).contains("nothing to do: the host matches the policy"),
        "{}",
        out(&p)
    );
}

/// The directives of a unit file by section, sorted (systemd reads neither order within a
/// section nor comments), without the lines `drop` matches.
fn directives(text: &str, drop: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') || drop.iter().any(|d| line.starts_with(d)) {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            out.entry(section.clone()).or_default();
        } else {
            out.entry(section.clone())
                .or_default()
                .push(line.to_string());
        }
    }
    for lines in out.values_mut() {
        lines.sort();
    }
    out
}

#[test]
fn nixos_renders_the_compose_unit_apply_writes_line_for_line_and_the_socket_for_stack_users() {
    let Some((_h, top)) = harness() else { return };
    let root = new_root(false);
    let r = root.path();
    fs::create_dir_all(r.join("srv/app/conf")).unwrap();
    fs::create_dir_all(r.join("srv/app/data")).unwrap();
    fs::write(r.join("srv/app/conf/compose.yml"), "services: {}\n").unwrap();
    fs::write(r.join("srv/app/conf/app.env"), "TOKEN=1\n").unwrap();
    let policy = r.join("policy.toml");
    fs::write(
        &policy,
        r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app/data"]
compose = ["/srv/app/conf/compose.yml"]
env_files = ["/srv/app/conf/app.env"]
project = "apps"
service = true
[stacks.db]
data = []
"#,
    )
    .unwrap();
    let module = r.join("isolate-stacks.nix");
    isolate(
        r,
        &policy,
        &["export", "nixos", "--output", module.to_str().unwrap()],
    )
    .success();
    let work = tempfile::tempdir().unwrap();
    let summary = evaluate(&top, &module, work.path());
    assert_no_failed_assertion_and_linger(&summary, &["stk-app", "stk-db"]);

    // What apply installs into stk-app's home on Debian, for the allocation export recorded.
    let parsed = isolate::policy::Policy::load(&policy).unwrap();
    let state = isolate::state::State::read(&isolate::layout::Root::new(r)).unwrap();
    let apply_text = isolate::handoff::service::render_unit(
        &parsed.stacks["app"],
        &state.stacks["app"].allocation,
    );
    let units = &summary["units"]["user"];
    let nixos_text = units["isolate-compose-apps.service"]
        .as_str()
        .unwrap_or_else(|| panic!("no isolate-compose-apps.service in {units}"));
    // NixOS's own additions: its PATH, and the condition that keeps the unit to stk-app.
    assert!(
        nixos_text.contains("\nConditionUser=stk-app\n"),
        "{nixos_text}"
    );
    assert!(nixos_text.contains("\nEnvironment=\"PATH="), "{nixos_text}");
    let nixos_only = ["ConditionUser=stk-app", "Environment=\"PATH="];
    assert_eq!(
        directives(nixos_text, &nixos_only),
        directives(&apply_text, &[]),
        "NixOS:\n{nixos_text}\napply:\n{apply_text}"
    );
    for line in [
        "EnvironmentFile=/var/lib/isolate/stacks/app/files/srv/app/conf/app.env",
        "Environment=ISOLATE_STACK=app",
        "WantedBy=default.target",
    ] {
        assert!(
            nixos_text.lines().any(|l| l == line),
            "{line}:\n{nixos_text}"
        );
    }
    assert!(
        units.get("isolate-compose-db.service").is_none(),
        "db asks for no service"
    );

    // Enabled as apply enables it in the stack user's manager (EnableUnitFiles: the same
    // `.wants` links, here in /etc/systemd/user).
    let links: Vec<&str> = summary["unitLinks"]["user"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for link in [
        "default.target.wants/isolate-compose-apps.service -> ../isolate-compose-apps.service",
        "sockets.target.wants/podman.socket -> ../podman.socket",
    ] {
        assert!(links.contains(&link), "{link} not in {links:?}");
    }
    let socket = units["podman.socket"].as_str().unwrap();
    let conditions: Vec<&str> = socket
        .lines()
        .filter(|l| l.starts_with("ConditionUser="))
        .collect();
    assert_eq!(
        conditions,
        ["ConditionUser=|stk-app", "ConditionUser=|stk-db"],
        "{socket}"
    );
}
