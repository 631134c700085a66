//! A stack's limits judged by NixOS itself: `isolate export nixos` declares them as
//! `systemd.slices."user-UID".sliceConfig`, NixOS's own unit modules (the harness from
//! `../shared/nixos-eval`) render the slice unit, and its `[Slice]` section must equal, line by
//! line and in order, the `[Slice]` section of the drop-in apply writes on other hosts.
mod nixos_common;
mod scratch_common;
use assert_cmd::Command;
use nixos_common::harness;
use std::fs;

/// The lines of one section of a unit text, comments and blank lines left out, in order.
fn section(text: &str, name: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line == name;
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn nixos_renders_the_slice_limits_apply_writes_line_for_line() {
    let Some((_h, top)) = harness() else { return };
    let root = scratch_common::tempdir("nixos-limits-");
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(r.join("etc/gshadow"), "root:*::\n").unwrap();
    fs::write(r.join("etc/subuid"), "").unwrap();
    fs::write(r.join("etc/subgid"), "").unwrap();
    let policy = r.join("policy.toml");
    fs::write(
        &policy,
        "[stacks.immich]\ndata = []\n[stacks.immich.limits]\nmemory_max = \"4g\"\nmemory_high = \"3G\"\n\
         memory_swap_max = 0\ncpu_weight = 50\ncpu_quota = \"150%\"\ntasks_max = 512\nio_weight = 200\n\
         disk_max = \"100G\"\n[stacks.plain]\ndata = []\n",
    )
    .unwrap();
    let module = r.join("isolate-stacks.nix");
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(&policy)
        .args(["export", "nixos", "--output"])
        .arg(&module)
        .env_remove("ISOLATE_LOG")
        .assert()
        .success();
    let host = r.join("host.nix");
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
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["failedAssertions"],
        serde_json::json!([]),
        "{summary}"
    );

    // What apply writes into /etc/systemd/system/user-UID.slice.d/50-isolate.conf.
    let parsed = isolate::policy::Policy::load(&policy).unwrap();
    let state = isolate::state::State::read(&isolate::layout::Root::new(r)).unwrap();
    let uid = state.stacks["immich"].allocation.uid;
    let settings = isolate::limits::dropin::settings(&parsed.stacks["immich"].limits);
    let dropin = isolate::limits::dropin::render("immich", &settings);

    let units = &summary["units"]["system"];
    let slice = format!("user-{uid}.slice");
    let nixos_text = units[&slice]
        .as_str()
        .unwrap_or_else(|| panic!("no {slice} in {units}"));
    let nixos_lines = section(nixos_text, "[Slice]");
    assert_eq!(
        nixos_lines,
        section(&dropin, "[Slice]"),
        "NixOS:\n{nixos_text}\napply:\n{dropin}"
    );
    assert_eq!(
        nixos_lines,
        [
            "CPUQuota=150%",
            "CPUWeight=50",
            "IOWeight=200",
            "MemoryHigh=3G",
            "MemoryMax=4G",
            "MemorySwapMax=0",
            "TasksMax=512"
        ]
    );
    // A stack without limits declares no slice.
    let plain = state.stacks["plain"].allocation.uid;
    assert!(
        units.get(format!("user-{plain}.slice")).is_none(),
        "{units}"
    );
}
