//! Access prediction: what a stack's processes can do to a path, from mode bits, POSIX ACL
//! entries and the mask of every directory from the root down (a missing search bit on a
//! parent stops everyone). Pure: the inodes come in as facts.
use super::model::Access;
use crate::ids::IdMaps;

pub const TAG_USER_OBJ: u16 = 0x01;
pub const TAG_USER: u16 = 0x02;
pub const TAG_GROUP_OBJ: u16 = 0x04;
pub const TAG_GROUP: u16 = 0x08;
pub const TAG_MASK: u16 = 0x10;
pub const TAG_OTHER: u16 = 0x20;

pub const R: u8 = 4;
pub const W: u8 = 2;
pub const X: u8 = 1;

/// One entry of a POSIX ACL xattr (`posix_acl_xattr.h`): tag, rwx bits, id (named entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: u16,
    pub perm: u8,
    pub id: u32,
}

impl AclEntry {
    pub fn is_named_user(&self) -> bool {
        self.tag == TAG_USER
    }
    pub fn is_named_group(&self) -> bool {
        self.tag == TAG_GROUP
    }
}

/// Parses a version-2 ACL xattr; None when it is not one (then mode bits alone decide).
pub fn parse_acl(value: &[u8]) -> Option<Vec<AclEntry>> {
    if value.len() < 4 || (value.len() - 4) % 8 != 0 {
        return None;
    }
    if u32::from_le_bytes(value[0..4].try_into().ok()?) != 2 {
        return None;
    }
    let entries = value[4..]
        .chunks_exact(8)
        .map(|e| AclEntry {
            tag: u16::from_le_bytes([e[0], e[1]]),
            perm: (u16::from_le_bytes([e[2], e[3]]) & 7) as u8,
            id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect::<Vec<_>>();
    entries
        .iter()
        .all(|e| {
            matches!(
                e.tag,
                TAG_USER_OBJ | TAG_USER | TAG_GROUP_OBJ | TAG_GROUP | TAG_MASK | TAG_OTHER
            )
        })
        .then_some(entries)
}

/// Encodes entries as the kernel stores them (tests and fixtures build ACLs with it).
pub fn encode_acl(entries: &[AclEntry]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&u16::from(e.perm).to_le_bytes());
        out.extend_from_slice(&e.id.to_le_bytes());
    }
    out
}

/// What access checks need of one inode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InodeFacts {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (the low 12 bits of st_mode).
    pub perm: u32,
    /// The access ACL's entries, when it has one.
    pub acl: Option<Vec<AclEntry>>,
}

impl InodeFacts {
    fn mask(&self) -> u8 {
        self.acl
            .as_ref()
            .and_then(|a| a.iter().find(|e| e.tag == TAG_MASK))
            .map_or(7, |e| e.perm)
    }
    fn group_obj(&self) -> u8 {
        self.acl
            .as_ref()
            .and_then(|a| a.iter().find(|e| e.tag == TAG_GROUP_OBJ))
            .map_or(((self.perm >> 3) & 7) as u8, |e| e.perm)
    }
    fn named(&self, tag: u16) -> impl Iterator<Item = &AclEntry> {
        self.acl.iter().flatten().filter(move |e| e.tag == tag)
    }
    /// Whether a uid outside `maps` can search (x) this directory: other has x, its owner
    /// (root aside, which passes anyway) or owning group is outside the mapping with x, or a
    /// named ACL entry for an id outside the mapping has x under the mask.
    pub fn traversable_by_outsiders(&self, maps: &IdMaps) -> bool {
        if self.perm & 0o001 != 0 {
            return true;
        }
        let mask = self.mask();
        if self.uid != 0 && !maps.uid.contains_host(self.uid) && self.perm & 0o100 != 0 {
            return true;
        }
        if !maps.gid.contains_host(self.gid) && self.group_obj() & mask & X != 0 {
            return true;
        }
        self.named(TAG_USER)
            .any(|e| e.perm & mask & X != 0 && !maps.uid.contains_host(e.id))
            || self
                .named(TAG_GROUP)
                .any(|e| e.perm & mask & X != 0 && !maps.gid.contains_host(e.id))
    }
}

/// One process's credentials as the kernel checks them.
pub struct Principal<'a> {
    pub uid: u32,
    /// Whether a gid is among the process's groups.
    pub in_group: &'a dyn Fn(u32) -> bool,
    /// Container root of a rootless container: CAP_DAC_OVERRIDE in its user namespace, which
    /// applies to inodes whose uid and gid are both mapped there.
    pub dac_override_in: Option<&'a IdMaps>,
}

