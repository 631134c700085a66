//! The per-inode rule of a share, pure: from an inode's mode and current ACLs to the ACLs it
//! must have. Named entries of ids isolate owns are replaced by the grants; every other
//! entry stays, never with more rights than the mask let it use before (the mask is
//! recomputed for the grants, so a wider entry is cut to what it had); directories get
//! default ACLs so what a writer creates reaches every other granted stack; the share's top
//! is closed to "other". Also what a rollback writes, and whether one can undo a change by
//! taking isolate's entries out (else the change is journalled first).
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
    /// enter); None leaves it.
    pub top_other: Option<u16>,
    /// The top's owning-group entry when its group is the shared group (0 on apply, so
    /// membership gives nothing); None leaves it.
    pub top_group_obj: Option<u16>,
    /// The shared group's gid, if it exists.
    pub shared_gid: Option<u32>,
}

impl ShareRule {
    /// The rule that takes isolate's entries out and nothing else.
    pub fn undo(&self) -> ShareRule {
        ShareRule {
            grants: BTreeMap::new(),
            top_other: None,
            top_group_obj: None,
            ..self.clone()
        }
    }
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

/// An inode's permissions as a whole: its bits (with setuid/setgid/sticky), its access ACL
/// (its mode's when it has none) and its default ACL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub perm: u32,
    pub access: Acl,
    pub default: Option<Acl>,
}

impl State {
    pub fn of(inode: &Inode<'_>) -> State {
        State::from_values(inode.perm, inode.access, inode.default)
    }

    pub fn from_values(perm: u32, access: Option<&[u8]>, default: Option<&[u8]>) -> State {
        State {
            perm,
            access: Acl::access_of(perm, access),
            default: default.and_then(Acl::decode),
        }
    }

    /// The access xattr the kernel keeps for it (none when the mode says it all; an ACL
    /// with a mask and no named entry is kept).
    pub fn access_value(&self) -> Option<Vec<u8>> {
        (!self.access.is_mode_only()).then(|| self.access.encode())
    }

    pub fn default_value(&self) -> Option<Vec<u8>> {
        self.default.as_ref().map(Acl::encode)
    }
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
    /// Permission bits to set after the ACLs (only when setuid/setgid/sticky differ: the
    /// ACL write sets the rest).
    pub chmod: Option<u32>,
}

