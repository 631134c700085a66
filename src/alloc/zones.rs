//! Where the host's own allocators hand out subordinate ranges (shadow's `useradd` within
//! login.defs' SUB_UID_MIN..SUB_UID_MAX, NixOS's automatic ranges), so plan can warn when a
//! stack's range lies there. Pure: observe reads the files, this only interprets them.
use crate::ids::SubidRange;
use serde::Serialize;

/// shadow's defaults when login.defs is absent or does not set the keys (shadow 4.13,
/// `find_new_sub_uids`): SUB_UID_MIN 100000, SUB_UID_MAX 600100000.
pub const SHADOW_SUB_MIN: u64 = 100_000;
pub const SHADOW_SUB_MAX: u64 = 600_100_000;

/// NixOS (`update-users-groups.pl`, `allocSubUid`) gives a normal user with
/// `autoSubUidGidRange` the range `100000 + k * 65536`, k = the lowest index not used yet
/// (ids 100000..10000000 of its allocator, so k never stops below 2^32). It hands them out
/// bottom-up, so the zone that matters is the first ranges: we count as many as shadow's
/// default span holds (9156 ranges, up to 600145216), far more users than a host has.
pub const NIXOS_AUTO_START: u64 = 100_000;
pub const NIXOS_AUTO_SIZE: u64 = 65_536;
pub const NIXOS_AUTO_COUNTED: u64 = 9_156;

/// A span of ids some allocator of the host hands out on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubidZone {
    /// First id of the zone.
    pub start: u64,
    /// One past its last id.
    pub end: u64,
    /// Who hands them out, for messages: "shadow's useradd (SUB_UID_MIN..SUB_UID_MAX in /etc/login.defs)".
    pub allocator: String,
}

impl SubidZone {
    pub fn overlaps(&self, r: &SubidRange) -> bool {
        self.start < r.end() && u64::from(r.start) < self.end
    }
}

/// The SUB_UID_* and SUB_GID_* bounds of a login.defs (missing keys keep shadow's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowSubBounds {
    pub uid_min: u64,
    pub uid_max: u64,
    pub gid_min: u64,
    pub gid_max: u64,
}

impl Default for ShadowSubBounds {
    fn default() -> Self {
        ShadowSubBounds {
            uid_min: SHADOW_SUB_MIN,
            uid_max: SHADOW_SUB_MAX,
            gid_min: SHADOW_SUB_MIN,
            gid_max: SHADOW_SUB_MAX,
        }
    }
}

/// Reads the SUB_UID/SUB_GID bounds from login.defs text (`KEY VALUE` lines, `#` comments).
/// A value that is not a number is ignored, as shadow's getdef falls back to its default.
pub fn parse_login_defs(text: &str) -> ShadowSubBounds {
    let mut b = ShadowSubBounds::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(key), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(n) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "SUB_UID_MIN" => b.uid_min = n,
            "SUB_UID_MAX" => b.uid_max = n,
            "SUB_GID_MIN" => b.gid_min = n,
            "SUB_GID_MAX" => b.gid_max = n,
            _ => {}
        }
    }
    b
}

/// The zones of a host: shadow's (its login.defs, or shadow's defaults when `login_defs` is
/// None) and, on NixOS, its automatic ranges.
pub fn host_zones(login_defs: Option<&str>, nixos: bool) -> Vec<SubidZone> {
    let b = login_defs.map(parse_login_defs).unwrap_or_default();
    let source = if login_defs.is_some() {
        "in /etc/login.defs"
    } else {
        "shadow's defaults: no /etc/login.defs"
    };
    let mut out = Vec::new();
    let lo = b.uid_min.min(b.gid_min);
    let hi = b.uid_max.max(b.gid_max);
    if lo <= hi {
        out.push(SubidZone {
            start: lo,
            end: hi + 1,
            allocator: format!(
                "shadow's useradd (SUB_UID_MIN..SUB_UID_MAX {}-{}, {source})",
                lo, hi
            ),
        });
    }
    if nixos {
        out.push(SubidZone {
            start: NIXOS_AUTO_START,
            end: NIXOS_AUTO_START + NIXOS_AUTO_COUNTED * NIXOS_AUTO_SIZE,
            allocator: "NixOS's automatic ranges for normal users (100000 + k*65536)".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_defs_bounds_override_the_defaults_and_comments_are_ignored() {
        let b = parse_login_defs(
            "# SUB_UID_MIN 1\nSUB_UID_MIN\t\t  200000\nSUB_UID_MAX 300000\nSUB_GID_MAX nonsense\nUID_MIN 1000\n",
        );
        assert_eq!(
            b,
            ShadowSubBounds {
                uid_min: 200_000,
                uid_max: 300_000,
                gid_min: SHADOW_SUB_MIN,
                gid_max: SHADOW_SUB_MAX
            }
        );
    }

    #[test]
    fn the_default_pool_is_aligned_and_clear_of_every_host_allocator() {
        let p = crate::policy::Pools::default();
        assert_eq!(p.subid_first % 65_536, 0);
        assert_eq!((u64::from(p.subid_last) + 1) % 65_536, 0);
        let whole = SubidRange::new(p.subid_first, p.subid_last - p.subid_first + 1).unwrap();
        for z in host_zones(None, true) {
            assert!(!z.overlaps(&whole), "{z:?}");
        }
        // systemd's container range (0x00080000..0x6FFFFFFF) and foreign range (0x7FFE0000..)
        assert!(u64::from(p.subid_first) > 0x6FFF_FFFF);
        assert!(u64::from(p.subid_last) < 0x7FFE_0000);
    }

    #[test]
    fn nixos_zone_covers_its_first_automatic_ranges() {
        let z = host_zones(Some(""), true);
        assert_eq!(z.len(), 2);
        let second_auto = SubidRange::new(100_000 + 65_536, 65_536).unwrap();
        assert!(z[1].overlaps(&second_auto));
        let old_default = SubidRange::new(200_000, 65_536).unwrap();
        assert!(z[0].overlaps(&old_default) && z[1].overlaps(&old_default));
    }
}
