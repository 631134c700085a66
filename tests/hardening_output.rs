//! File names a container planted reach the operator's terminal only escaped: no raw control
//! byte, DEL, C1 control or invalid UTF-8 in plan, apply or rollback output (stdout and
//! stderr), the exact escaped text instead; JSON keeps every name exactly.
mod hardening_common;
use hardening_common::{expect_code, text, Host};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::chown;

const SHIFT_POLICY: &str = r#"legacy_owner = "alice"
[stacks.app]
data = ["/srv/app"]
migrate = "shift"
"#;

/// The planted names (bytes) and how they must be shown.
const NAMES: &[(&[u8], &str)] = &[
    (b"clear\x1b[2Jscreen", "clear\\x1b[2Jscreen"),
    (b"cr\rapplied 9 step(s)", "cr\\x0dapplied 9 step(s)"),
    (b"nl\nisolate: forged", "nl\\x0aisolate: forged"),
    (b"latin\xe9\xff", "latin\\xe9\\xff"),
    (b"c1\xc2\x9b2J", "c1\\xc2\\x9b2J"),
];

fn assert_clean(what: &str, bytes: &[u8]) {
    let s =
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {bytes:?}"));
    for c in s.chars() {
        let bad = (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c);
        assert!(!bad, "{what}: raw control {c:?} in:\n{s}");
    }
}

#[test]
fn planted_names_are_escaped_in_every_human_line_and_exact_in_json() {
    let h = Host::new();
    h.policy(SHIFT_POLICY);
    h.legacy_data("srv/app", 1, 1);
    let data = h.root().join("srv/app");
    for (name, _) in NAMES {
        let p = data.join(OsStr::from_bytes(name));
        std::fs::write(&p, b"x").unwrap();
        // Outside the legacy mapping: shift leaves them and apply names them.
        chown(&p, Some(5), Some(5)).unwrap();
    }

    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 0);
    assert_clean("plan stdout", &plan.stdout);
    assert_clean("plan stderr", &plan.stderr);

    let json = h.run(&["plan", "--no-systemd", "--json"]);
    expect_code(&json, 0);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let samples = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s.get("survey"))
        .expect("a migrate step")["outside_samples"]
        .clone();
    let mut got: Vec<Vec<u8>> = samples
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s {
            serde_json::Value::String(t) => t.as_bytes().to_vec(),
            o => o["bytes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect(),
        })
        .collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = NAMES.iter().map(|(n, _)| n.to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "JSON holds every name exactly");

    let apply = h.run(&["apply", "--no-systemd"]);
    expect_code(&apply, 0);
    assert_clean("apply stdout", &apply.stdout);
    assert_clean("apply stderr", &apply.stderr);
    let out = text(&apply.stdout);
    for (_, shown) in NAMES {
        assert!(
            out.contains(&format!(
                "  left as is (outside the legacy mapping): {shown}\n"
            )),
            "{shown} not in:\n{out}"
        );
    }

    // An error naming a planted path is escaped on stderr too.
    let evil = h.root().join(OsStr::from_bytes(b"srv/\x1b[2Jgone"));
    std::fs::rename(&data, &evil).unwrap();
    let rb = h.run(&["rollback", "--stack", "app"]);
    expect_code(&rb, 2);
    assert_clean("rollback stderr", &rb.stderr);
    std::fs::rename(&evil, &data).unwrap();
    let rb = h.run(&["rollback", "--stack", "app"]);
    expect_code(&rb, 0);
    assert_clean("rollback stdout", &rb.stdout);
}

#[test]
fn a_policy_path_with_controls_is_escaped_in_every_line() {
    let h = Host::new();
    h.policy("legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/a\\u001b[2Jb\"]\n");
    let out = h.run(&["apply", "--no-systemd"]);
    assert_clean("stderr", &out.stderr);
    assert_clean("stdout", &out.stdout);
    // A new data path is created (and named), or refused (and named): escaped either way.
    let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(both.contains("/srv/a\\x1b[2Jb"), "{both}");
}

/// Characters that reorder or hide text on a terminal (bidirectional overrides, embeddings,
/// isolates, marks, zero-width and invisible format characters), each in a container-named file.
const BIDI: &[(char, &str)] = &[
    ('\u{202a}', "\\xe2\\x80\\xaa"),
    ('\u{202b}', "\\xe2\\x80\\xab"),
    ('\u{202c}', "\\xe2\\x80\\xac"),
    ('\u{202d}', "\\xe2\\x80\\xad"),
    ('\u{202e}', "\\xe2\\x80\\xae"),
    ('\u{2066}', "\\xe2\\x81\\xa6"),
    ('\u{2067}', "\\xe2\\x81\\xa7"),
    ('\u{2068}', "\\xe2\\x81\\xa8"),
    ('\u{2069}', "\\xe2\\x81\\xa9"),
    ('\u{200e}', "\\xe2\\x80\\x8e"),
    ('\u{200f}', "\\xe2\\x80\\x8f"),
    ('\u{061c}', "\\xd8\\x9c"),
    ('\u{200b}', "\\xe2\\x80\\x8b"),
    ('\u{2028}', "\\xe2\\x80\\xa8"),
    ('\u{feff}', "\\xef\\xbb\\xbf"),
];

/// True for a character that must never reach a terminal raw.
fn reorders_or_hides(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

#[test]
fn bidi_overrides_and_invisible_marks_are_escaped_in_audit_plan_and_apply_text() {
    let h = Host::new();
    h.policy(SHIFT_POLICY);
    h.legacy_data("srv/app", 1, 1);
    let data = h.root().join("srv/app");
    for (c, _) in BIDI {
        // A world-writable file: the audit names it among its samples.
        let p = data.join(format!("evil{c}gpj.exe"));
        std::fs::write(&p, b"x").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        chown(&p, Some(5), Some(5)).unwrap();
    }
    let check = |what: &str, out: &[u8]| {
        let s = text(out);
        let raw: Vec<String> = s
            .chars()
            .filter(|c| reorders_or_hides(*c))
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert!(raw.is_empty(), "{what}: raw {raw:?} in:\n{s}");
    };
    let audit = h.run(&["audit"]);
    check("audit stdout", &audit.stdout);
    check("audit stderr", &audit.stderr);
    let out = text(&audit.stdout);
    let shown: Vec<&str> = BIDI.iter().map(|(_, e)| *e).collect();
    let named = shown
        .iter()
        .filter(|e| out.contains(&format!("evil{e}gpj.exe")))
        .count();
    assert!(named > 0, "the audit names no planted file escaped:\n{out}");

    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 0);
    check("plan stdout", &plan.stdout);
    check("plan stderr", &plan.stderr);
    let apply = h.run(&["apply", "--no-systemd"]);
    expect_code(&apply, 0);
    check("apply stdout", &apply.stdout);
    check("apply stderr", &apply.stderr);
    let out = text(&apply.stdout);
    // apply names its first samples (ten): each escaped.
    let named = shown
        .iter()
        .filter(|e| out.contains(&format!("evil{e}gpj.exe")))
        .count();
    assert!(
        named >= 10,
        "{named} planted names shown escaped in:\n{out}"
    );
}
