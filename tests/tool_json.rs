//! What configuration-management tools (the Ansible collection in `ansible/`) read from
//! isolate: plan's JSON names every step with the line `plan` prints for it (so a tool can
//! show a diff without re-rendering steps), apply's JSON says "nothing to do" with an empty
//! step list, and a refusal is one JSON error object on stdout with its exit code.
mod hardening_common;
use hardening_common::{expect_code, text, Host, APP_POLICY};

#[test]
fn plan_json_carries_the_printed_line_of_every_step() {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 1, 2);

    let printed = h.run(&["plan", "--no-systemd"]);
    expect_code(&printed, 0);
    let step_lines: Vec<String> = text(&printed.stdout)
        .lines()
        .filter(|l| l.starts_with("+ ") || l.starts_with("~ "))
        .map(str::to_string)
        .collect();
    assert!(step_lines.len() >= 5, "{step_lines:?}");

    let json = h.run(&["plan", "--no-systemd", "--json"]);
    expect_code(&json, 0);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    let lines: Vec<&str> = steps
        .iter()
        .map(|s| {
            s["line"]
                .as_str()
                .unwrap_or_else(|| panic!("no line in {s}"))
        })
        .collect();
    assert_eq!(lines, step_lines);
    // The step itself is unchanged beside its line.
    assert_eq!(steps[0]["kind"], "create_group");
    assert_eq!(v["notes"][0]["kind"], "skipped");
}

#[test]
fn apply_json_says_nothing_to_do_with_no_steps() {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 1, 1);
    let first = h.run(&["apply", "--no-systemd", "--json"]);
    expect_code(&first, 0);
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["outcome"] == "done"));

    let again = h.run(&["apply", "--no-systemd", "--json"]);
    expect_code(&again, 0);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["steps"], serde_json::json!([]));
}

#[test]
fn a_refusal_is_one_json_error_on_stdout() {
    let h = Host::new();
    h.policy(APP_POLICY);
    let out = h.run(&["plan", "--no-systemd", "--json", "--stack", "nope"]);
    expect_code(&out, 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "usage");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("defines no such stack"));
}
