//! The per-inode rule of a share, pure: from an inode's mode and current ACLs to the ACLs it
//! must have. Named entries of ids isolate owns are replaced by the grants; every other
//! entry stays; the mask is recomputed; directories get default ACLs so what a writer
//! creates reaches every other granted stack; the share's top is closed to "other".
use super::acl::{Acl, R, W, X};
use super::grants::{Access, OwnedIds};
use std::collections::BTreeMap;

/// The rule for one share (apply) or for taking isolate's entries out again (rollback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRule {
    pub owned: OwnedIds,
    /// host uid -> access; empty for a rollback.
    pub grants: BTreeMap<u32, Access>,
    /// The share's top directory gets this `other` (0 on apply: a stack not granted cannot
    /// enter; the recorded value on rollback).
    pub top_other: u16,
    /// The top's owning-group entry when its group is the shared group (0 on apply, so
    /// membership gives nothing; the recorded value on rollback).
    pub top_group_obj: Option<u16>,
    /// The shared group's gid, if it exists.
    pub shared_gid: Option<u32>,
}

/// What one inode looks like.
#[derive(Clone, Copy, Debug)]
pub struct Inode<'a> {
    /// Permission bits (st_mode & 0o7777).
    pub perm: u32,
    pub gid: u32,
    pub is_dir: bool,
    /// The share's top directory.
    pub top: bool,
    pub access: Option<&'a [u8]>,
    pub default: Option<&'a [u8]>,
}

/// One ACL xattr's fate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclWrite {
    Keep,
    /// Write this value (a minimal access ACL makes the kernel drop the xattr and set the mode).
    Set(Vec<u8>),
    /// Remove the (default) ACL.
    Remove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclChange {
    pub access: AclWrite,
    pub default: AclWrite,
}

impl AclChange {
    pub fn is_empty(&self) -> bool {
        self.access == AclWrite::Keep && self.default == AclWrite::Keep
    }
}

/// The entry a grant gets: directories are entered (x); a file is executable for a grantee
/// only when its owner may execute it.
pub fn grant_perm(access: Access, is_dir: bool, owner_exec: bool) -> u16 {
    let x = if is_dir || owner_exec { X } else { 0 };
    match access {
        Access::Read => R | x,
        Access::Write => R | W | x,
    }
}

/// Takes isolate's named entries out and puts the grants in. Returns whether any owned
/// entry was present before or after (only then is the mask isolate's business: an ACL of
/// foreign entries alone keeps its mask as its owner set it).
fn replace_owned(acl: &mut Acl, rule: &ShareRule, perm_of: impl Fn(Access) -> u16) -> bool {
    let before = acl.users.len() + acl.groups.len();
    acl.users.retain(|id, _| !rule.owned.uid(*id));
    acl.groups.retain(|id, _| !rule.owned.gid(*id));
    let removed = before != acl.users.len() + acl.groups.len();
    for (uid, access) in &rule.grants {
        acl.users.insert(*uid, perm_of(*access));
    }
    removed || !rule.grants.is_empty()
}

