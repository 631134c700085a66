//! Root-run: a policy cannot hand the host to a stack. Data, share and env file paths in or
//! below system trees or people's homes, an existing group or user isolate did not create
//! (root, sudo, a user's own group), a stack user named like the shared group, and one env file
//! claimed by two stacks are all refused before anything changes: exit 2, every problem at once
//! with its file:line:column, and a byte-identical root.
mod hardening_common;
use hardening_common::{expect_code, text, Host};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};

/// Runs `apply --no-systemd` and `plan` on `h` with `policy`: both exit 2 with `stderr`
/// (`POLICY` stands for the policy's path) and the root stays as it was.
fn refused(h: &Host, policy: &str, stderr: &str) {
    h.policy(policy);
    let want = stderr.replace("POLICY", &h.policy_path().display().to_string());
    for args in [&["apply", "--no-systemd"][..], &["plan", "--no-systemd"]] {
        let before = h.snapshot();
        let out = h.run(args);
        expect_code(&out, 2);
        assert_eq!(text(&out.stderr), want, "{args:?}");
        assert_eq!(h.snapshot(), before, "{args:?} changed the root");
    }
}

/// alice's data the way a legacy rootless stack leaves it, plus bob (another person) and
/// carol (whose home is below /srv), and the host groups sudo, disk and media.
fn people() -> Host {
    let h = Host::new();
    h.write(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n\
          bob:x:1001:1001::/home/bob:/bin/bash\ncarol:x:1002:1002::/srv/people/carol:/bin/bash\n",
    );
    h.write(
        "etc/shadow",
        b"root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\nbob:*:19000:0:99999:7:::\n\
          carol:*:19000:0:99999:7:::\n",
    );
    h.write(
        "etc/group",
        b"root:x:0:\ndisk:x:6:\nsudo:x:27:bob\nalice:x:1000:\nbob:x:1001:\ncarol:x:1002:\n\
          media:x:1010:bob\n",
    );
    h.write(
        "etc/gshadow",
        b"root:*::\ndisk:*::\nsudo:*::bob\nalice:!::\nbob:!::\ncarol:!::\nmedia:!::bob\n",
    );
    for f in ["etc/shadow", "etc/gshadow"] {
        fs::set_permissions(h.root().join(f), fs::Permissions::from_mode(0o640)).unwrap();
    }
    for (dir, id) in [
        ("home/alice/stacks/immich/data", 1000),
        ("home/bob/photos", 1001),
        ("srv/people/carol", 1002),
    ] {
        fs::create_dir_all(h.root().join(dir)).unwrap();
        chown(h.root().join(dir), Some(id), Some(id)).unwrap();
    }
    chown(h.root().join("home/bob"), Some(1001), Some(1001)).unwrap();
    h.legacy_data("srv/app", 2, 2);
    h
}

#[test]
fn system_trees_are_refused_with_their_positions() {
    let h = people();
    for d in [
        "etc/ssh",
        "etc/systemd/system",
        "root/.ssh",
        "usr/local/bin",
        "boot/grub",
        "var/log",
        "var/spool/cron",
        "var/lib/containers",
    ] {
        fs::create_dir_all(h.root().join(d)).unwrap();
    }
    h.write("etc/ssh/ssh_host_ed25519_key", b"secret\n");
    refused(
        &h,
        r#"legacy_owner = "alice"
[stacks.app]
data = ["/etc/ssh", "/etc/systemd/system", "/root/.ssh", "/usr/local/bin",
        "/boot/grub", "/var/log", "/var/spool/cron", "/var/lib/containers", "/run/user/1000"]
env_files = ["/etc/ssh/ssh_host_ed25519_key", "/var/lib/isolate/state.json"]
[shares.media]
path = "/usr/share/media"
read = ["app"]
"#,
        "isolate: POLICY:3:9: \"/etc/ssh\" is inside /etc, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:3:21: \"/etc/systemd/system\" is inside /etc, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:3:44: \"/root/.ssh\" is inside /root, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:3:58: \"/usr/local/bin\" is inside /usr, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:4:9: \"/boot/grub\" is inside /boot, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:4:23: \"/var/log\" belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:4:35: \"/var/spool/cron\" is inside /var/spool, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:4:54: \"/var/lib/containers\" belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:4:77: \"/run/user/1000\" is inside /run, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:5:14: env file \"/etc/ssh/ssh_host_ed25519_key\" is inside /etc, which belongs to the system: isolate never gives it to a stack\n\
         isolate: POLICY:5:47: env file \"/var/lib/isolate/state.json\" is a file isolate never hands to a stack\n\
         isolate: POLICY:7:8: \"/usr/share/media\" is inside /usr, which belongs to the system: isolate never gives it to a stack\n",
    );
}

