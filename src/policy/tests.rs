//! Exact error texts of the policy parser: what an admin sees for each mistake.
use super::*;

fn errors(text: &str) -> Vec<String> {
    match Policy::parse(Path::new("policy.toml"), text) {
        Err(Error::Policy(lines)) => lines,
        Err(e) => panic!("not a policy error: {e}"),
        Ok(_) => panic!("policy was accepted"),
    }
}

#[test]
fn a_good_policy_parses_with_defaults() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.immich]\ndata = [\"/srv/immich\"]\nmigrate = \"shift\"\nuid = 850\n\
         [shares.photos]\npath = \"/srv/photos\"\nread = [\"immich:1000\"]\nwrite = [\"immich\"]\n",
    )
    .unwrap();
    assert_eq!(p.user_prefix.value, "stk-");
    assert_eq!(p.stack_user("immich"), "stk-immich");
    assert_eq!(p.pools, Pools::default());
    let s = &p.stacks["immich"];
    assert_eq!(s.migrate.value, MigrateMode::Shift);
    assert_eq!(s.uid.as_ref().unwrap().value, 850);
    assert_eq!(
        p.shares["photos"].read[0].value,
        Grant {
            stack: "immich".into(),
            container_uid: Some(1000)
        }
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_position() {
    let text = r#"legacy_owner = "alice"
colour = "blue"
[pools]
subid_size = -1
[stacks.Immich]
data = ["srv/immich"]
[stacks.paperless]
data = ["/srv/paper", "/srv/paper/media"]
migrate = "move"
uid = 850
[stacks.jellyfin]
data = ["/srv/paper/jelly"]
uid = 850
bogus = 1
[shares.media]
path = "/srv/media"
read = ["nobody", "jellyfin:x"]
"#;
    assert_eq!(
        errors(text),
        vec![
            "policy.toml:2:1: unknown key `colour` in the policy's top level; expected one of: user_prefix, shared_group, legacy_owner, adopt, pools, stacks, shares",
            "policy.toml:4:14: `subid_size` must be a whole number from 0 to 4294967295",
            "policy.toml:5:9: stack name `Immich` gives user name \"stk-Immich\", which is not a valid user name (lower-case letters, digits, `_`, `-`; 32 bytes at most)",
            "policy.toml:6:9: \"srv/immich\" is a relative path; data and share paths must be absolute",
            "policy.toml:8:23: /srv/paper/media is inside /srv/paper, already listed for stack `paperless`",
            "policy.toml:9:11: `migrate` must be \"shift\", \"reown\" or \"auto\", not \"move\"",
            "policy.toml:12:9: data path /srv/paper/jelly of stack `jellyfin` is inside /srv/paper, the data of stack `paperless`",
            "policy.toml:13:7: uid 850 is pinned for both `jellyfin` and `paperless`",
            "policy.toml:14:1: unknown key `bogus` in [stacks.jellyfin]; expected one of: data, migrate, uid, subid_start, outside_hardlinks, closed, compose, project, env_files, images, service, compose_command, reaches, limits",
            "policy.toml:17:9: share `media` names stack `nobody`, which the policy does not define",
            "policy.toml:17:19: \"jellyfin:x\": expected `stack` or `stack:container_uid` with a numeric uid",
        ]
    );
}

#[test]
fn syntax_errors_carry_their_position() {
    let e = errors("[stacks.a\ndata = [\"/srv/a\"]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("policy.toml:1:"), "{}", e[0]);
    assert!(e[0].contains("TOML syntax"), "{}", e[0]);
}

#[test]
fn pins_overlapping_each_other_and_system_paths() {
    let text = "[pools]\nsubid_size = 1000\n[stacks.a]\ndata = [\"/etc\"]\nmigrate = \"reown\"\nsubid_start = 300000\n\
                [stacks.b]\ndata = [\"/srv/b/\"]\nmigrate = \"reown\"\nsubid_start = 300500\nuid = 300100\n";
    assert_eq!(
        errors(text),
        vec![
            "policy.toml:4:9: \"/etc\" belongs to the system: isolate never gives it to a stack",
            "policy.toml:8:9: \"/srv/b/\" is not in normal form (no `.`, `..`, `//` or trailing `/`)",
            "policy.toml:10:15: subordinate range 300500-301499 of `b` overlaps 300000-300999 pinned for `a`",
            "policy.toml:11:7: uid 300100 of `b` lies inside the subordinate range 300000-300999 pinned for `a`",
        ]
    );
}

#[test]
fn shift_without_a_legacy_owner_is_explained() {
    assert_eq!(
        errors("[stacks.a]\ndata = [\"/srv/a\"]\nmigrate = \"shift\"\n"),
        vec!["policy.toml:3:11: stack `a` migrates by shift, which needs `legacy_owner` (the user whose containers own the data today)"]
    );
    assert_eq!(errors("[stacks.a]\nmigrate = \"reown\"\n"), vec!["policy.toml:1:9: stack `a` has no `data` list: name the directories its containers mount"]);
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncdé\nf", 8), (3, 1));
    assert_eq!(line_col("ab\ncdé\nf", 5), (2, 3));
}

#[test]
fn system_trees_are_refused_and_the_stacks_own_directories_are_not() {
    use super::validate::path_problem;
    use std::path::Path;
    for refused in [
        "/etc/ssh",
        "/etc",
        "/usr/local/bin",
        "/boot/efi",
        "/root/.ssh",
        "/var/log/journal",
        "/var/spool/cron",
        "/var/lib/containers/storage",
        "/var/lib/isolate/home/stk-a",
        "/run/user/1000",
        "/var/run/docker.sock",
        "/tmp/x",
        "/nix/store/abc",
        "/lib64",
        // Holds a system tree.
        "/var/lib",
        "/",
        // Tops whose own directories below them are fine.
        "/srv",
        "/mnt",
        "/opt",
        "/home",
    ] {
        assert!(path_problem(Path::new(refused)).is_some(), "{refused}");
    }
    for allowed in [
        "/srv/immich",
        "/mnt/media/photos",
        "/opt/stacks/web",
        "/data/paperless",
        "/var/lib/immich",
        "/home/alice/stacks/immich/data",
        "/etcetera/x",
        "/usrdata",
    ] {
        assert_eq!(path_problem(Path::new(allowed)), None, "{allowed}");
    }
}

#[test]
fn reaches_entries_are_checked_at_their_place() {
    let text = "[stacks.proxy]\ndata = []\nreaches = [\"backend:web:8080\", \"nope:web:80\", \"backend:web:99999\", \"proxy:x:1\"]\n\n[stacks.backend]\ndata = []\n";
    let err = Policy::parse(Path::new("p.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p.toml:3:32: `reaches` entry nope:web:80: there is no stack `nope`"),
        "{err}"
    );
    assert!(
        err.contains(
            "p.toml:3:47: `reaches` entry \"backend:web:99999\": port \"99999\" is not a TCP port"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "p.toml:3:68: `reaches` entry proxy:x:1: stack `proxy` reaches its own services"
        ),
        "{err}"
    );
    assert!(!err.contains("backend:web:8080"), "{err}");
    let ok = Policy::parse(Path::new("p.toml"), "[stacks.proxy]\ndata = []\nreaches = [\"backend:web:8080\"]\n[stacks.backend]\ndata = []\n").unwrap();
    assert!(ok.stacks["proxy"].reach_override && ok.stacks["backend"].reach_override);
    assert_eq!(
        ok.stacks["proxy"].reaches[0].value.to_string(),
        "backend:web:8080"
    );
}
