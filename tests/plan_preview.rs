//! `plan` previews: it prints the whole plan it can make, then the refusals (exit 2); apply
//! refuses with the same refusals and changes nothing. Preconditions of a stack's unit are
//! refusals of plan, named with their fix, not a timeout of apply.
mod hardening_common;
use hardening_common::{expect_code, text, Host};

const TWO: &str = r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app"]
migrate = "auto"
[stacks.web]
data = ["/srv/web"]
migrate = "auto"
"#;

/// `web` names an env file that does not exist.
const MISSING_ENV: &str = r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app"]
migrate = "auto"
[stacks.web]
data = ["/srv/web"]
migrate = "auto"
env_files = ["/srv/conf/web.env"]
"#;

#[test]
fn plan_prints_the_whole_plan_then_the_refusals_and_apply_refuses_the_same() {
    let h = Host::new();
    h.policy(MISSING_ENV);
    h.legacy_data("srv/app", 2, 2);
    h.legacy_data("srv/web", 1, 1);
    let before = h.snapshot();

    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 2);
    let (out, err) = (text(&plan.stdout), text(&plan.stderr));
    for want in [
        "+ user stk-app ",
        "+ user stk-web ",
        "migrate /srv/app ",
        "migrate /srv/web ",
    ] {
        assert!(out.contains(want), "plan's stdout lacks {want:?}:\n{out}");
    }
    assert!(
        out.ends_with("`isolate apply` makes none of them while the 1 refusal(s) below stand\n"),
        "{out}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err,
        "isolate: stack `web`: env file /srv/conf/web.env does not exist\n"
    );

    let json = h.run(&["plan", "--no-systemd", "--format", "json"]);
    expect_code(&json, 2);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(!doc["steps"].as_array().unwrap().is_empty(), "{doc}");
    assert_eq!(doc["refusals"].as_array().unwrap().len(), 1, "{doc}");

    let apply = h.run(&["apply", "--no-systemd"]);
    expect_code(&apply, 2);
    assert_eq!(
        text(&apply.stderr),
        err,
        "apply refuses with plan's refusals"
    );
    assert!(apply.stdout.is_empty(), "{}", text(&apply.stdout));
    assert_eq!(before, h.snapshot(), "a refused apply changed the root");
}

#[test]
fn a_plan_without_refusals_is_unchanged() {
    let h = Host::new();
    h.policy(TWO);
    h.legacy_data("srv/app", 1, 1);
    h.legacy_data("srv/web", 1, 1);
    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 0);
    let out = text(&plan.stdout);
    assert!(
        out.ends_with("step(s); run `isolate apply` to make them\n"),
        "{out}"
    );
    assert!(plan.stderr.is_empty(), "{}", text(&plan.stderr));
}

#[test]
fn a_missing_share_is_refused_with_the_command_that_creates_it_and_nothing_changes() {
    let h = Host::new();
    h.policy(
        r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app"]
migrate = "auto"
[shares.media]
path = "/srv/media"
read = ["app:1000"]
"#,
    );
    h.legacy_data("srv/app", 1, 1);
    let before = h.snapshot();
    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 2);
    assert_eq!(
        text(&plan.stderr),
        "isolate: share `media`: /srv/media does not exist; isolate does not create a share (a missing one is most often an unmounted disk or a typo): mount its filesystem, fix `path` in [shares.media], or create it empty with `install -d -o root -g root -m 0755 /srv/media`\n"
    );
    assert!(
        text(&plan.stdout).contains("migrate /srv/app "),
        "{}",
        text(&plan.stdout)
    );
    expect_code(&h.run(&["apply", "--no-systemd"]), 2);
    assert_eq!(before, h.snapshot(), "a refused apply changed the root");
}
