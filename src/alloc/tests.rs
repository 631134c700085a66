//! Allocation: exact errors for pins against the host, and properties (no overlap, stable
//! across runs, pins respected) over random hosts.
use super::*;
use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
use crate::state::StackRecord;
use proptest::prelude::*;
use std::path::Path;

fn host(passwd: &str, group: &str, subuid: &str, subgid: &str) -> Accounts {
    Accounts {
        passwd: parse_passwd(Path::new("/etc/passwd"), passwd).unwrap(),
        group: parse_group(Path::new("/etc/group"), group).unwrap(),
        subuid: parse_subid(Path::new("/etc/subuid"), subuid).unwrap(),
        subgid: parse_subid(Path::new("/etc/subgid"), subgid).unwrap(),
    }
}

fn homelab() -> Accounts {
    host(
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nsvc:x:70000:70000::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n",
        "root:x:0:\nalice:x:1000:\nsvc:x:70000:\nlp:x:70001:\n",
        "alice:100000:65536\n",
        "alice:100000:65536\n",
    )
}

/// Where the default pool starts (0x70000000).
const FIRST: u32 = 0x7000_0000;

fn policy(text: &str) -> Policy {
    Policy::parse(Path::new("p.toml"), text).unwrap()
}

fn errors(p: &Policy, acc: &Accounts, state: &State) -> Vec<String> {
    match allocate(p, acc, state, &[]) {
        Err(Error::Policy(l)) | Err(Error::HostState(l)) => l,
        other => panic!("{other:?}"),
    }
}

#[test]
fn new_stacks_get_the_lowest_free_ids_in_name_order() {
    let p = policy("legacy_owner = \"alice\"\n[stacks.b]\ndata = []\n[stacks.a]\ndata = []\n");
    let got = allocate(&p, &homelab(), &State::default(), &[]).unwrap();
    let a = &got["a"].allocation;
    let b = &got["b"].allocation;
    // The pool's 70000 and 70001 are taken by svc and the group lp.
    assert_eq!(
        (a.uid, a.gid, a.subids),
        (70_002, 70_002, SubidRange::new(FIRST, 65_536).unwrap())
    );
    assert_eq!((b.uid, b.subids.start), (70_003, FIRST + 65_536));
    assert_eq!(a.user, "stk-a");
    assert_eq!(got["a"].source, Source::New);
}

#[test]
fn pins_against_the_host_are_reported_with_positions() {
    let p = policy(
        "legacy_owner = \"bob\"\n[stacks.a]\ndata = []\nuid = 1000\n[stacks.b]\ndata = []\nsubid_start = 150000\n[stacks.c]\ndata = []\nsubid_start = 2000\n",
    );
    assert_eq!(
        errors(&p, &homelab(), &State::default()),
        vec![
            "p.toml:1:16: legacy owner `bob` does not exist in the host's passwd",
            "p.toml:4:7: uid 1000 of stack `a` is already taken by user `alice`",
            "p.toml:7:15: subordinate range 150000-215535 of stack `b` overlaps the range of `alice` at /etc/subuid:1",
            "p.toml:10:15: subordinate range 2000-67535 of stack `c` overlaps user `nobody`",
        ]
    );
}

#[test]
fn a_recorded_allocation_never_moves_and_is_never_reused() {
    let p = policy(&format!(
        "[stacks.a]\ndata = []\n[stacks.b]\ndata = []\nuid = 900\nsubid_start = {}\n",
        FIRST + 100_000
    ));
    let mut state = State::default();
    state.stacks.insert(
        "gone".into(),
        StackRecord {
            allocation: Allocation {
                user: "stk-gone".into(),
                uid: 70_002,
                gid: 70_002,
                subids: SubidRange::new(FIRST, 65_536).unwrap(),
            },
            migrations: vec![],
        },
    );
    let got = allocate(&p, &homelab(), &state, &[]).unwrap();
    // `gone` left the policy, but its ids stay its own.
    assert_eq!(got["a"].allocation.uid, 70_003);
    // FIRST + 65536 would run into b's pinned FIRST + 100000.
    assert_eq!(got["a"].allocation.subids.start, FIRST + 165_536);
    assert_eq!(
        (got["b"].allocation.uid, got["b"].allocation.subids.start),
        (900, FIRST + 100_000)
    );

    for (n, a) in &got {
        state.stacks.insert(
            n.clone(),
            StackRecord {
                allocation: a.allocation.clone(),
                migrations: vec![],
            },
        );
    }
    let again = allocate(&p, &homelab(), &state, &[]).unwrap();
    assert!(again.values().all(|a| a.source == Source::Recorded));
    assert_eq!(again["a"].allocation, got["a"].allocation);

    let moved = policy("[stacks.a]\ndata = []\nuid = 850\n");
    assert_eq!(
        errors(&moved, &homelab(), &state),
        vec!["p.toml:3:7: stack `a` already has uid 70003 (recorded in the state file); isolate never moves an allocation: remove the pin or set it to 70003"]
    );
}