/// POSIX.1e access check (acl_permission_check + the capability override): does `who` get
/// all of `want` (R|W|X bits) on `inode`?
pub fn permits(inode: &InodeFacts, who: &Principal<'_>, want: u8) -> bool {
    if let Some(maps) = who.dac_override_in {
        if maps.uid.contains_host(inode.uid) && maps.gid.contains_host(inode.gid) {
            return true;
        }
    }
    let has = |bits: u8| bits & want == want;
    if who.uid == inode.uid {
        return has(((inode.perm >> 6) & 7) as u8);
    }
    let mask = inode.mask();
    if let Some(e) = inode.named(TAG_USER).find(|e| e.id == who.uid) {
        return has(e.perm & mask);
    }
    let mut in_group_class = false;
    if (who.in_group)(inode.gid) {
        in_group_class = true;
        if has(inode.group_obj() & mask) {
            return true;
        }
    }
    for e in inode.named(TAG_GROUP).filter(|e| (who.in_group)(e.id)) {
        in_group_class = true;
        if has(e.perm & mask) {
            return true;
        }
    }
    !in_group_class && has((inode.perm & 7) as u8)
}

/// What `who` can do to the directory at the end of `chain` (its ancestors first, from the
/// root): every ancestor needs search, read needs r+x, write r+w+x on the directory itself.
pub fn reach(chain: &[InodeFacts], who: &Principal<'_>) -> Access {
    let Some((target, parents)) = chain.split_last() else {
        return Access::None;
    };
    if !parents.iter().all(|p| permits(p, who, X)) || !permits(target, who, R | X) {
        return Access::None;
    }
    if permits(target, who, W) {
        Access::Write
    } else {
        Access::Read
    }
}

/// The most any process of a stack can do to the directory at the end of `chain`, with the
/// container uid that gets it. The stack's processes are its container root (the stack
/// user, with DAC override on its own mapping's inodes), every subordinate uid named along
/// the chain (as owner or ACL entry), and one subordinate uid named nowhere; all of them
/// may hold any gid of the stack's mapping and the stack user's groups (`groups`).
pub fn stack_reach(chain: &[InodeFacts], maps: &IdMaps, groups: &[u32]) -> (Access, Option<u32>) {
    let in_group = |gid: u32| maps.gid.contains_host(gid) || groups.contains(&gid);
    let mut candidates: Vec<u32> = Vec::new();
    for inode in chain {
        let named = inode.named(TAG_USER).map(|e| e.id);
        for uid in std::iter::once(inode.uid).chain(named) {
            if uid != maps.uid.root && maps.uid.contains_host(uid) && !candidates.contains(&uid) {
                candidates.push(uid);
            }
        }
    }
    candidates.sort_unstable();
    // A subordinate uid no inode names: the highest container id not in the candidates.
    let anonymous = (1..maps.uid.len())
        .rev()
        .filter_map(|c| maps.uid.to_host(c as u32))
        .find(|h| !candidates.contains(h));
    let mut best = (Access::None, None);
    let root = Principal {
        uid: maps.uid.root,
        in_group: &in_group,
        dac_override_in: Some(maps),
    };
    let mut consider = |who: &Principal<'_>| {
        let got = reach(chain, who);
        if got > best.0 {
            best = (got, maps.uid.to_container(who.uid));
        }
    };
    consider(&root);
    for uid in candidates.into_iter().chain(anonymous) {
        consider(&Principal {
            uid,
            in_group: &in_group,
            dac_override_in: None,
        });
    }
    best
}

