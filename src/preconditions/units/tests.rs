//! systemd's syntax as the scan reads it, the commands it recognises, and the scan of a real
//! tree: NixOS's links into the store resolved inside the root, never out of it; a link in the
//! legacy user's unit directory not followed; a masked unit skipped.
use super::commands::{actions_of, Kind};
use super::syntax::{directives, exec_lines, shell_commands, words};
use super::*;
use crate::layout::Root;
use std::os::unix::fs::symlink;

fn w(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn continuation_lines_join_and_keep_the_first_line_number() {
    let d = directives(
        Path::new("/u"),
        "# c\n[Service]\nExecStartPre=/bin/chown -R \\\n# skipped\n  1000:1000 \\\n  /srv/a\nUser = alice\n",
    );
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].key.as_str(), d[0].value.as_str(), d[0].line),
        ("ExecStartPre", "/bin/chown -R  1000:1000  /srv/a", 3)
    );
    assert_eq!((d[1].key.as_str(), d[1].value.as_str()), ("User", "alice"));
}

#[test]
fn exec_prefixes_quotes_and_separators() {
    let l = exec_lines("-+/bin/sh -c \"chown -R 1000 '/srv/my app'\" ; @/bin/true fake-argv0 x");
    assert_eq!(l.len(), 2);
    assert_eq!(
        l[0].words,
        w(&["/bin/sh", "-c", "chown -R 1000 '/srv/my app'"])
    );
    assert!(l[0].privileged);
    assert_eq!(l[1].words, w(&["/bin/true", "x"]));
    assert!(!l[1].privileged);
    assert_eq!(words("a\\ b \"c\\\"d\" %h/x"), w(&["a b", "c\"d", "%h/x"]));
    assert_eq!(exec_lines("/bin/echo \\;").len(), 1);
    assert_eq!(exec_lines("").len(), 0);
}

#[test]
fn shell_lines_split_at_operators_and_drop_assignments() {
    assert_eq!(
        shell_commands("X=1 chown -R 1:1 /srv/a && podman unshare chown 0:0 /srv/b | cat # x"),
        vec![
            w(&["chown", "-R", "1:1", "/srv/a"]),
            w(&["podman", "unshare", "chown", "0:0", "/srv/b"]),
            w(&["cat"]),
        ]
    );
}

fn kinds(words: &[&str]) -> Vec<Kind> {
    let mut out = Vec::new();
    actions_of(&w(words), &mut |a| out.push(a.kind));
    out
}

#[test]
fn commands_through_wrappers() {
    assert_eq!(
        kinds(&["sudo", "-n", "podman", "unshare", "chown", "-hR", "0:0", "/srv/a"]),
        vec![Kind::Owners {
            targets: vec!["/srv/a".into()],
            recursive: true
        }]
    );
    assert_eq!(
        kinds(&["setfacl", "-Rm", "u:1000:rwx", "/srv/a"]),
        vec![Kind::Owners {
            targets: vec!["/srv/a".into()],
            recursive: true
        }]
    );
    assert_eq!(
        kinds(&["chown", "--reference=/etc", "/srv/a"]),
        vec![Kind::Owners {
            targets: vec!["/srv/a".into()],
            recursive: false
        }]
    );
    assert_eq!(
        kinds(&[
            "/bin/bash",
            "-c",
            "cd /x; docker compose --file=/srv/a/c.yml -p a up -d"
        ]),
        vec![Kind::Compose {
            files: vec!["/srv/a/c.yml".into()],
            project: Some("a".into())
        }]
    );
    assert_eq!(kinds(&["/usr/bin/podman", "start", "x"]), vec![]);
}

fn stack() -> StackView {
    StackView {
        name: "app".into(),
        user: "stk-app".into(),
        uid: 2000,
        data: vec!["/srv/app/data".into()],
        compose: vec!["/srv/app/compose.yml".into()],
        project: "app".into(),
    }
}

fn unit(scope: Scope, text: &str) -> Scan {
    Scan {
        units: vec![Unit {
            name: "u.service".into(),
            scope,
            directives: directives(Path::new("/etc/systemd/system/u.service"), text),
            scripts: Default::default(),
        }],
    }
}