impl AclChange {
    pub fn is_empty(&self) -> bool {
        self.access == AclWrite::Keep && self.default == AclWrite::Keep && self.chmod.is_none()
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
/// foreign entries alone keeps its mask as its owner set it). When it is, every other entry
/// of the group class is first cut to what the mask let it use, so recomputing the mask
/// for the grants gives nobody else a right.
fn replace_owned(acl: &mut Acl, rule: &ShareRule, perm_of: impl Fn(Access) -> u16) -> bool {
    let before = acl.users.len() + acl.groups.len();
    acl.users.retain(|id, _| !rule.owned.uid(*id));
    acl.groups.retain(|id, _| !rule.owned.gid(*id));
    let removed = before != acl.users.len() + acl.groups.len();
    let ours = removed || !rule.grants.is_empty();
    if !ours {
        return false;
    }
    acl.cap_to_mask();
    for (uid, access) in &rule.grants {
        acl.users.insert(*uid, perm_of(*access));
    }
    true
}

/// What an inode now as `cur` must become under `rule`.
pub fn target(rule: &ShareRule, inode: &Inode<'_>, cur: &State) -> State {
    let mut access = cur.access.clone();
    let owner_exec = access.user_obj & X != 0;
    let ours = replace_owned(&mut access, rule, |a| {
        grant_perm(a, inode.is_dir, owner_exec)
    });
    if inode.top {
        if let Some(other) = rule.top_other {
            access.other = other;
        }
        if inode.gid != u32::MAX && Some(inode.gid) == rule.shared_gid {
            if let Some(g) = rule.top_group_obj {
                access.group_obj = g;
            }
        }
    }
    if ours {
        access.recompute_mask();
    }
    let default = match &cur.default {
        _ if !inode.is_dir => cur.default.clone(),
        None if rule.grants.is_empty() => None,
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
            Some(d)
        }
        Some(c) => {
            let mut d = c.clone();
            if replace_owned(&mut d, rule, |a| grant_perm(a, true, true)) {
                d.recompute_mask();
            }
            // Only isolate's entries made it a default ACL worth having.
            if d != *c && rule.grants.is_empty() && d.is_minimal() {
                None
            } else {
                Some(d)
            }
        }
    };
    State {
        perm: (cur.perm & !0o777) | access.mode_bits(),
        access,
        default,
    }
}

/// The writes that make `cur` into `new`.
pub fn writes(cur: &State, new: &State) -> AclChange {
    AclChange {
        access: if new.access == cur.access {
            AclWrite::Keep
        } else {
            AclWrite::Set(new.access.encode())
        },
        default: match &new.default {
            _ if new.default == cur.default => AclWrite::Keep,
            None => AclWrite::Remove,
            Some(d) => AclWrite::Set(d.encode()),
        },
        chmod: ((new.perm ^ cur.perm) & 0o7000 != 0).then_some(new.perm),
    }
}

/// What `inode` must get under `rule`.
pub fn change(rule: &ShareRule, inode: &Inode<'_>) -> AclChange {
    let cur = State::of(inode);
    writes(&cur, &target(rule, inode, &cur))
}

/// Whether taking isolate's entries out of `new` gives what taking them out of `cur` gives:
/// if so, a rollback needs no record of this change; if not (a mask or an entry cut, the
/// top's `other`), the change is journalled before it is made.
pub fn undone_by_removal(rule: &ShareRule, inode: &Inode<'_>, cur: &State, new: &State) -> bool {
    let undo = rule.undo();
    target(&undo, inode, new) == target(&undo, inode, cur)
}

/// A journalled inode: how it was before isolate's first change, and each state isolate
/// left it in since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journalled {
    pub before: State,
    pub afters: Vec<State>,
}

impl Journalled {
    /// Whether `cur` is a state isolate left: one of its afters, or one a kill leaves
    /// between the writes of one change (access ACL, then default ACL, then the mode's
    /// special bits), where each part is that of a journalled state.
    pub fn left_by_isolate(&self, cur: &State) -> bool {
        let states = || std::iter::once(&self.before).chain(&self.afters);
        self.afters.contains(cur)
            || (states().any(|s| s.access == cur.access)
                && states().any(|s| s.default == cur.default)
                && states().any(|s| s.perm & 0o7000 == cur.perm & 0o7000)
                && states().any(|s| s.perm & 0o777 == cur.perm & 0o777))
    }
}

