//! Closed stack data, pure: a migrated data path's top directory loses every permission for
//! "other", and each of the stack's own host uids that owns something inside gets a `--x`
//! named entry there, so no uid outside the stack can enter while every container user of
//! the stack that has files inside still reaches them. Only the top directory changes.
use super::acl::{Acl, X};
use super::grants::OwnedIds;
use crate::ids::IdMaps;
use std::collections::BTreeSet;

/// What closing needs to know about one data path.
#[derive(Clone, Debug)]
pub struct Closing<'a> {
    /// The stack's own mapping.
    pub stack: &'a IdMaps,
    /// Every other stack's mapping: their named entries on the top are removed.
    pub others: &'a OwnedIds,
    /// Host uids of the stack's mapping found owning something below the top.
    pub owners: &'a BTreeSet<u32>,
    /// The shared group's gid: if the top belongs to it, the group entry gives nothing.
    pub shared_gid: Option<u32>,
}

/// The top directory as it is.
#[derive(Clone, Copy, Debug)]
pub struct Top<'a> {
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub access: Option<&'a [u8]>,
}

/// The access ACL the top must have to be closed; None when it already is.
pub fn closed_top(c: &Closing<'_>, top: &Top<'_>) -> Option<Acl> {
    let current = Acl::access_of(top.perm, top.access);
    let mut acl = current.clone();
    acl.other = 0;
    if Some(top.gid) == c.shared_gid {
        acl.group_obj = 0;
    }
    let before = acl.users.len() + acl.groups.len();
    let stack = c.stack;
    acl.users
        .retain(|id, _| stack.uid.contains_host(*id) || !c.others.uid(*id));
    acl.groups
        .retain(|id, _| stack.gid.contains_host(*id) || !c.others.gid(*id));
    let removed = before != acl.users.len() + acl.groups.len();
    let entering: Vec<u32> = c.owners.iter().copied().filter(|u| *u != top.uid).collect();
    let ours = removed || !entering.is_empty();
    if ours {
        // The mask is recomputed below: the entries kept may use what it let them use, no more.
        acl.cap_to_mask();
    }
    for uid in entering {
        *acl.users.entry(uid).or_insert(0) |= X;
    }
    if ours {
        acl.recompute_mask();
    }
    (acl != current).then_some(acl)
}

/// The uids of a closed top's named entries (for status and plan).
pub fn entered_by(c: &Closing<'_>, top_uid: u32) -> Vec<u32> {
    c.owners.iter().copied().filter(|u| *u != top_uid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Mapping, SubidRange};

    fn maps(root: u32, start: u32) -> IdMaps {
        let m = Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()]);
        IdMaps {
            uid: m.clone(),
            gid: m,
        }
    }

    #[test]
    fn other_is_shut_and_the_stacks_owners_may_enter() {
        let (a, b) = (maps(800, 200_000), maps(801, 265_536));
        let others = OwnedIds::new([&b]);
        let owners: BTreeSet<u32> = [800, 200_998].into();
        let c = Closing {
            stack: &a,
            others: &others,
            owners: &owners,
            shared_gid: Some(900),
        };
        let top = Top {
            perm: 0o755,
            uid: 800,
            gid: 800,
            access: None,
        };
        let acl = closed_top(&c, &top).unwrap();
        assert_eq!(acl.other, 0);
        assert_eq!(acl.users, [(200_998, X)].into());
        assert_eq!(acl.mask, Some(5));
        assert_eq!(acl.mode_bits(), 0o750);
        // Another stack's uid and a host uid are neither owners nor let in.
        assert!(!acl.allows(800, 800, 265_536 + 999, &[265_536 + 999], X));
        assert!(!acl.allows(800, 800, 801, &[801, 900], X));
        assert!(acl.allows(800, 800, 200_998, &[200_998], X));
        // Closing again changes nothing.
        let v = acl.encode();
        let again = Top {
            perm: acl.mode_bits(),
            access: Some(&v),
            ..top
        };
        assert_eq!(closed_top(&c, &again), None);
    }

    #[test]
    fn other_stacks_entries_go_host_entries_stay() {
        let (a, b) = (maps(800, 200_000), maps(801, 265_536));
        let others = OwnedIds::new([&b]);
        let owners = BTreeSet::new();
        let mut cur = Acl::from_mode(0o755);
        cur.users.insert(801, 5);
        cur.users.insert(34, 5); // backup user put there by the admin
        cur.users.insert(200_010, 7); // the stack's own container user
        cur.recompute_mask();
        let v = cur.encode();
        let c = Closing {
            stack: &a,
            others: &others,
            owners: &owners,
            shared_gid: None,
        };
        let top = Top {
            perm: cur.mode_bits(),
            uid: 800,
            gid: 900,
            access: Some(&v),
        };
        let acl = closed_top(&c, &top).unwrap();
        assert_eq!(acl.users, [(34, 5), (200_010, 7)].into());
        assert_eq!((acl.group_obj, acl.other), (5, 0));
    }

    #[test]
    fn closing_never_widens_a_host_users_entry_through_the_mask() {
        let a = maps(800, 200_000);
        let others = OwnedIds::default();
        let owners: BTreeSet<u32> = [200_998].into();
        // A backup user with rwx whose mask lets it use r-x; the owning group likewise.
        let mut cur = Acl::from_mode(0o775);
        cur.users.insert(34, 7);
        cur.mask = Some(5);
        let v = cur.encode();
        let c = Closing {
            stack: &a,
            others: &others,
            owners: &owners,
            shared_gid: None,
        };
        let top = Top {
            perm: cur.mode_bits(),
            uid: 800,
            gid: 1000,
            access: Some(&v),
        };
        let acl = closed_top(&c, &top).unwrap();
        assert!(acl.allows(800, 1000, 200_998, &[], X));
        for (uid, gids) in [(34, vec![]), (4000, vec![1000])] {
            assert!(
                !acl.allows(800, 1000, uid, &gids, 2),
                "uid {uid} gains write: {acl:?}"
            );
            assert!(acl.allows(800, 1000, uid, &gids, 5));
        }
    }
}
