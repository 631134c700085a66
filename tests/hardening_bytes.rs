//! /etc files are bytes, not UTF-8: a host whose passwd, shadow, group and gshadow hold a
//! legal Latin-1 field (a GECOS `Jos\xe9`, a group name `m\xfcsik`) is planned and applied
//! like any other, and those lines come out byte for byte as they went in.
mod hardening_common;
use hardening_common::{expect_code, text, Host, APP_POLICY};

const PASSWD_LINE: &[u8] = b"jose:x:1001:1001:Jos\xe9 Garc\xeda,,,:/home/jose:/bin/bash\n";
const GROUP_LINE: &[u8] = b"m\xfcsik:x:1500:jose\n";

fn lines_with(file: &[u8], needle: &[u8]) -> Vec<Vec<u8>> {
    file.split_inclusive(|b| *b == b'\n')
        .filter(|l| l.windows(needle.len()).any(|w| w == needle))
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn latin1_fields_do_not_stop_plan_or_apply_and_stay_byte_identical() {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 2, 2);
    let add = |f: &str, line: &[u8]| {
        let mut b = std::fs::read(h.root().join(f)).unwrap();
        b.extend_from_slice(line);
        h.write(f, &b);
    };
    add("etc/passwd", PASSWD_LINE);
    add("etc/shadow", b"jose:*:19000:0:99999:7:::\n");
    add("etc/group", b"jose:x:1001:\n");
    add("etc/group", GROUP_LINE);
    add("etc/gshadow", b"jose:!::\n");
    add("etc/gshadow", b"m\xfcsik:!::jose\n");

    let plan = h.run(&["plan", "--no-systemd"]);
    expect_code(&plan, 0);
    assert!(
        text(&plan.stdout).contains("+ user stk-app"),
        "{}",
        text(&plan.stdout)
    );
    let apply = h.run(&["apply", "--no-systemd"]);
    expect_code(&apply, 0);
    assert!(
        text(&apply.stdout).contains(", 0 failed"),
        "{}",
        text(&apply.stdout)
    );

    let passwd = std::fs::read(h.root().join("etc/passwd")).unwrap();
    assert_eq!(lines_with(&passwd, b"jose:"), vec![PASSWD_LINE.to_vec()]);
    assert!(lines_with(&passwd, b"stk-app:").len() == 1);
    let group = std::fs::read(h.root().join("etc/group")).unwrap();
    assert_eq!(lines_with(&group, b"m\xfcsik:"), vec![GROUP_LINE.to_vec()]);
    let gshadow = std::fs::read(h.root().join("etc/gshadow")).unwrap();
    assert_eq!(
        lines_with(&gshadow, b"m\xfcsik:"),
        vec![b"m\xfcsik:!::jose\n".to_vec()]
    );
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
    let again = h.run(&["plan", "--no-systemd"]);
    assert!(
        text(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again.stdout)
    );
}