#[test]
fn what_undoes_a_stack_and_what_does_not() {
    let undo = |scope: Scope, text: &str| judge(&unit(scope, text), &stack(), false).len();
    let sys = || Scope::System;
    // A parent, recursively: yes; a parent alone: no; inside: yes; a sibling: no.
    assert_eq!(
        undo(sys(), "[Service]\nExecStartPre=chown -R 1:1 /srv/app/\n"),
        1
    );
    assert_eq!(
        undo(sys(), "[Service]\nExecStartPre=chown 1:1 /srv/app\n"),
        0
    );
    assert_eq!(
        undo(sys(), "[Service]\nExecStartPost=chgrp 1 /srv/app/data/x\n"),
        1
    );
    assert_eq!(
        undo(sys(), "[Service]\nExecStartPre=chown -R 1:1 /srv/app2\n"),
        0
    );
    // A specifier is never guessed.
    assert_eq!(
        undo(sys(), "[Service]\nExecStartPre=chown -R 1:1 %S/app\n"),
        0
    );
    // Not a start line.
    assert_eq!(
        undo(sys(), "[Service]\nExecStop=chown -R 1:1 /srv/app\n"),
        0
    );
    // The compose project: as root, by WorkingDirectory; as the stack user it is fine.
    assert_eq!(
        undo(
            sys(),
            "[Service]\nWorkingDirectory=/srv/app\nExecStart=podman-compose up\n"
        ),
        1
    );
    assert_eq!(
        undo(
            sys(),
            "[Service]\nUser=stk-app\nExecStart=podman-compose -f /srv/app/compose.yml up\n"
        ),
        0
    );
    assert_eq!(
        undo(
            sys(),
            "[Service]\nUser=stk-app\nExecStart=+podman-compose -f /srv/app/compose.yml up\n"
        ),
        1
    );
    let alice = || Scope::User {
        user: "alice".into(),
    };
    assert_eq!(
        undo(alice(), "[Service]\nExecStart=podman-compose -p app up\n"),
        1
    );
    assert_eq!(
        judge(&unit(alice(), "[Service]\nExecStart=podman-compose -p app up\n"), &stack(), false)[0].fix,
        "stop it for good: `systemctl --user -M alice@ disable --now u.service`, and remove line 2 of /etc/systemd/system/u.service (then `systemctl --user -M alice@ daemon-reload`)"
    );
}

#[test]
fn the_scan_resolves_links_inside_the_root_and_never_out_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let mk = |p: &str, text: &str| {
        let p = r.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    mk(
        "nix/store/a-unit-legacy.service/legacy.service",
        "[Service]\nExecStartPre=/nix/store/b-pre/bin/pre\n",
    );
    mk(
        "nix/store/b-pre/bin/pre",
        "#!/bin/sh\nchown -R 1000:1000 /srv/app\n",
    );
    mk(
        "usr/lib/systemd/system/vendor.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    mk(
        "etc/systemd/system/vendor.service.d/10-x.conf",
        "[Service]\nExecStartPre=chown -R 1000 /srv/app\n",
    );
    mk("dev/null", ""); // a masked unit is empty (on a host: the null device, not regular)
    mk(
        "home/alice/elsewhere.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    std::fs::create_dir_all(r.join("home/alice/.config/systemd/user")).unwrap();
    // NixOS: an absolute link into the store, resolved below the root.
    symlink(
        "/nix/store/a-unit-legacy.service/legacy.service",
        r.join("etc/systemd/system/legacy.service"),
    )
    .unwrap();
    // A link climbing out of the root resolves to the root's own /etc/passwd (absent): skipped.
    symlink(
        "../../../../../../etc/passwd",
        r.join("etc/systemd/system/out.service"),
    )
    .unwrap();
    // Masked.
    symlink("/dev/null", r.join("etc/systemd/system/masked.service")).unwrap();
    // In the legacy user's directory no link is followed.
    symlink(
        "/home/alice/elsewhere.service",
        r.join("home/alice/.config/systemd/user/linked.service"),
    )
    .unwrap();
    mk(
        "home/alice/.config/systemd/user/own.service",
        "[Service]\nExecStart=podman-compose -p app up\n",
    );
    let s = scan(&Root::new(r), Some(("alice", Path::new("/home/alice"))));
    let names: Vec<(&str, &Scope)> = s
        .units
        .iter()
        .map(|u| (u.name.as_str(), &u.scope))
        .collect();
    assert_eq!(
        names,
        vec![
            ("legacy.service", &Scope::System),
            ("vendor.service", &Scope::System),
            (
                "own.service",
                &Scope::User {
                    user: "alice".into()
                }
            ),
        ]
    );
    let legacy = &s.units[0];
    assert_eq!(
        legacy.scripts.keys().collect::<Vec<_>>(),
        vec![Path::new("/nix/store/b-pre/bin/pre")]
    );
    let found: Vec<String> = judge(&s, &stack(), true).iter().map(|u| u.at()).collect();
    assert_eq!(
        found,
        vec![
            "/etc/systemd/system/legacy.service line 2, in /nix/store/b-pre/bin/pre line 2",
            "/etc/systemd/system/vendor.service.d/10-x.conf line 2",
            "/home/alice/.config/systemd/user/own.service line 2",
        ]
    );
}
