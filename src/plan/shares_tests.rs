//! Isolation in a whole plan over hand-built facts: shares and closing with host uids, what is
//! present, reopening, the refusal without POSIX ACLs, moved and dropped shares.
use super::{plan as full_plan, Options};
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::host::accounts::Accounts;
use crate::ids::SubidRange;
use crate::isolation::record::ClosedTop;
use crate::isolation::steps::{ClosureFacts, ShareFacts, TopFacts};
use crate::migration::MigrateMode;
use crate::observe::Observed;
use crate::plan::NoteKind;
use crate::policy::Policy;
use crate::state::{Allocation, Migration, MigrationPhase, StackRecord};
use std::path::Path;

const POLICY: &str = r#"
[stacks.a]
data = ["/srv/a"]
migrate = "reown"
[stacks.b]
data = ["/srv/b"]
migrate = "reown"
closed = false
[stacks.c]
data = ["/srv/c"]
migrate = "reown"
[shares.s]
path = "/srv/s"
write = ["a"]
read = ["b:1000"]
"#;

fn policy(text: &str) -> Policy {
    Policy::parse(Path::new("p.toml"), text).unwrap()
}

/// Everything applied for a, b and c; data migrated.
fn applied() -> Observed {
    let mut passwd = String::new();
    let mut group = String::from("stk-shared:x:900:stk-a,stk-b,stk-c\n");
    let mut subids = String::new();
    let mut o = Observed {
        nologin: "/usr/sbin/nologin".into(),
        ..Observed::default()
    };
    for (i, s) in ["a", "b", "c"].iter().enumerate() {
        let (uid, start) = (800 + i as u32, 200_000 + 65_536 * i as u32);
        passwd.push_str(&format!("stk-{s}:x:{uid}:{uid}::/h:/usr/sbin/nologin\n"));
        group.push_str(&format!("stk-{s}:x:{uid}:\n"));
        subids.push_str(&format!("stk-{s}:{start}:65536\n"));
        let a = Allocation {
            user: format!("stk-{s}"),
            uid,
            gid: uid,
            subids: SubidRange::new(start, 65_536).unwrap(),
        };
        let m = a.maps();
        o.state.stacks.insert(
            s.to_string(),
            StackRecord {
                migrations: vec![Migration {
                    path: format!("/srv/{s}").into(),
                    mode: MigrateMode::Reown,
                    from: m.clone(),
                    to: m,
                    phase: MigrationPhase::Done,
                    journal: "j".into(),
                }],
                allocation: a,
            },
        );
    }
    o.accounts = Accounts {
        passwd: parse_passwd(Path::new("/etc/passwd"), &passwd).unwrap(),
        group: parse_group(Path::new("/etc/group"), &group).unwrap(),
        subuid: parse_subid(Path::new("/etc/subuid"), &subids).unwrap(),
        subgid: parse_subid(Path::new("/etc/subgid"), &subids).unwrap(),
    };
    o
}

fn top(uid: u32, perm: u32) -> TopFacts {
    TopFacts {
        ino: 7,
        perm,
        uid,
        gid: uid,
        acl_access: None,
    }
}

fn opts() -> Options {
    Options::default()
}

#[test]
fn shares_and_closing_are_planned_with_host_uids_and_counts() {
    let mut o = applied();
    o.isolation.closures.insert(
        ("a".into(), "/srv/a".into()),
        Ok(ClosureFacts {
            top: top(800, 0o755),
            owners: [200_998].into(),
        }),
    );
    o.isolation.shares.insert(
        "s".into(),
        ShareFacts::Surveyed {
            inodes: 10,
            changes: 4,
        },
    );
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(
            lines,
            [
                "~ close /srv/a of a: other stacks get nothing (o-rwx on the top directory), --x there for the stack's host uids owning something inside: 200998",
                "~ share s at /srv/s: a write (host uid 800), b:1000 read (host uid 266535); 4 of 10 inodes change (ACL entries, default ACLs, mask; never more for another user's entry than it had; closed to other stacks)",
            ]
        );
    let notes: Vec<String> = p.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes.contains(
            &"- /srv/b of b stays open to other stacks (closed = false in the policy)".to_string()
        ),
        "{notes:?}"
    );
}

#[test]
fn a_closed_top_and_an_unchanged_share_are_present() {
    let mut o = applied();
    let closed = {
        let mut acl = crate::isolation::acl::Acl::from_mode(0o750);
        acl.users.insert(200_998, crate::isolation::acl::X);
        acl.recompute_mask();
        acl
    };
    o.isolation.closures.insert(
        ("a".into(), "/srv/a".into()),
        Ok(ClosureFacts {
            top: TopFacts {
                acl_access: Some(closed.encode()),
                ..top(800, closed.mode_bits())
            },
            owners: [200_998].into(),
        }),
    );
    o.isolation.shares.insert(
        "s".into(),
        ShareFacts::Surveyed {
            inodes: 10,
            changes: 0,
        },
    );
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    assert_eq!(p.steps, vec![]);
    let notes: Vec<String> = p.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .contains(&"= /srv/a closed to other stacks (entered by host uids 200998)".to_string()),
        "{notes:?}"
    );
    assert!(
        notes.contains(&"= share s at /srv/s: 10 inodes as the policy grants".to_string()),
        "{notes:?}"
    );
}

