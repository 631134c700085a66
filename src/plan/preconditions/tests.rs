//! Preconditions over hand-built facts (the judgement) and over a real temporary tree (the
//! observation).
use super::{allows, Who};
use crate::layout::Root;
use crate::plan::{preview, Options};
use crate::preconditions::*;
use std::path::{Path, PathBuf};

const SERVICE: &str = r#"legacy_owner = "alice"
[stacks.seed]
data = ["/srv/seed/db"]
migrate = "shift"
compose = ["/home/alice/seed/compose.yaml"]
env_files = ["/home/alice/seed/.env"]
service = true
"#;

fn n(path: &str, uid: u32, gid: u32, mode: u32, dir: bool) -> Node {
    Node {
        path: path.into(),
        uid,
        gid,
        mode,
        dir,
        acl: None,
    }
}

/// `/`, `/home`, the home of `mode`, the project directory, and a file in it.
fn read_of(kind: &str, file: &str, home_mode: u32, file_mode: u32) -> Read {
    Read {
        kind: kind.into(),
        path: format!("/home/alice/seed/{file}").into(),
        named_in: "/home/alice/seed/compose.yaml".into(),
        nodes: vec![
            n("/", 0, 0, 0o755, true),
            n("/home", 0, 0, 0o755, true),
            n("/home/alice", 1000, 1000, home_mode, true),
            n("/home/alice/seed", 1000, 1000, 0o755, true),
            n(
                &format!("/home/alice/seed/{file}"),
                1000,
                1000,
                file_mode,
                false,
            ),
        ],
        complete: true,
        missing: None,
    }
}

fn refusals_with(facts: Facts) -> Vec<String> {
    let mut o = crate::plan::tests::fresh();
    o.preconditions.insert("seed".into(), facts);
    let p = crate::policy::Policy::parse(std::path::Path::new("p.toml"), SERVICE).unwrap();
    let opts = Options {
        systemd: true,
        ..Options::default()
    };
    let (_, refusals) = preview(&p, &o, &opts).unwrap();
    refusals.0.into_iter().map(|r| r.text).collect()
}

fn found() -> Option<Command> {
    Some(Command {
        name: "podman-compose".into(),
        found: Some("/usr/bin/podman-compose".into()),
        searched: vec!["/usr/bin/podman-compose".into()],
    })
}

#[test]
fn a_home_of_mode_0700_is_named_with_its_fix() {
    let refusals = refusals_with(Facts {
        reads: vec![read_of("env file", "db.env", 0o700, 0o644)],
        command: found(),
    });
    let mine: Vec<&String> = refusals
        .iter()
        .filter(|r| r.contains("compose unit"))
        .collect();
    assert_eq!(
        mine,
        vec![&"stack `seed`: its compose unit runs as stk-seed and reads env file /home/alice/seed/db.env (named in /home/alice/seed/compose.yaml), but /home/alice (owner alice, mode 0700) does not let stk-seed through: `chmod o+x /home/alice` (or, for stk-seed alone, `setfacl -m u:70000:x /home/alice`), or move the project out of it".to_string()]
    );
    // 0711 lets it through; the file itself is readable.
    let refusals = refusals_with(Facts {
        reads: vec![read_of("env file", "db.env", 0o711, 0o644)],
        command: found(),
    });
    assert!(
        !refusals.iter().any(|r| r.contains("compose unit")),
        "{refusals:#?}"
    );
}

#[test]
fn an_unreadable_env_file_is_fine_when_apply_hands_it_over_and_named_otherwise() {
    let handed = refusals_with(Facts {
        reads: vec![read_of("env file", ".env", 0o755, 0o600)],
        command: found(),
    });
    assert!(
        !handed.iter().any(|r| r.contains("compose unit")),
        "{handed:#?}"
    );
    let other = refusals_with(Facts {
        reads: vec![read_of("env file", "db.env", 0o755, 0o600)],
        command: found(),
    });
    assert!(
        other.iter().any(|r| r.ends_with(
            "which stk-seed cannot read (a file, owner alice, mode 0600): name it in `env_files` of [stacks.seed] (apply hands it over to stk-seed)"
        )),
        "{other:#?}"
    );
}

