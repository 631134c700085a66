//! A POSIX ACL as isolate reasons about it (owner, owning group, other, named entries, mask),
//! read from and written to the kernel's xattr through `walk::xattr`'s codec; pure, no I/O.
use crate::walk::xattr::{self, AclEntry};
use std::collections::BTreeMap;

pub const R: u16 = 4;
pub const W: u16 = 2;
pub const X: u16 = 1;

/// One access or default ACL. Named entries are kept in id order, as the kernel stores them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acl {
    pub user_obj: u16,
    pub users: BTreeMap<u32, u16>,
    pub group_obj: u16,
    pub groups: BTreeMap<u32, u16>,
    pub mask: Option<u16>,
    pub other: u16,
}

fn bits(perm: u32, shift: u32) -> u16 {
    ((perm >> shift) & 7) as u16
}

impl Acl {
    /// The ACL equivalent to permission bits (what an inode without an ACL has).
    pub fn from_mode(perm: u32) -> Acl {
        Acl {
            user_obj: bits(perm, 6),
            users: BTreeMap::new(),
            group_obj: bits(perm, 3),
            groups: BTreeMap::new(),
            mask: None,
            other: bits(perm, 0),
        }
    }

    /// An inode's access ACL: its xattr if it has a valid one, else its mode bits.
    pub fn access_of(perm: u32, value: Option<&[u8]>) -> Acl {
        value
            .and_then(Acl::decode)
            .unwrap_or_else(|| Acl::from_mode(perm))
    }

    /// None when the value is not a well-formed version-2 ACL with every base entry.
    pub fn decode(value: &[u8]) -> Option<Acl> {
        let (mut user_obj, mut group_obj, mut other) = (None, None, None);
        let mut acl = Acl::from_mode(0);
        for e in xattr::decode_acl(value)? {
            let perm = e.perm & 7;
            match e.tag {
                xattr::ACL_TAG_USER_OBJ => user_obj = Some(perm),
                xattr::ACL_TAG_USER => {
                    acl.users.insert(e.id, perm);
                }
                xattr::ACL_TAG_GROUP_OBJ => group_obj = Some(perm),
                xattr::ACL_TAG_GROUP => {
                    acl.groups.insert(e.id, perm);
                }
                xattr::ACL_TAG_MASK => acl.mask = Some(perm),
                xattr::ACL_TAG_OTHER => other = Some(perm),
                _ => return None,
            }
        }
        acl.user_obj = user_obj?;
        acl.group_obj = group_obj?;
        acl.other = other?;
        Some(acl)
    }

    /// The xattr value, entries in the kernel's order (tag, then id).
    pub fn encode(&self) -> Vec<u8> {
        let undefined = xattr::ACL_UNDEFINED_ID;
        let entry = |tag, perm, id| AclEntry { tag, perm, id };
        let mut entries = vec![entry(xattr::ACL_TAG_USER_OBJ, self.user_obj, undefined)];
        entries.extend(
            self.users
                .iter()
                .map(|(id, p)| entry(xattr::ACL_TAG_USER, *p, *id)),
        );
        entries.push(entry(xattr::ACL_TAG_GROUP_OBJ, self.group_obj, undefined));
        entries.extend(
            self.groups
                .iter()
                .map(|(id, p)| entry(xattr::ACL_TAG_GROUP, *p, *id)),
        );
        if let Some(m) = self.mask {
            entries.push(entry(xattr::ACL_TAG_MASK, m, undefined));
        }
        entries.push(entry(xattr::ACL_TAG_OTHER, self.other, undefined));
        xattr::encode_acl(&entries)
    }