#[test]
fn homes_of_people_are_refused_but_the_legacy_users_data_dirs_are_not() {
    let h = people();
    refused(
        &h,
        r#"legacy_owner = "alice"
[stacks.app]
data = ["/home/alice", "/home/bob/photos", "/srv/people"]
env_files = ["/home/bob/.env"]
[stacks.immich]
data = []
[shares.photos]
path = "/home/bob/shared"
read = ["immich"]
"#,
        "isolate: POLICY:3:9: \"/home/alice\" is the home directory of user alice (the legacy owner): name the stack's own directories below it\n\
         isolate: POLICY:3:24: \"/home/bob/photos\" is inside /home/bob, the home directory of user bob: isolate never gives a person's files to a stack (if bob's containers own them, make bob the legacy_owner)\n\
         isolate: POLICY:3:44: \"/srv/people\" holds /srv/people/carol, the home directory of user carol: isolate never gives a person's files to a stack\n\
         isolate: POLICY:4:14: env file \"/home/bob/.env\" is inside /home/bob, the home directory of user bob: isolate never gives a person's files to a stack (if bob's containers own them, make bob the legacy_owner)\n\
         isolate: POLICY:8:8: \"/home/bob/shared\" is inside /home/bob, the home directory of user bob: isolate never gives a person's files to a stack (if bob's containers own them, make bob the legacy_owner)\n",
    );

    // The legacy user's own data directories stay allowed (below directories only root can
    // write, as every data path).
    chown(h.root().join("home/alice"), Some(0), Some(0)).unwrap();
    h.policy(
        "legacy_owner = \"alice\"\n[stacks.immich]\ndata = [\"/home/alice/stacks/immich/data\"]\n",
    );
    expect_code(&h.run(&["plan", "--no-systemd"]), 0);
}

#[test]
fn an_existing_group_isolate_did_not_create_is_never_the_shared_group_unasked() {
    let h = people();
    for (group, adopt, why) in [
        (
            "sudo",
            "",
            "the existing group sudo (gid 27), a privileged group",
        ),
        (
            "disk",
            "",
            "the existing group disk (gid 6), a privileged group",
        ),
        (
            "alice",
            "",
            "the existing group alice (gid 1000), the primary group of user alice",
        ),
        // Naming it in `adopt` does not change that.
        (
            "sudo",
            "adopt = [\"sudo\"]\n",
            "the existing group sudo (gid 27), a privileged group",
        ),
    ] {
        refused(
            &h,
            &format!(
                "shared_group = \"{group}\"\n{adopt}legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\n"
            ),
            &format!(
                "isolate: POLICY:1:16: shared_group \"{group}\" is {why}, which isolate did not create: stack users never join it; name a group that does not exist yet and isolate creates it\n"
            ),
        );
    }
    let media =
        "shared_group = \"media\"\nlegacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\n";
    refused(
        &h,
        media,
        "isolate: POLICY:1:16: shared_group \"media\" is the existing group media (gid 1010), which isolate did not create: to have every stack user join it, add adopt = [\"media\"]; or name a group that does not exist yet and isolate creates it\n",
    );
    // Named in `adopt`, an ordinary group is taken as it is.
    h.policy(&format!("adopt = [\"media\"]\n{media}"));
    let out = h.run(&["apply", "--no-systemd"]);
    expect_code(&out, 0);
    let group = fs::read_to_string(h.root().join("etc/group")).unwrap();
    assert!(group.contains("media:x:1010:bob,stk-app\n"), "{group}");
    assert!(group.contains("sudo:x:27:bob\n"), "{group}");
    // And again: nothing to do, no refusal.
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
}