#[test]
fn a_missing_compose_command_is_named() {
    let refusals = refusals_with(Facts {
        reads: Vec::new(),
        command: Some(Command {
            name: "podman-compose".into(),
            found: None,
            searched: UNIT_PATH
                .iter()
                .map(|d| Path::new(d).join("podman-compose"))
                .collect(),
        }),
    });
    assert!(refusals.contains(&"stack `seed`: its compose unit runs `podman-compose`, which is not installed (not in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin): install it (Debian: `apt install podman-compose`), or name the compose command with `compose_command` in [stacks.seed]".to_string()), "{refusals:#?}");
}

#[test]
fn acls_decide_as_the_kernel_does() {
    let who = Who {
        user: "stk-seed",
        uid: 70000,
        gids: vec![70000],
    };
    let mut home = n("/home/alice", 1000, 1000, 0o750, true);
    assert!(!allows(&home, &who, 1));
    // user::rwx, user:70000:--x, group::r-x, mask::r-x, other::---
    home.acl = Some(vec![
        AclEntry {
            tag: 0x01,
            perm: 7,
            id: u32::MAX,
        },
        AclEntry {
            tag: 0x02,
            perm: 1,
            id: 70000,
        },
        AclEntry {
            tag: 0x04,
            perm: 5,
            id: u32::MAX,
        },
        AclEntry {
            tag: 0x10,
            perm: 5,
            id: u32::MAX,
        },
        AclEntry {
            tag: 0x20,
            perm: 0,
            id: u32::MAX,
        },
    ]);
    assert!(allows(&home, &who, 1));
    assert!(!allows(&home, &who, 4));
    // A mask without x takes it away from the named entry.
    home.acl.as_mut().unwrap()[3].perm = 4;
    assert!(!allows(&home, &who, 1));
    let raw: Vec<u8> = [
        2u32.to_le_bytes().to_vec(),
        vec![2, 0, 1, 0],
        70000u32.to_le_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(
        parse_acl(&raw),
        Some(vec![AclEntry {
            tag: 2,
            perm: 1,
            id: 70000
        }])
    );
    assert_eq!(parse_acl(&raw[..7]), None);
}

#[test]
fn the_paths_compose_reads_in_place() {
    let copy = "services:\n  db:\n    image: x\n    env_file: [/p/db.env, {path: /p/opt.env}]\n  web:\n    build: {context: /p/web}\n    extends: {file: /p/base.yaml, service: w}\n    env_file: /p/db.env\n    volumes: [/srv/data:/data]\nsecrets:\n  s: {file: /p/secret}\n";
    let got: Vec<(String, String)> = paths::read_in_place(copy)
        .into_iter()
        .map(|(k, p)| (k, p.display().to_string()))
        .collect();
    let want: Vec<(String, String)> = [
        ("env file", "/p/db.env"),
        ("env file", "/p/opt.env"),
        ("build context", "/p/web"),
        ("extended compose file", "/p/base.yaml"),
        ("secret file", "/p/secret"),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn observation_walks_each_parent_and_stops_at_what_is_missing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("home/alice/seed")).unwrap();
    std::fs::set_permissions(r.join("home/alice"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(r.join("home/alice/seed/.env"), "A=1\n").unwrap();
    let root = Root::new(r);
    let (nodes, complete, missing) =
        crate::preconditions::walk_for_tests(&root, Path::new("/home/alice/seed/.env"));
    assert!(complete && missing.is_none());
    let seen: Vec<(String, u32)> = nodes
        .iter()
        .map(|n| (n.path.display().to_string(), n.mode))
        .collect();
    assert_eq!(seen[2], ("/home/alice".to_string(), 0o700));
    assert_eq!(seen.len(), 5);
    let (_, complete, missing) =
        crate::preconditions::walk_for_tests(&root, Path::new("/home/alice/gone/x.env"));
    assert!(!complete);
    assert_eq!(missing, Some(PathBuf::from("/home/alice/gone")));
}

#[test]
fn a_missing_share_is_refused_with_the_command_that_creates_it() {
    assert_eq!(
        crate::isolation::fs::missing_share("media", Path::new("/srv/media")),
        "share `media`: /srv/media does not exist; isolate does not create a share (a missing one is most often an unmounted disk or a typo): mount its filesystem, fix `path` in [shares.media], or create it empty with `install -d -o root -g root -m 0755 /srv/media`"
    );
}