#[test]
fn opening_a_closed_stack_restores_it() {
    let mut o = applied();
    o.isolation.record.closed.insert(
        "b".into(),
        vec![ClosedTop {
            path: "/srv/b".into(),
            ino: 7,
            perm: 0o755,
            acl_access: None,
        }],
    );
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert!(lines.contains(
        &"~ reopen /srv/b of b as it was before isolate closed it (closed = false)".to_string()
    ));
}

#[test]
fn no_posix_acls_refuses_unless_group_mode_which_names_who_gains_access() {
    let mut o = applied();
    o.isolation
        .shares
        .insert("s".into(), ShareFacts::NoAcls("NFS".into()));
    let err = full_plan(&policy(POLICY), &o, &opts()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .starts_with("share `s`: /srv/s is on NFS, which keeps no POSIX ACLs"),
        "{err}"
    );
    let group = POLICY.replace(
        "read = [\"b:1000\"]",
        "read = [\"b:1000\"]\nmode = \"group\"",
    );
    o.isolation
        .shares
        .insert("s".into(), ShareFacts::GroupOnly { ready: false });
    let p = full_plan(&policy(&group), &o, &opts()).unwrap();
    let line = p.steps.last().unwrap().to_string();
    assert_eq!(
            line,
            "~ share s at /srv/s in group-only mode: group stk-shared must own it, with read and write \
             for the group and nothing for others (set on the file server; apply checks it and prints \
             the commands). Who then gains access: every member of stk-shared as a host user (stk-a, \
             stk-b, stk-c), and their containers only when run with --group-add keep-groups; no grant \
             can tell container uids apart"
        );
    o.isolation
        .shares
        .insert("s".into(), ShareFacts::GroupOnly { ready: true });
    let p = full_plan(&policy(&group), &o, &opts()).unwrap();
    assert_eq!(p.steps, vec![]);
    assert!(p.notes.iter().any(|n| n.kind == NoteKind::Present
            && n.message.starts_with("share s at /srv/s in group-only mode: group stk-shared owns it, others have nothing. Who then gains access: every member of stk-shared as a host user (stk-a, stk-b, stk-c)")));
}

#[test]
fn a_moved_share_is_taken_off_its_old_path_first_even_when_the_new_one_is_done() {
    let mut o = applied();
    o.isolation
        .record
        .share_trees
        .push(crate::isolation::record::ShareTree::new(
            "s",
            Path::new("/srv/old"),
            7,
        ));
    o.isolation.shares.insert(
        "s".into(),
        ShareFacts::Surveyed {
            inodes: 10,
            changes: 0,
        },
    );
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(
            lines,
            ["~ share s moves from /srv/old to /srv/s: isolate's entries leave it first (each inode \
              back as recorded, masks and the top's mode and ACL too); then share s at /srv/s: a \
              write (host uid 800), b:1000 read (host uid 266535); 0 of 10 inodes change (ACL \
              entries, default ACLs, mask; never more for another user's entry than it had; \
              closed to other stacks)"]
        );
    // Recorded at the policy's path: nothing to move, nothing to do.
    o.isolation.record.share_trees[0].path = "/srv/s".into();
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    assert_eq!(p.steps, vec![]);
}

#[test]
fn a_share_left_out_of_the_policy_is_reported() {
    let mut o = applied();
    o.isolation
        .record
        .share_trees
        .push(crate::isolation::record::ShareTree::new(
            "old",
            Path::new("/srv/old"),
            7,
        ));
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    assert!(p.notes.iter().any(|n| n.kind == NoteKind::Orphaned
            && n.message == "share `old` (/srv/old) is no longer in the policy; its ACL entries stay until `isolate rollback --share old` removes them"));
}

#[test]
fn an_untraversable_parent_is_reported() {
    let mut o = applied();
    o.isolation.untraversable.insert(
        ("c".into(), "/srv/c".into()),
        "uid 802 cannot enter /srv (owner 0:0, mode 0700)".into(),
    );
    let p = full_plan(&policy(POLICY), &o, &opts()).unwrap();
    assert!(p.notes.iter().any(|n| n.kind == NoteKind::Warning
            && n.message == "stack `c` cannot reach /srv/c: uid 802 cannot enter /srv (owner 0:0, mode 0700); isolate does not change parent directories"));
}
