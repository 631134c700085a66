//! The two extended attributes whose contents name host ids: POSIX ACLs (named user/group
//! entries) and file capabilities (a v3 cap's rootid). Pure byte rewriting, no syscalls.

pub const ACL_ACCESS: &std::ffi::CStr = c"system.posix_acl_access";
pub const ACL_DEFAULT: &std::ffi::CStr = c"system.posix_acl_default";
pub const CAPABILITY: &std::ffi::CStr = c"security.capability";

const ACL_VERSION: u32 = 2;
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
const ACL_HEADER: usize = 4;
const ACL_ENTRY: usize = 8;

const CAP_REVISION_MASK: u32 = 0xFF00_0000;
const CAP_REVISION_3: u32 = 0x0300_0000;
const CAP_V3_SIZE: usize = 24;

/// Which of the id-bearing attributes an inode has, from its listxattr names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Present {
    pub acl_access: bool,
    pub acl_default: bool,
    pub capability: bool,
}

impl Present {
    pub fn from_list(names: &[u8]) -> Present {
        let mut present = Present::default();
        for name in names.split(|b| *b == 0) {
            match name {
                b"system.posix_acl_access" => present.acl_access = true,
                b"system.posix_acl_default" => present.acl_default = true,
                b"security.capability" => present.capability = true,
                _ => {}
            }
        }
        present
    }
}

/// What remapping one ACL gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclRemap {
    /// No named entry changes (or the value is not a version-2 ACL, which the kernel never
    /// stores).
    Unchanged,
    Changed(Vec<u8>),
    /// Two named entries would end up with the same id (e.g. one for a legacy uid next to
    /// one for the stack uid it shifts to): the kernel would refuse it, and picking one
    /// would change who may access. Left as it was and reported as a failure.
    Collision,
}

/// Rewrites the ids of named user and group entries of an ACL xattr.
pub fn remap_acl(
    value: &[u8],
    map_uid: impl Fn(u32) -> u32,
    map_gid: impl Fn(u32) -> u32,
) -> AclRemap {
    if value.len() < ACL_HEADER || (value.len() - ACL_HEADER) % ACL_ENTRY != 0 {
        return AclRemap::Unchanged;
    }
    if value[0..4] != ACL_VERSION.to_le_bytes() {
        return AclRemap::Unchanged;
    }
    let mut out = value.to_vec();
    let mut changed = false;
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for entry in out[ACL_HEADER..].chunks_exact_mut(ACL_ENTRY) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        let new_id = match tag {
            ACL_USER => map_uid(id),
            ACL_GROUP => map_gid(id),
            _ => continue,
        };
        if tag == ACL_USER {
            users.push(new_id)
        } else {
            groups.push(new_id)
        }
        if new_id != id {
            entry[4..8].copy_from_slice(&new_id.to_le_bytes());
            changed = true;
        }
    }
    if !changed {
        return AclRemap::Unchanged;
    }
    for ids in [&mut users, &mut groups] {
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return AclRemap::Collision;
        }
    }
    AclRemap::Changed(out)
}

/// Every named user and group id in an ACL (empty for anything but a version-2 ACL).
pub fn acl_ids(value: &[u8]) -> Vec<(bool, u32)> {
    if value.len() < ACL_HEADER || value[0..4] != ACL_VERSION.to_le_bytes() {
        return Vec::new();
    }
    value[ACL_HEADER..]
        .chunks_exact(ACL_ENTRY)
        .filter_map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            match tag {
                ACL_USER => Some((true, id)),
                ACL_GROUP => Some((false, id)),
                _ => None,
            }
        })
        .collect()
}

/// The rootid of a v3 `security.capability`, None for v2 (which has none).
pub fn cap_rootid(value: &[u8]) -> Option<u32> {
    if value.len() != CAP_V3_SIZE {
        return None;
    }
    let magic = u32::from_le_bytes(value[0..4].try_into().ok()?);
    if magic & CAP_REVISION_MASK != CAP_REVISION_3 {
        return None;
    }
    Some(u32::from_le_bytes(value[20..24].try_into().ok()?))
}

/// Rewrites a v3 capability's rootid; v2 and unknown revisions come back unchanged.
pub fn remap_cap(value: &[u8], map_uid: impl Fn(u32) -> u32) -> Vec<u8> {
    let mut out = value.to_vec();
    if let Some(rootid) = cap_rootid(value) {
        out[20..24].copy_from_slice(&map_uid(rootid).to_le_bytes());
    }
    out
}

/// One entry of a POSIX ACL xattr, as the kernel stores it (`struct posix_acl_xattr_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: u16,
    pub perm: u16,
    pub id: u32,
}