#[test]
fn overlapping_host_lines_refuse_allocation() {
    let acc = host(
        "alice:x:1000:1000::/:/bin/sh\n",
        "",
        "alice:100000:65536\nalice:100000:65536\n",
        "alice:100000:65536\n",
    );
    let p = policy("[stacks.a]\ndata = []\n");
    assert_eq!(
        errors(&p, &acc, &State::default()),
        vec!["/etc/subuid:1 (alice:100000-165535) and line 2 (alice:100000-165535) overlap: newuidmap refuses a user whose ranges overlap (EINVAL), and a new range cannot be proven free; remove or fix one of them"]
    );
}

#[test]
fn an_existing_stack_user_is_adopted_when_the_policy_names_it() {
    let acc = host(
        "stk-a:x:1950:1951::/:/bin/false\n",
        "stk-a:x:1951:\n",
        "stk-a:500000:65536\n",
        "1950:500000:65536\n",
    );
    let p = policy("[stacks.a]\ndata = []\n");
    assert_eq!(
        errors(&p, &acc, &State::default()),
        vec!["p.toml:1:9: stack `a` gives user name \"stk-a\": the existing user stk-a (uid 1950) was not created by isolate: to make it this stack's user, add adopt = [\"stk-a\"]; or rename the stack or change user_prefix"]
    );
    let p = policy("adopt = [\"stk-a\"]\n[stacks.a]\ndata = []\n");
    let got = allocate(&p, &acc, &State::default(), &[]).unwrap();
    assert_eq!(got["a"].source, Source::Adopted);
    assert_eq!(
        (
            got["a"].allocation.uid,
            got["a"].allocation.gid,
            got["a"].allocation.subids.start
        ),
        (1950, 1951, 500_000)
    );
}

#[test]
fn selection_allocates_only_the_named_stacks_but_respects_other_pins() {
    let p = policy(&format!(
        "[stacks.a]\ndata = []\nsubid_start = {FIRST}\n[stacks.b]\ndata = []\n"
    ));
    let got = allocate(&p, &homelab(), &State::default(), &["b".to_string()]).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["b"]);
    assert_eq!(got["b"].allocation.subids.start, FIRST + 65_536);
}

/// Users' uids, subuid lines (start, count), how many stacks, and which of them pin a range.
type HostShape = (Vec<u32>, Vec<(u32, u32)>, usize, Vec<Option<u32>>);