/// What a rollback makes of an inode now as `cur`: with a journal entry and still as isolate
/// left it, exactly the state before (mask, entries, top bits); changed since by someone
/// else, isolate's entries out and the rest as found (the second value says so); without
/// an entry, isolate's entries out.
pub fn undo(
    rule: &ShareRule,
    inode: &Inode<'_>,
    cur: &State,
    journalled: Option<&Journalled>,
) -> (State, bool) {
    let undo = rule.undo();
    let Some(j) = journalled else {
        return (target(&undo, inode, cur), false);
    };
    if *cur == j.before {
        return (cur.clone(), false);
    }
    if j.left_by_isolate(cur) {
        return (j.before.clone(), false);
    }
    let back = ShareRule {
        top_other: Some(j.before.access.other),
        top_group_obj: Some(j.before.access.group_obj),
        ..undo
    };
    (target(&back, inode, cur), true)
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
            top_other: Some(0),
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
        let undo = change(&rule(&[(A, Access::Write)]).undo(), &applied);
        // A minimal access ACL: the kernel turns it back into the mode 0755.
        let minimal = set(&undo.access);
        assert!(minimal.is_minimal() && minimal.mask.is_none());
        assert_eq!(minimal.mode_bits(), 0o755);
        assert_eq!(undo.default, AclWrite::Remove);
    }

    #[test]
    fn a_host_entry_wider_than_its_mask_is_cut_to_what_it_could_use() {
        let mut cur = Acl::from_mode(0o775);
        cur.users.insert(34, R | W | X); // a backup user, effective r-x through the mask
        cur.groups.insert(4243, R | W);
        cur.mask = Some(R | X);
        let v = cur.encode();
        let dir = Inode {
            perm: cur.mode_bits(),
            gid: 1000,
            is_dir: true,
            top: false,
            access: Some(&v),
            default: None,
        };
        let r = rule(&[(A, Access::Write)]);
        let got = set(&change(&r, &dir).access);
        assert_eq!(got.users, [(34, R | X), (A, R | W | X)].into());
        assert_eq!(got.groups, [(4243, R)].into());
        assert_eq!((got.group_obj, got.mask), (R | X, Some(R | W | X)));
        for (uid, gids) in [(34, vec![]), (5, vec![4243]), (6, vec![1000])] {
            assert!(
                !got.allows(1000, 1000, uid, &gids, W),
                "uid {uid} gains write"
            );
        }
        // Taking isolate's entry out would not give the mask and entries back: journalled.
        let before = State::of(&dir);
        let after = target(&r, &dir, &before);
        assert!(!undone_by_removal(&r, &dir, &before, &after));
        // A plain file is: nothing to journal.
        let plain = file(0o644, None);
        let p0 = State::of(&plain);
        assert!(undone_by_removal(&r, &plain, &p0, &target(&r, &plain, &p0)));
    }

    #[test]
    fn a_journalled_inode_comes_back_exactly_unless_changed_since() {
        let r = rule(&[(A, Access::Write)]);
        let top = Inode {
            perm: 0o2755,
            gid: 1000,
            is_dir: true,
            top: true,
            access: None,
            default: None,
        };
        let before = State::of(&top);
        let after = target(&r, &top, &before);
        assert_eq!(after.access.other, 0);
        assert_eq!(after.perm & 0o7000, 0o2000, "setgid kept");
        let j = Journalled {
            before: before.clone(),
            afters: vec![after.clone()],
        };
        assert_eq!(undo(&r, &top, &after, Some(&j)), (before.clone(), false));
        assert_eq!(undo(&r, &top, &before, Some(&j)), (before.clone(), false));
        // Someone added an entry since: isolate's entries go, other comes back, theirs stays.
        let mut since = after.clone();
        since.access.users.insert(4242, R);
        since.access.recompute_mask();
        let (back, changed) = undo(&r, &top, &since, Some(&j));
        assert!(changed);
        assert_eq!(back.access.users, [(4242, R)].into());
        assert_eq!(back.access.other, R | X);
        // Restoring: the ACL writes, and a chmod only for setuid/setgid/sticky.
        let w = writes(&after, &before);
        assert_eq!(w.chmod, None);
        let cleared = State {
            perm: after.perm & !0o2000,
            ..after
        };
        assert_eq!(writes(&cleared, &before).chmod, Some(0o2755));
    }

    #[test]
    fn a_directory_cut_between_its_acl_writes_is_still_isolates() {
        let r = rule(&[(A, Access::Write)]);
        let dir = Inode {
            perm: 0o755,
            gid: 1000,
            is_dir: true,
            top: false,
            access: None,
            default: None,
        };
        let before = State::of(&dir);
        let after = target(&r, &dir, &before);
        assert!(after.default.is_some() && after.access != before.access);
        let j = Journalled {
            before: before.clone(),
            afters: vec![after.clone()],
        };
        // The access ACL written, the default not yet (a kill between the two calls).
        let half = State {
            default: before.default.clone(),
            ..after.clone()
        };
        assert_eq!(undo(&r, &dir, &half, Some(&j)), (before.clone(), false));
        // A part nobody journalled is someone else's change.
        let mut theirs = half.clone();
        theirs.access.users.insert(4242, R);
        theirs.access.recompute_mask();
        assert!(undo(&r, &dir, &theirs, Some(&j)).1);
    }
}
