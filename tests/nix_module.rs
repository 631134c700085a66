//! The Nix files: every one parses (`nix-instantiate --parse`), and the NixOS module
//! `services.isolate`, evaluated with nixpkgs' real `lib` and NixOS's users module from the
//! nixos-eval harness next to the accounts module `isolate export nixos` writes, writes the
//! example policy's TOML (which isolate itself accepts), the audit service and the timer.
mod scratch_common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The harness tarball (test infrastructure outside the repository, in `shared/` beside the
/// checkout; unpacked per test run). `ISOLATE_NIXOS_EVAL` names another copy.
fn harness_tarball() -> PathBuf {
    std::env::var_os("ISOLATE_NIXOS_EVAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/nixos-eval/nixpkgs-eval.tar.xz"))
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nix_instantiate(args: &[&str]) -> String {
    let out = Command::new("nix-instantiate")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("nix-instantiate runs (package nix-bin, installed by scripts/install-deps)");
    assert!(
        out.status.success(),
        "nix-instantiate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn nix_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("flake.nix")];
    let mut dirs = vec![repo().join("nix")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "nix") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_nix_file_parses() {
    let files = nix_files();
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        nix_instantiate(&["--parse", f.to_str().unwrap()]);
    }
}

/// The harness unpacked into a temporary directory (kept while the guard lives).
fn unpack_harness() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(harness_tarball())
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cannot unpack {}",
        harness_tarball().display()
    );
    let harness = dir.path().join("nixpkgs-eval");
    (dir, harness)
}

/// A root holding only account files with root and alice (the example policy's legacy owner).
fn root_with_alice() -> tempfile::TempDir {
    let dir = scratch_common::tempdir("nix-");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    for (file, text) in [
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        ),
        (
            "shadow",
            "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        ),
        ("group", "root:x:0:\nalice:x:1000:\n"),
        ("gshadow", "root:*::\nalice:!::\n"),
        ("subuid", "alice:100000:65536\n"),
        ("subgid", "alice:100000:65536\n"),
    ] {
        std::fs::write(etc.join(file), text).unwrap();
    }
    dir
}

/// The accounts module `isolate export nixos` writes for the example policy on `root`.
fn export_nixos(root: &Path, module: &Path) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("isolate"))
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(repo().join("policies/homelab.toml"))
        .args(["export", "nixos", "--output"])
        .arg(module)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "isolate export nixos: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Evaluates nix/tests/eval.nix: the module for the host configuration `host`, next to the