#[test]
fn the_shared_group_isolate_created_stays_its_own() {
    let h = people();
    h.policy("legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\n");
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
    let again = h.run(&["plan", "--no-systemd"]);
    expect_code(&again, 0);
    assert!(
        text(&again.stdout).contains("= group stk-shared (gid "),
        "{}",
        text(&again.stdout)
    );
    // apply recorded the group it created with the gid groupadd chose.
    let state_file = h.root().join("var/lib/isolate/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(state["shared_group"]["name"], "stk-shared");
    // A group an earlier isolate made without recording it holds only recorded stack users:
    // still isolate's own.
    state.as_object_mut().unwrap().remove("shared_group");
    fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    expect_code(&h.run(&["plan", "--no-systemd"]), 0);
}

#[test]
fn an_existing_user_isolate_did_not_create_is_never_a_stack_user_unasked() {
    let h = people();
    let policy = "user_prefix = \"\"\nlegacy_owner = \"alice\"\n[stacks.root]\ndata = [\"/srv/app\"]\n[stacks.bob]\ndata = []\n[stacks.carol]\ndata = []\n[stacks.disk]\ndata = []\n";
    let root = "isolate: POLICY:3:9: stack `root` gives user name \"root\": the existing user root (uid 0) is root, which isolate did not create: a stack never takes it over; rename the stack or change user_prefix\n";
    let bob = "isolate: POLICY:5:9: stack `bob` gives user name \"bob\": the existing user bob (uid 1001) is a member of group sudo (gid 27), a privileged group, which isolate did not create: a stack never takes it over; rename the stack or change user_prefix\n";
    let disk = "isolate: POLICY:9:9: stack `disk` gives user name \"disk\", but the group disk (gid 6) exists already and isolate did not create it: the stack user's own group would be that group; rename the stack or change user_prefix\n";
    refused(
        &h,
        policy,
        &format!("{root}{bob}isolate: POLICY:7:9: stack `carol` gives user name \"carol\": the existing user carol (uid 1002) was not created by isolate: to make it this stack's user, add adopt = [\"carol\"]; or rename the stack or change user_prefix\n{disk}"),
    );
    // `adopt` takes over an ordinary account, never root or a member of a privileged group.
    refused(
        &h,
        &format!("adopt = [\"root\", \"bob\", \"carol\"]\n{policy}"),
        &format!("{root}{bob}{disk}")
            .replace(":3:9:", ":4:9:")
            .replace(":5:9:", ":6:9:")
            .replace(":9:9:", ":10:9:"),
    );
}

#[test]
fn a_stack_user_named_like_the_shared_group_or_the_legacy_owner_is_refused() {
    let h = people();
    refused(
        &h,
        "legacy_owner = \"alice\"\n[stacks.shared]\ndata = [\"/srv/app\"]\n",
        "isolate: POLICY:2:9: stack `shared` gives user name \"stk-shared\", the name of shared_group: its own group would be the shared group; rename the stack, or change shared_group or user_prefix\n",
    );
    refused(
        &h,
        "user_prefix = \"\"\nlegacy_owner = \"alice\"\n[stacks.alice]\ndata = [\"/srv/app\"]\n",
        "isolate: POLICY:3:9: stack `alice` gives user name \"alice\", the legacy owner: the legacy owner never becomes a stack user; rename the stack or change user_prefix\n",
    );
}

#[test]
fn one_env_file_in_two_stacks_is_refused_with_both_positions() {
    let h = people();
    for f in ["srv/shared.env", "srv/app/d0/db.env", "srv/media/.env"] {
        h.write(f, b"SECRET=1\n");
        chown(h.root().join(f), Some(1000), Some(1000)).unwrap();
    }
    refused(
        &h,
        r#"legacy_owner = "alice"
[stacks.a]
data = []
env_files = ["/srv/shared.env", "/srv/media/.env"]
[stacks.b]
data = []
env_files = ["/srv/shared.env", "/srv/app/d0/db.env"]
[stacks.app]
data = ["/srv/app"]
[shares.media]
path = "/srv/media"
read = ["app"]
"#,
        "isolate: POLICY:4:14: env file /srv/shared.env is also stack `b`'s (POLICY:7:14): a file has one owner; give each stack its own copy\n\
         isolate: POLICY:4:33: env file /srv/media/.env is inside share `media` (/srv/media), which other stacks reach: keep secrets out of shares\n\
         isolate: POLICY:7:14: env file /srv/shared.env is also stack `a`'s (POLICY:4:14): a file has one owner; give each stack its own copy\n\
         isolate: POLICY:7:33: env file /srv/app/d0/db.env is inside /srv/app, the data of stack `app`: a file has one owner; keep a stack's env files apart from other stacks' data\n",
    );
}