pub const ACL_TAG_USER_OBJ: u16 = 0x01;
pub const ACL_TAG_USER: u16 = ACL_USER;
pub const ACL_TAG_GROUP_OBJ: u16 = 0x04;
pub const ACL_TAG_GROUP: u16 = ACL_GROUP;
pub const ACL_TAG_MASK: u16 = 0x10;
pub const ACL_TAG_OTHER: u16 = 0x20;
/// The id of entries that name no id (owner, owning group, mask, other).
pub const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// The entries of a version-2 ACL xattr, in stored order; None when it is not one.
pub fn decode_acl(value: &[u8]) -> Option<Vec<AclEntry>> {
    if value.len() < ACL_HEADER || (value.len() - ACL_HEADER) % ACL_ENTRY != 0 {
        return None;
    }
    if u32::from_le_bytes(value[0..4].try_into().ok()?) != ACL_VERSION {
        return None;
    }
    Some(
        value[ACL_HEADER..]
            .chunks_exact(ACL_ENTRY)
            .map(|e| AclEntry {
                tag: u16::from_le_bytes([e[0], e[1]]),
                perm: u16::from_le_bytes([e[2], e[3]]),
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect(),
    )
}

/// The xattr value of `entries` (the caller orders them as the kernel does: by tag, then id).
pub fn encode_acl(entries: &[AclEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ACL_HEADER + ACL_ENTRY * entries.len());
    out.extend_from_slice(&ACL_VERSION.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.perm.to_le_bytes());
        out.extend_from_slice(&e.id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = ACL_VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    const UNDEF: u32 = u32::MAX;

    #[test]
    fn named_entries_are_remapped_others_kept() {
        let before = acl(&[
            (0x01, 7, UNDEF),
            (ACL_USER, 5, 100_998),
            (ACL_USER, 5, 33),
            (0x04, 5, UNDEF),
            (ACL_GROUP, 5, 1000),
            (0x10, 7, UNDEF),
            (0x20, 0, UNDEF),
        ]);
        let shift = |id: u32| match id {
            100_998 => 200_998,
            1000 => 850,
            other => other,
        };
        let AclRemap::Changed(after) = remap_acl(&before, shift, shift) else {
            panic!("changed");
        };
        assert_eq!(
            after,
            acl(&[
                (0x01, 7, UNDEF),
                (ACL_USER, 5, 200_998),
                (ACL_USER, 5, 33),
                (0x04, 5, UNDEF),
                (ACL_GROUP, 5, 850),
                (0x10, 7, UNDEF),
                (0x20, 0, UNDEF),
            ])
        );
        assert_eq!(remap_acl(&before, |i| i, |i| i), AclRemap::Unchanged);
    }

    #[test]
    fn collisions_and_garbage_are_left_alone() {
        let before = acl(&[(ACL_USER, 5, 1), (ACL_USER, 5, 2)]);
        assert_eq!(remap_acl(&before, |_| 2, |g| g), AclRemap::Collision);
        assert_eq!(remap_acl(&[1, 2, 3], |u| u + 1, |g| g), AclRemap::Unchanged);
        let mut v1 = before.clone();
        v1[0] = 1;
        assert_eq!(remap_acl(&v1, |u| u + 1, |g| g), AclRemap::Unchanged);
    }

    #[test]
    fn v3_rootid_is_remapped_v2_kept() {
        let mut v3 = 0x0300_0001u32.to_le_bytes().to_vec();
        v3.extend_from_slice(&[0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v3.extend_from_slice(&100_998u32.to_le_bytes());
        assert_eq!(cap_rootid(&v3), Some(100_998));
        let moved = remap_cap(&v3, |u| u + 100_000);
        assert_eq!(cap_rootid(&moved), Some(200_998));
        assert_eq!(moved[..20], v3[..20]);
        let v2 = v3[..20].to_vec();
        let mut v2 = v2;
        v2[3] = 0x02;
        assert_eq!(cap_rootid(&v2), None);
        assert_eq!(remap_cap(&v2, |u| u + 1), v2);
    }

    #[test]
    fn acl_entries_round_trip() {
        let value = acl(&[(0x01, 7, UNDEF), (ACL_USER, 5, 200_998), (0x20, 0, UNDEF)]);
        let entries = decode_acl(&value).unwrap();
        assert_eq!(
            entries[1],
            AclEntry {
                tag: ACL_TAG_USER,
                perm: 5,
                id: 200_998
            }
        );
        assert_eq!(encode_acl(&entries), value);
        assert_eq!(decode_acl(&value[..7]), None);
    }

    #[test]
    fn listxattr_names_are_recognised() {
        let p = Present::from_list(b"user.x\0system.posix_acl_access\0security.capability\0");
        assert!(p.acl_access && p.capability && !p.acl_default);
    }
}