/// accounts module `isolate export nixos` writes for the example policy.
fn evaluate(host: &str) -> serde_json::Value {
    let (_dir, harness) = unpack_harness();
    let root = root_with_alice();
    let accounts = root.path().join("isolate-stacks.nix");
    export_nixos(root.path(), &accounts);
    let out = nix_instantiate(&[
        "--eval",
        "--strict",
        "--json",
        "nix/tests/eval.nix",
        "--arg",
        "harness",
        harness.to_str().unwrap(),
        "--arg",
        "accounts",
        accounts.to_str().unwrap(),
        "--arg",
        "host",
        host,
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn module_writes_the_example_policy() {
    let got = evaluate("./nix/tests/homelab.nix");
    let text = got["policyToml"].as_str().unwrap();
    let from_module: toml::Value = toml::from_str(text).unwrap();
    let example = std::fs::read_to_string(repo().join("policies/homelab.toml")).unwrap();
    let from_file: toml::Value = toml::from_str(&example).unwrap();
    assert_eq!(from_module, from_file, "module wrote:\n{text}");

    // isolate reads what the module writes.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, text).unwrap();
    isolate::policy::Policy::load(&policy).unwrap();

    assert_eq!(got["failedAssertions"], serde_json::json!([]));
    assert_eq!(
        got["users"],
        serde_json::json!(["stk-immich", "stk-jellyfin", "stk-paperless"]),
        "the exported accounts module is evaluated next to services.isolate"
    );
    assert_eq!(
        got["auditExecStart"],
        "/nix/store/00000000000000000000000000000000-isolate/bin/isolate audit --skip usage \
         --format prometheus --output /var/lib/prometheus-node-exporter-text-files/isolate.prom",
        "with the usage timer on, the audit leaves the slices to it"
    );
    assert_eq!(
        got["usageExecStart"],
        "/nix/store/00000000000000000000000000000000-isolate/bin/isolate audit --only usage \
         --format prometheus --output /var/lib/prometheus-node-exporter-text-files/isolate-usage.prom"
    );
    assert_eq!(
        got["usageTimer"]["wantedBy"],
        serde_json::json!(["timers.target"])
    );
    assert_eq!(got["usageTimer"]["timerConfig"]["OnUnitActiveSec"], "1min");
    assert_eq!(
        got["timer"]["wantedBy"],
        serde_json::json!(["timers.target"])
    );
    assert_eq!(got["timer"]["timerConfig"]["OnUnitActiveSec"], "1h");
    assert_eq!(
        got["packages"][0], "isolate",
        "the package (man pages, completions) is on the system"
    );
}

#[test]
fn module_declares_every_policy_key_the_parser_accepts() {
    use isolate::policy::{POOL_KEYS, SHARE_KEYS, STACK_KEYS, TOP_KEYS};
    let got = evaluate("./nix/tests/homelab.nix");
    for (table, keys) in [
        ("top", TOP_KEYS),
        ("pools", POOL_KEYS),
        ("stacks", STACK_KEYS),
        ("shares", SHARE_KEYS),
    ] {
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        let declared: Vec<&str> = got["policyKeys"][table]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            declared, want,
            "services.isolate.policy ({table}) and the policy parser disagree: edit nix/module.nix"
        );
    }
}

#[test]
fn package_installs_man_pages_and_completions() {
    let (_dir, harness) = unpack_harness();
    let out = nix_instantiate(&[
        "--eval",
        "--strict",
        "--json",
        "nix/tests/package.nix",
        "--arg",
        "harness",
        harness.to_str().unwrap(),
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["pname"], "isolate");
    assert_eq!(got["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(got["mainProgram"], "isolate");
    assert_eq!(got["lockFile"], "Cargo.lock");
    let post = got["postInstall"].as_str().unwrap();
    for line in [
        "$out/bin/isolate __generate man generated/man",
        "$out/bin/isolate __generate completions generated/completions",
        "installManPage generated/man/isolate.8 generated/man/isolate-policy.5",
        "--bash generated/completions/isolate.bash",
        "--zsh generated/completions/_isolate",
        "--fish generated/completions/isolate.fish",
        "install -Dm644 contrib/grafana/isolate.json $out/share/isolate/grafana/isolate.json",
    ] {
        assert!(post.contains(line), "postInstall lacks `{line}`:\n{post}");
    }
}

/// The lines of a unit text's `[section]`, without the section header and blank lines.
fn section<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty())
        .collect()
}

/// `key=value` entries of a section, split on spaces (systemd's list syntax).
fn entries<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .flat_map(|v| v.split(' '))
        .collect()
}

#[test]
fn apply_unit_runs_the_listed_stacks_after_linger_and_the_accounts() {
    let got = evaluate("./nix/tests/apply.nix");
    assert_eq!(got["failedAssertions"], serde_json::json!([]));
    let text = got["apply"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no isolate-apply.service: {}", got["apply"]));
    let unit = section(text, "Unit");
    let after = entries(&unit, "After");
    for dep in [
        "linger-users.service",
        "systemd-sysusers.service",
        "userborn.service",
        "systemd-logind.service",
        "dbus.service",
        "local-fs.target",
    ] {
        assert!(after.contains(&dep), "After= lacks {dep}:\n{text}");
    }
    assert_eq!(entries(&unit, "Wants"), ["linger-users.service"], "{text}");
    assert!(
        got["apply"]["lingerUsers"].is_string(),
        "the accounts module declares linger, so NixOS renders linger-users.service"
    );
    assert!(
        got["apply"]["lingerVars"][0]
            .as_str()
            .unwrap()
            .contains("stk-immich"),
        "{}",
        got["apply"]["lingerVars"]
    );

    let service = section(text, "Service");
    assert!(service.contains(&"Type=oneshot"), "{text}");
    assert!(service.contains(&"RemainAfterExit=true"), "{text}");
    assert!(
        service.contains(
            &"ExecStart=/nix/store/00000000000000000000000000000000-isolate/bin/isolate apply \
              --stack immich --stack paperless"
        ),
        "{text}"
    );
    // Only exit 0 is success: isolate's 1 (a step failed) and 2 (refused) fail the unit, and
    // so `nixos-rebuild switch`, colmena and deploy-rs report the deploy failed.
    assert!(
        !text.contains("SuccessExitStatus"),
        "exit 1 or 2 must fail the unit:\n{text}"
    );
    // A changed policy or changed stack accounts restart the unit at the next switch.
    assert!(
        unit.iter().any(|l| l.starts_with("X-Restart-Triggers=")),
        "{text}"
    );
    assert_eq!(
        got["apply"]["install"]["wantedBy"],
        serde_json::json!(["multi-user.target"])
    );
    assert_eq!(
        got["apply"]["links"],
        serde_json::json!([
            "multi-user.target.wants/isolate-apply.service -> ../isolate-apply.service"
        ])
    );
}

#[test]
fn apply_unit_is_opt_in_runs_every_stack_unless_listed_and_refuses_unknown_stacks() {
    let off = evaluate("./nix/tests/homelab.nix");
    assert_eq!(off["apply"]["text"], serde_json::Value::Null, "opt-in");

    let all = evaluate("./nix/tests/apply-all.nix");
    let text = all["apply"]["text"].as_str().unwrap();
    assert!(
        section(text, "Service").contains(
            &"ExecStart=/nix/store/00000000000000000000000000000000-isolate/bin/isolate apply"
        ),
        "{text}"
    );

    let unknown = evaluate("./nix/tests/apply-unknown.nix");
    assert_eq!(
        unknown["failedAssertions"],
        serde_json::json!([
            "services.isolate.apply.stacks: `nextcloud` is not a stack of services.isolate.policy.stacks (immich, jellyfin, paperless)"
        ])
    );
}
