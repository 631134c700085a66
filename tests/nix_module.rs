//! The Nix files: every one parses (`nix-instantiate --parse`), and the NixOS module
//! `services.isolate`, evaluated with nixpkgs' real `lib` and NixOS's users module from the
//! nixos-eval harness next to an accounts module, writes the example policy's TOML, which
//! isolate itself accepts, and the audit service and timer.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The harness tarball (test infrastructure outside the repository; unpacked per test run).
const HARNESS_TARBALL: &str = "/work/shared/nixos-eval/nixpkgs-eval.tar.xz";

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

/// Unpacks the harness into a temporary directory and evaluates nix/tests/eval.nix.
fn evaluate(host: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .args(["-xJf", HARNESS_TARBALL, "-C"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "cannot unpack {HARNESS_TARBALL}");
    let harness = dir.path().join("nixpkgs-eval");
    // The kind of accounts module `isolate export nixos` writes (stk-immich, its groups).
    let accounts = harness.join("harness/example-stack-users.nix");
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
        serde_json::json!(["stk-immich"]),
        "the accounts module is evaluated next to services.isolate"
    );
    assert_eq!(
        got["auditExecStart"],
        "/nix/store/00000000000000000000000000000000-isolate/bin/isolate audit --format prometheus \
         --output /var/lib/prometheus-node-exporter-text-files/isolate.prom"
    );
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