/// What `inode` must get under `rule`.
pub fn change(rule: &ShareRule, inode: &Inode<'_>) -> AclChange {
    let current = Acl::access_of(inode.perm, inode.access);
    let mut access = current.clone();
    let owner_exec = current.user_obj & X != 0;
    let ours = replace_owned(&mut access, rule, |a| {
        grant_perm(a, inode.is_dir, owner_exec)
    });
    if inode.top {
        access.other = rule.top_other;
        if inode.gid != u32::MAX && Some(inode.gid) == rule.shared_gid {
            if let Some(g) = rule.top_group_obj {
                access.group_obj = g;
            }
        }
    }
    if ours {
        access.recompute_mask();
    }
    let access_write = if access == current {
        AclWrite::Keep
    } else {
        AclWrite::Set(access.encode())
    };

    let default_write = if !inode.is_dir {
        AclWrite::Keep
    } else {
        let current_default = inode.default.and_then(Acl::decode);
        match current_default {
            None if rule.grants.is_empty() => AclWrite::Keep,
            None => {
                // As setfacl does: a new default ACL starts from the access ACL's base entries.
                let mut d = Acl {
                    users: BTreeMap::new(),
                    groups: BTreeMap::new(),
                    mask: None,
                    ..access.clone()
                };
                replace_owned(&mut d, rule, |a| grant_perm(a, true, true));
                d.recompute_mask();
                AclWrite::Set(d.encode())
            }
            Some(cur) => {
                let mut d = cur.clone();
                if replace_owned(&mut d, rule, |a| grant_perm(a, true, true)) {
                    d.recompute_mask();
                }
                if d == cur {
                    AclWrite::Keep
                } else if rule.grants.is_empty() && d.is_minimal() {
                    // Only isolate's entries made it a default ACL worth having.
                    AclWrite::Remove
                } else {
                    AclWrite::Set(d.encode())
                }
            }
        }
    };
    AclChange {
        access: access_write,
        default: default_write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{IdMaps, Mapping, SubidRange};

    const A: u32 = 800; // stack a's user (container root)
    const A_START: u32 = 200_000;
    const B_1000: u32 = 265_536 + 999;

    fn maps(root: u32, start: u32) -> IdMaps {
        let m = Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()]);
        IdMaps {
            uid: m.clone(),
            gid: m,
        }
    }

    fn rule(grants: &[(u32, Access)]) -> ShareRule {
        ShareRule {
            owned: OwnedIds::new(&[maps(A, A_START), maps(801, 265_536)]),
            grants: grants.iter().copied().collect(),
            top_other: 0,
            top_group_obj: Some(0),
            shared_gid: Some(900),
        }
    }

    fn file(perm: u32, access: Option<&[u8]>) -> Inode<'_> {
        Inode {
            perm,
            gid: 1000,
            is_dir: false,
            top: false,
            access,
            default: None,
        }
    }

    fn set(w: &AclWrite) -> Acl {
        match w {
            AclWrite::Set(v) => Acl::decode(v).unwrap(),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn grants_become_named_entries_with_a_mask() {
        let r = rule(&[(A, Access::Write), (B_1000, Access::Read)]);
        let got = set(&change(&r, &file(0o644, None)).access);
        assert_eq!(got.users, [(A, R | W), (B_1000, R)].into());
        assert_eq!(got.mask, Some(R | W));
        assert_eq!((got.user_obj, got.group_obj, got.other), (R | W, R, R));
        let exe = set(&change(&r, &file(0o755, None)).access);
        assert_eq!(exe.users, [(A, R | W | X), (B_1000, R | X)].into());
    }

    #[test]
    fn directories_get_default_acls_and_the_top_is_closed() {
        let r = rule(&[(A, Access::Write), (B_1000, Access::Read)]);
        let top = Inode {
            perm: 0o755,
            gid: 900,
            is_dir: true,
            top: true,
            access: None,
            default: None,
        };
        let c = change(&r, &top);
        let access = set(&c.access);
        assert_eq!((access.other, access.group_obj), (0, 0));
        assert_eq!(access.mask, Some(R | W | X));
        let default = set(&c.default);
        assert_eq!(default.users, [(A, R | W | X), (B_1000, R | X)].into());
        assert_eq!(default.mask, Some(R | W | X));
        // Below the top, other and the group stay.
        let sub = Inode { top: false, ..top };
        let sub_access = set(&change(&r, &sub).access);
        assert_eq!((sub_access.other, sub_access.group_obj), (R | X, R | X));
    }

    #[test]
    fn a_second_pass_changes_nothing() {
        let r = rule(&[(A, Access::Write), (B_1000, Access::Read)]);
        let dir = Inode {
            perm: 0o755,
            gid: 1000,
            is_dir: true,
            top: true,
            access: None,
            default: None,
        };
        let c = change(&r, &dir);
        let (a, d) = (set(&c.access), set(&c.default));
        let (av, dv) = (a.encode(), d.encode());
        let again = Inode {
            perm: a.mode_bits(),
            access: Some(&av),
            default: Some(&dv),
            ..dir
        };
        assert!(change(&r, &again).is_empty());
    }

    #[test]
    fn a_narrowed_mask_is_restored() {
        let r = rule(&[(B_1000, Access::Read)]);
        let mut acl = set(&change(&r, &file(0o644, None)).access);
        acl.mask = Some(0); // an application's chmod 600
        let v = acl.encode();
        assert_eq!(
            set(&change(&r, &file(0o600, Some(&v))).access).mask,
            Some(R)
        );
    }

    #[test]
    fn revoked_grants_go_foreign_entries_stay() {
        let mut before = Acl::from_mode(0o640);
        before.users.insert(1234, R | W); // a host user's entry: not isolate's
        before.users.insert(A, R | W); // a grant since revoked
        before.users.insert(A_START + 5, R); // a container user's own entry
        before.groups.insert(A, R); // a stack gid
        before.recompute_mask();
        let v = before.encode();
        let got = set(&change(&rule(&[(B_1000, Access::Read)]), &file(0o660, Some(&v))).access);
        assert_eq!(got.users, [(1234, R | W), (B_1000, R)].into());
        assert!(got.groups.is_empty());
        assert_eq!(got.mask, Some(R | W));
    }

    #[test]
    fn foreign_only_acls_are_left_as_they_are() {
        let mut foreign = Acl::from_mode(0o640);
        foreign.users.insert(1234, R | W);
        foreign.mask = Some(R); // narrower than the union: the owner's choice
        let v = foreign.encode();
        let none = rule(&[]);
        assert!(change(&none, &file(0o640, Some(&v))).is_empty());
    }

    #[test]
    fn rollback_removes_isolates_entries_and_its_default_acl() {
        let r = rule(&[(A, Access::Write)]);
        let dir = Inode {
            perm: 0o755,
            gid: 1000,
            is_dir: true,
            top: false,
            access: None,
            default: None,
        };
        let c = change(&r, &dir);
        let (a, d) = (set(&c.access).encode(), set(&c.default).encode());
        let applied = Inode {
            perm: 0o775,
            access: Some(&a),
            default: Some(&d),
            ..dir
        };
        let back = ShareRule {
            top_other: 5,
            ..rule(&[])
        };
        let undo = change(&back, &applied);
        // A minimal access ACL: the kernel turns it back into the mode 0755.
        let minimal = set(&undo.access);
        assert!(minimal.is_minimal() && minimal.mask.is_none());
        assert_eq!(minimal.mode_bits(), 0o755);
        assert_eq!(undo.default, AclWrite::Remove);
    }
}