fn arb_host() -> impl Strategy<Value = HostShape> {
    (
        proptest::collection::vec(790u32..910, 0..40),
        proptest::collection::vec((150_000u32..700_000, 1u32..120_000), 0..6),
        1usize..6,
        proptest::collection::vec(proptest::option::of(0u32..8), 6),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn allocations_never_overlap_anything_and_are_stable((uids, ranges, nstacks, pins) in arb_host()) {
        // Host: users at `uids`, non-overlapping subuid lines built from `ranges`.
        let mut passwd = String::new();
        for (i, u) in uids.iter().enumerate() {
            passwd.push_str(&format!("u{i}:x:{u}:{u}::/:/bin/sh\n"));
        }
        let mut lines: Vec<SubidRange> = Vec::new();
        for (s, c) in ranges {
            let r = SubidRange::new(s, c).unwrap();
            if lines.iter().all(|l| !l.overlaps(&r)) { lines.push(r); }
        }
        let subuid: String = lines.iter().enumerate().map(|(i, r)| format!("u{i}:{}:{}\n", r.start, r.count)).collect();
        let acc = host(&passwd, "", &subuid, &subuid);
        let mut text = String::from("[pools]\nuid_first = 800\nuid_last = 999\nsubid_size = 65536\n");
        for (i, pin) in pins.iter().enumerate().take(nstacks) {
            text.push_str(&format!("[stacks.s{i}]\ndata = []\n"));
            if let Some(k) = pin { text.push_str(&format!("subid_start = {}\n", 1_000_000 + 70_000 * (u64::from(*k) * 7 + i as u64))); }
        }
        let p = policy(&text);
        let got = match allocate(&p, &acc, &State::default(), &[]) {
            Ok(g) => g,
            Err(_) => return Ok(()), // a full uid pool is a legitimate refusal
        };
        let allocs: Vec<&Allocation> = got.values().map(|a| &a.allocation).collect();
        for (i, a) in allocs.iter().enumerate() {
            prop_assert!(a.subids.end() <= ID_CEILING);
            prop_assert!(!uids.contains(&a.uid));
            prop_assert!(lines.iter().all(|l| !l.overlaps(&a.subids) && !l.contains(a.uid)));
            prop_assert!(uids.iter().all(|u| !a.subids.contains(*u)));
            for b in &allocs[i + 1..] {
                prop_assert!(!a.subids.overlaps(&b.subids));
                prop_assert!(a.uid != b.uid);
            }
        }
        for (name, a) in &got {
            if let Some(pin) = &p.stacks[name].subid_start {
                prop_assert_eq!(a.allocation.subids.start, pin.value);
            }
        }
        // Stable: the same inputs give the same answer, and recording it changes nothing.
        let again = allocate(&p, &acc, &State::default(), &[]).unwrap();
        prop_assert_eq!(&again, &got);
        let mut state = State::default();
        for (n, a) in &got {
            state.stacks.insert(n.clone(), StackRecord { allocation: a.allocation.clone(), migrations: vec![] });
        }
        let recorded = allocate(&p, &acc, &state, &[]).unwrap();
        for (n, a) in &recorded {
            prop_assert_eq!(&a.allocation, &got[n].allocation);
        }
    }
}

#[test]
fn ranges_recorded_under_the_old_default_pool_stay_where_they_are() {
    // A host applied before the pool moved: immich holds 200000 in the state file and in
    // /etc/subuid. It keeps that range; only a new stack comes from the new pool.
    let p = policy(
        "adopt = [\"stk-immich\"]\n[stacks.immich]\ndata = []\n[stacks.paperless]\ndata = []\n",
    );
    let mut acc = homelab();
    acc.passwd.extend(
        parse_passwd(
            Path::new("/etc/passwd"),
            "stk-immich:x:802:802::/var/lib/isolate/home/stk-immich:/bin/false\n",
        )
        .unwrap(),
    );
    acc.subuid = parse_subid(
        Path::new("/etc/subuid"),
        "alice:100000:65536\nstk-immich:200000:65536\n",
    )
    .unwrap();
    acc.subgid = acc.subuid.clone();
    let mut state = State::default();
    let old = Allocation {
        user: "stk-immich".into(),
        uid: 802,
        gid: 802,
        subids: SubidRange::new(200_000, 65_536).unwrap(),
    };
    state.stacks.insert(
        "immich".into(),
        StackRecord {
            allocation: old.clone(),
            migrations: vec![],
        },
    );
    let got = allocate(&p, &acc, &state, &[]).unwrap();
    assert_eq!(got["immich"].allocation, old);
    assert_eq!(got["immich"].source, Source::Recorded);
    assert_eq!(got["paperless"].allocation.subids.start, FIRST);

    // Without the state file, an existing stack user isolate made (its home is isolate's, its
    // uid from the pool) is adopted when the policy names it, and its one range is not moved.
    let got = allocate(&p, &acc, &State::default(), &[]).unwrap();
    assert_eq!(got["immich"].allocation, old);
    assert_eq!(got["immich"].source, Source::Adopted);
}

/// Issue 20: with the default pool, a new stack's uid is one journald gives its own journal
/// (`podman logs` works), and one no other allocator of the host hands out: not shadow's system
/// (100-999) or normal (1000-60000) ranges, not NixOS's (400-999 system, 1000-29999 normal, Nix
/// build users from 30001), not Debian's globally allocated 60000-64999, not systemd's homed,
/// greeter, nspawn --bind-user, DynamicUser or nobody ids (60001-65535), below the subordinate
/// ranges shadow and NixOS hand out from 100000.
#[test]
fn the_default_pool_gives_uids_podman_logs_works_for_and_no_allocator_hands_out() {
    let pools = crate::policy::Pools::default();
    let pool = u64::from(pools.uid_first)..=u64::from(pools.uid_last);
    let foreign: [(&str, std::ops::RangeInclusive<u64>); 4] = [
        ("system users (journald's system journal)", 0..=999),
        (
            "shadow's UID_MIN..UID_MAX, NixOS's normal users, Nix build users",
            1000..=60000,
        ),
        (
            "Debian's global ids and systemd's reserved ids",
            60001..=65535,
        ),
        (
            "shadow's and NixOS's subordinate ranges",
            100_000..=600_100_000,
        ),
    ];
    for (who, r) in foreign {
        assert!(
            pool.end() < r.start() || pool.start() > r.end(),
            "default pool {pool:?} overlaps {r:?}: {who}"
        );
    }
    let p = policy("legacy_owner = \"alice\"\n[stacks.a]\ndata = []\n");
    let got = allocate(&p, &homelab(), &State::default(), &[]).unwrap();
    let a = &got["a"].allocation;
    assert!(a.uid >= crate::alloc::FIRST_USER_JOURNAL_UID, "{a:?}");
    assert_eq!(
        (a.uid, a.gid),
        (pools.uid_first + 2, pools.uid_first + 2),
        "after svc and lp"
    );
}

/// A stack user an earlier isolate made from the old default pool (800-899), whose state file
/// is gone, is still isolate's own to adopt, not "a system account": the pool moved, the user
/// did not.
#[test]
fn a_user_made_from_the_old_default_pool_is_still_isolates_own() {
    let acc = host(
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nstk-a:x:805:805:isolate stack a:/var/lib/isolate/home/stk-a:/usr/sbin/nologin\n",
        "root:x:0:\nalice:x:1000:\nstk-a:x:805:\n",
        "alice:100000:65536\n",
        "alice:100000:65536\n",
    );
    let p = policy("adopt = [\"stk-a\"]\n[stacks.a]\ndata = []\n");
    let got = allocate(&p, &acc, &State::default(), &[]).unwrap();
    assert_eq!(got["a"].source, Source::Adopted);
    assert_eq!(got["a"].allocation.uid, 805);
    // One with a person's home at the same uid is not.
    let person = host(
        "root:x:0:0::/root:/bin/sh\nstk-a:x:805:805::/home/stk-a:/bin/sh\n",
        "root:x:0:\nstk-a:x:805:\n",
        "",
        "",
    );
    assert!(errors(&p, &person, &State::default())[0].contains("a system account (uid below 1000)"));
}

/// Issue 24: a rootful legacy owner (`legacy_owner = "root"`) is the identity mapping: host id N
/// is container id N, for container ids 0 to the pool's range size (the stack's mapping), and
/// nothing of it overlaps a stack allocated from the pools.
#[test]
fn a_rootful_legacy_owner_is_the_identity_mapping_over_the_stacks_container_ids() {
    let p = policy("legacy_owner = \"root\"\n[stacks.a]\ndata = []\n");
    let acc = homelab();
    let legacy = legacy_maps(&p, &acc).unwrap();
    for id in [0, 1, 33, 999, 65_536] {
        assert_eq!(legacy.uid.to_container(id), Some(id), "uid {id}");
        assert_eq!(legacy.gid.to_container(id), Some(id), "gid {id}");
    }
    assert_eq!(
        legacy.uid.to_container(65_537),
        None,
        "beyond the stack's mapping"
    );
    let a = allocate(&p, &acc, &State::default(), &[]).unwrap()["a"]
        .allocation
        .maps();
    assert!(!legacy.overlaps(&a));
    let shift = crate::ids::Shift {
        from: legacy,
        to: a.clone(),
    };
    assert_eq!(shift.uid(999), a.uid.to_host(999));
    assert_eq!(shift.uid(0), Some(a.uid.root));
    assert_eq!(shift.gid(33), a.gid.to_host(33));
    assert_eq!(shift.uid(70_000), None);
}
