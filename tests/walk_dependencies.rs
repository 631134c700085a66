//! The walk engine and the model stand on their own: their dependency closure (normal and
//! build dependencies, as `cargo metadata` resolves them) holds no D-Bus (zbus,
//! zbus_systemd), no command line (clap) and not isolate itself, so the engine cannot call a
//! host service or a plug-in, and adding one to their manifests fails here.
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN: &[&str] = &["zbus", "zbus_systemd", "clap", "isolate"];
const BOTTOM: &[&str] = &["isolate-walk", "isolate-model"];

/// This machine's target triple, from the rustc beside the cargo that built the test.
fn host_triple() -> String {
    let beside = std::path::Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = if beside.exists() {
        beside
    } else {
        "rustc".into()
    };
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// The resolved graph for this machine (offline: listing every other platform's crates
/// would download them).
fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .arg("--filter-platform")
        .arg(host_triple())
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package name by id, and each id's normal and build dependencies (not dev ones: a test
/// may use anything).
fn graph(meta: &Value) -> (HashMap<String, String>, HashMap<String, Vec<String>>) {
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap().to_string();
            (id, p["name"].as_str().unwrap().to_string())
        })
        .collect();
    let deps = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap().to_string();
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].as_str() != Some("dev"))
                })
                .map(|d| d["pkg"].as_str().unwrap().to_string())
                .collect();
            (id, deps)
        })
        .collect();
    (names, deps)
}

/// The names of every package `root` depends on, directly or not.
fn closure(
    root: &str,
    names: &HashMap<String, String>,
    deps: &HashMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let start = names
        .iter()
        .find(|(_, n)| n.as_str() == root)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for d in deps.get(&id).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen.iter().map(|id| names[id].clone()).collect()
}

#[test]
fn the_engine_and_the_model_depend_on_no_host_service_and_no_command_line() {
    let meta = metadata();
    let (names, deps) = graph(&meta);
    for root in BOTTOM {
        let below = closure(root, &names, &deps);
        let bad: Vec<&str> = FORBIDDEN
            .iter()
            .copied()
            .filter(|f| below.contains(*f))
            .collect();
        assert!(
            bad.is_empty(),
            "{root} depends on {bad:?} (all it depends on: {below:?})"
        );
    }
    // The model is below the engine, never the other way round.
    assert!(!closure("isolate-model", &names, &deps).contains("isolate-walk"));
    assert!(closure("isolate-walk", &names, &deps).contains("isolate-model"));
}