    /// No named entries: the ACL says no more than permission bits.
    pub fn is_minimal(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Cuts every entry of the group class (owning group, named users and groups) to what
    /// the mask lets it use now, so that recomputing the mask afterwards gives no one a
    /// right they did not have. Nothing to cut without a mask.
    pub fn cap_to_mask(&mut self) {
        if let Some(mask) = self.mask {
            self.group_obj &= mask;
            self.users.values_mut().for_each(|p| *p &= mask);
            self.groups.values_mut().for_each(|p| *p &= mask);
        }
    }

    /// Nothing the mode bits cannot say (no named entry, no mask): the kernel keeps no
    /// xattr for such an ACL.
    pub fn is_mode_only(&self) -> bool {
        self.is_minimal() && self.mask.is_none()
    }

    /// The mask as setfacl computes it: the union of the group class (owning group and
    /// every named entry); none for a minimal ACL.
    pub fn recompute_mask(&mut self) {
        self.mask = if self.is_minimal() {
            None
        } else {
            Some(
                self.users
                    .values()
                    .chain(self.groups.values())
                    .fold(self.group_obj, |m, p| m | p),
            )
        };
    }

    /// The rwxrwxrwx bits an inode with this ACL shows (the group bits are the mask, if any).
    pub fn mode_bits(&self) -> u32 {
        let group = self.mask.unwrap_or(self.group_obj);
        (u32::from(self.user_obj) << 6) | (u32::from(group) << 3) | u32::from(self.other)
    }

    /// Whether a process (`uid`, its groups `gids`) gets every bit of `want` on an inode
    /// owned by `owner:group` with this ACL, decided as the kernel's posix_acl_permission.
    pub fn allows(&self, owner: u32, group: u32, uid: u32, gids: &[u32], want: u16) -> bool {
        let mask = self.mask.unwrap_or(7);
        if uid == owner {
            return self.user_obj & want == want;
        }
        if let Some(p) = self.users.get(&uid) {
            return p & mask & want == want;
        }
        let mut matched = false;
        if gids.contains(&group) {
            matched = true;
            if self.group_obj & mask & want == want {
                return true;
            }
        }
        for (gid, p) in &self.groups {
            if gids.contains(gid) {
                matched = true;
                if p & mask & want == want {
                    return true;
                }
            }
        }
        !matched && self.other & want == want
    }
}

/// `rwx`-style text of permission bits, as getfacl prints them.
pub fn perm_text(p: u16) -> String {
    [(R, 'r'), (W, 'w'), (X, 'x')]
        .iter()
        .map(|(b, c)| if p & b != 0 { *c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_round_trip_and_mask() {
        let mut acl = Acl::from_mode(0o754);
        assert_eq!((acl.user_obj, acl.group_obj, acl.other), (7, 5, 4));
        assert!(acl.is_minimal());
        assert_eq!(acl.mode_bits(), 0o754);
        acl.users.insert(200_999, R);
        acl.groups.insert(33, W);
        acl.recompute_mask();
        assert_eq!(acl.mask, Some(R | W | X));
        assert_eq!(acl.mode_bits(), 0o774);
        assert_eq!(Acl::decode(&acl.encode()), Some(acl.clone()));
        acl.users.clear();
        acl.groups.clear();
        acl.recompute_mask();
        assert_eq!(acl.mask, None);
    }

    #[test]
    fn decode_needs_every_base_entry() {
        let only_user = xattr::encode_acl(&[AclEntry {
            tag: xattr::ACL_TAG_USER_OBJ,
            perm: 7,
            id: u32::MAX,
        }]);
        assert_eq!(Acl::decode(&only_user), None);
        assert_eq!(
            Acl::access_of(0o640, Some(&only_user)),
            Acl::from_mode(0o640)
        );
    }

    #[test]
    fn allows_follows_the_kernel_order() {
        let mut acl = Acl::from_mode(0o750);
        acl.users.insert(5, R | X);
        acl.mask = Some(X);
        // owner: user_obj; named user: entry & mask; group; other.
        assert!(acl.allows(1, 2, 1, &[], R | W | X));
        assert!(acl.allows(1, 2, 5, &[], X));
        assert!(!acl.allows(1, 2, 5, &[], R));
        assert!(acl.allows(1, 2, 9, &[2], X));
        assert!(!acl.allows(1, 2, 9, &[3], X));
        // A matching group that does not grant denies even when other would.
        let mut open = Acl::from_mode(0o705);
        open.mask = None;
        assert!(!open.allows(1, 2, 9, &[2], X));
        assert!(open.allows(1, 2, 9, &[3], X));
        assert_eq!(perm_text(R | X), "r-x");
    }
}