/// Access a named ACL entry's bits give (under the mask): r+x read, r+w+x write.
pub fn access_of_bits(bits: u8) -> Access {
    if bits & (R | X) != R | X {
        Access::None
    } else if bits & W != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

/// Named user entries of an access ACL with what each gives under the mask.
pub fn named_user_access(inode: &InodeFacts) -> Vec<(u32, Access)> {
    let mask = inode.mask();
    inode
        .named(TAG_USER)
        .map(|e| (e.id, access_of_bits(e.perm & mask)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Mapping, SubidRange};

    fn maps(root: u32, start: u32) -> IdMaps {
        let r = vec![SubidRange::new(start, 65_536).unwrap()];
        IdMaps {
            uid: Mapping::new(root, r.clone()),
            gid: Mapping::new(root, r),
        }
    }

    fn dir(uid: u32, gid: u32, perm: u32) -> InodeFacts {
        InodeFacts {
            uid,
            gid,
            perm,
            acl: None,
        }
    }

    fn acl(base: InodeFacts, entries: &[(u16, u8, u32)]) -> InodeFacts {
        let entries = entries
            .iter()
            .map(|&(tag, perm, id)| AclEntry { tag, perm, id })
            .collect();
        InodeFacts {
            acl: Some(entries),
            ..base
        }
    }

    fn user(uid: u32) -> Principal<'static> {
        Principal {
            uid,
            in_group: &|_| false,
            dac_override_in: None,
        }
    }

    #[test]
    fn mode_bits_owner_group_other() {
        let d = dir(800, 800, 0o750);
        assert_eq!(reach(std::slice::from_ref(&d), &user(800)), Access::Write);
        let member = Principal {
            uid: 5,
            in_group: &|g| g == 800,
            dac_override_in: None,
        };
        assert_eq!(reach(std::slice::from_ref(&d), &member), Access::Read);
        assert_eq!(reach(std::slice::from_ref(&d), &user(5)), Access::None);
        // The owner class decides alone: an owner without r is refused even if other has it.
        assert_eq!(reach(&[dir(5, 5, 0o077)], &user(5)), Access::None);
    }

    #[test]
    fn named_acl_entries_and_the_mask() {
        let base = dir(800, 800, 0o770);
        let granted = acl(
            base.clone(),
            &[
                (TAG_USER_OBJ, 7, 0),
                (TAG_USER, 5, 200_999),
                (TAG_GROUP_OBJ, 7, 0),
                (TAG_MASK, 7, 0),
                (TAG_OTHER, 0, 0),
            ],
        );
        assert_eq!(reach(&[granted], &user(200_999)), Access::Read);
        let masked = acl(
            base.clone(),
            &[
                (TAG_USER_OBJ, 7, 0),
                (TAG_USER, 7, 200_999),
                (TAG_GROUP_OBJ, 7, 0),
                (TAG_MASK, 4, 0),
                (TAG_OTHER, 0, 0),
            ],
        );
        // rwx under a mask of r-- leaves no search: nothing.
        assert_eq!(
            reach(std::slice::from_ref(&masked), &user(200_999)),
            Access::None
        );
        assert_eq!(named_user_access(&masked), vec![(200_999, Access::None)]);
        let group = acl(
            base,
            &[
                (TAG_USER_OBJ, 7, 0),
                (TAG_GROUP_OBJ, 0, 0),
                (TAG_GROUP, 7, 900),
                (TAG_MASK, 5, 0),
                (TAG_OTHER, 0, 0),
            ],
        );
        let member = Principal {
            uid: 5,
            in_group: &|g| g == 900,
            dac_override_in: None,
        };
        assert_eq!(reach(&[group], &member), Access::Read);
    }

    #[test]
    fn a_parent_without_search_stops_everyone_but_its_owner() {
        let closed = dir(800, 800, 0o700);
        let open = dir(0, 0, 0o777);
        assert_eq!(
            reach(&[closed.clone(), open.clone()], &user(5)),
            Access::None
        );
        assert_eq!(reach(&[closed, open], &user(800)), Access::Write);
        // Search alone on the parent is enough.
        assert_eq!(
            reach(&[dir(0, 0, 0o711), dir(0, 0, 0o755)], &user(5)),
            Access::Read
        );
    }

    #[test]
    fn container_root_overrides_only_on_its_own_mapping() {
        let m = maps(800, 200_000);
        // Owned by container uid 1000 of the stack, 0700: root of the stack gets in.
        let own = dir(200_999, 200_999, 0o700);
        assert_eq!(stack_reach(&[own], &m, &[]), (Access::Write, Some(0)));
        // Owned by another stack, 0700: nobody of this stack.
        let foreign = dir(265_536, 265_536, 0o700);
        assert_eq!(stack_reach(&[foreign], &m, &[]), (Access::None, None));
    }

    #[test]
    fn stack_reach_finds_the_subordinate_uid_an_acl_names() {
        let m = maps(800, 200_000);
        let share = acl(
            dir(0, 0, 0o770),
            &[
                (TAG_USER_OBJ, 7, 0),
                (TAG_USER, 5, 200_999),
                (TAG_GROUP_OBJ, 7, 0),
                (TAG_MASK, 7, 0),
                (TAG_OTHER, 0, 0),
            ],
        );
        assert_eq!(
            stack_reach(&[dir(0, 0, 0o755), share], &m, &[]),
            (Access::Read, Some(1000))
        );
        // A world-readable path is read by a subordinate uid named nowhere.
        let (access, via) = stack_reach(&[dir(0, 0, 0o755)], &m, &[]);
        assert_eq!(access, Access::Read);
        assert_eq!(via, Some(0));
    }

    #[test]
    fn outsiders_traverse_through_other_bits_or_foreign_acl_entries() {
        let m = maps(800, 200_000);
        assert!(dir(800, 800, 0o701).traversable_by_outsiders(&m));
        assert!(!dir(800, 800, 0o770).traversable_by_outsiders(&m));
        let own_entry = acl(
            dir(800, 800, 0o770),
            &[(TAG_USER, 5, 200_999), (TAG_MASK, 7, 0)],
        );
        assert!(!own_entry.traversable_by_outsiders(&m));
        let foreign = acl(
            dir(800, 800, 0o770),
            &[(TAG_USER, 5, 265_999), (TAG_MASK, 7, 0)],
        );
        assert!(foreign.traversable_by_outsiders(&m));
        // The shared group (850, outside the stack) owning the top with g+x lets its members in.
        assert!(dir(800, 850, 0o710).traversable_by_outsiders(&m));
        assert!(!dir(800, 850, 0o700).traversable_by_outsiders(&m));
        // Another stack's user owning it with u+x; root owning it is no finding (root passes).
        assert!(dir(801, 800, 0o700).traversable_by_outsiders(&m));
        assert!(!dir(0, 800, 0o700).traversable_by_outsiders(&m));
    }

    #[test]
    fn acl_bytes_round_trip() {
        let e = vec![AclEntry {
            tag: TAG_USER,
            perm: 5,
            id: 7,
        }];
        assert_eq!(parse_acl(&encode_acl(&e)), Some(e));
        assert_eq!(parse_acl(b"junk"), None);
    }
}
