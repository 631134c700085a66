//! Host/container id arithmetic: subordinate ranges and the rootless mapping podman builds
//! from them. Everything that turns one id into another goes through here.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ids at or above this are never allocated: the kernel and shadow treat them specially
/// (2^31 and up are reserved by systemd's and podman's conventions, and `(uid_t)-1` is "no id").
pub const ID_CEILING: u64 = 1 << 31;

/// A half-open range `[start, start + count)` of host ids, as one subuid/subgid line holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubidRange {
    pub start: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("a subordinate range needs at least one id")]
    Empty,
    #[error("range {start}+{count} ends past the largest id 4294967295")]
    Overflow { start: u32, count: u32 },
}

impl SubidRange {
    pub fn new(start: u32, count: u32) -> Result<Self, RangeError> {
        if count == 0 {
            return Err(RangeError::Empty);
        }
        if u64::from(start) + u64::from(count) > 1 << 32 {
            return Err(RangeError::Overflow { start, count });
        }
        Ok(SubidRange { start, count })
    }

    /// One past the last id; u64 so `start + count` never wraps.
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }

    pub fn last(&self) -> u32 {
        (self.end() - 1) as u32
    }

    pub fn contains(&self, id: u32) -> bool {
        id >= self.start && u64::from(id) < self.end()
    }

    pub fn overlaps(&self, other: &SubidRange) -> bool {
        u64::from(self.start) < other.end() && u64::from(other.start) < self.end()
    }
}

impl fmt::Display for SubidRange {
    /// `start-last` (inclusive), the form `usermod --add-subuids` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.last())
    }
}

/// One direction's (uid or gid) rootless mapping: container 0 is `root`, container ids
/// 1.. run through `ranges` in order, as podman concatenates a user's subordinate lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub root: u32,
    pub ranges: Vec<SubidRange>,
}

impl Mapping {
    pub fn new(root: u32, ranges: Vec<SubidRange>) -> Self {
        Mapping { root, ranges }
    }

    /// How many container ids exist: 0 plus every subordinate id.
    pub fn len(&self) -> u64 {
        1 + self.ranges.iter().map(|r| u64::from(r.count)).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The host id a container id lands on, or None when the container cannot have it.
    pub fn to_host(&self, container: u32) -> Option<u32> {
        if container == 0 {
            return Some(self.root);
        }
        let mut offset = u64::from(container) - 1;
        for r in &self.ranges {
            if offset < u64::from(r.count) {
                return Some(r.start + offset as u32);
            }
            offset -= u64::from(r.count);
        }
        None
    }

    /// The container id a host id appears as, or None when it is outside this mapping
    /// (the container then sees it as the overflow id 65534).
    pub fn to_container(&self, host: u32) -> Option<u32> {
        if host == self.root {
            return Some(0);
        }
        let mut base: u64 = 1;
        for r in &self.ranges {
            if r.contains(host) {
                return u32::try_from(base + u64::from(host - r.start)).ok();
            }
            base += u64::from(r.count);
        }
        None
    }

    pub fn contains_host(&self, host: u32) -> bool {
        self.to_container(host).is_some()
    }

    /// Whether any host id belongs to both mappings.
    pub fn overlaps(&self, other: &Mapping) -> bool {
        other.contains_host(self.root)
            || self.contains_host(other.root)
            || self
                .ranges
                .iter()
                .any(|a| other.ranges.iter().any(|b| a.overlaps(b)))
    }

    /// The lines `/proc/self/uid_map` shows inside a rootless container of this mapping.
    pub fn proc_map_lines(&self) -> Vec<(u32, u32, u32)> {
        let mut lines = vec![(0, self.root, 1)];
        let mut next: u32 = 1;
        for r in &self.ranges {
            lines.push((next, r.start, r.count));
            next = next.saturating_add(r.count);
        }
        lines
    }
}

/// Both directions of a user's rootless mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uid: Mapping,
    pub gid: Mapping,
}

impl IdMaps {
    /// Rootful podman's mapping (the legacy owner is root): container id N is host id N, for
    /// container ids 0 to `count` (a stack mapping's size), so ids beyond what the stack can
    /// hold stay outside, reported, never guessed.
    pub fn identity(count: u32) -> Self {
        let ranges = SubidRange::new(1, count)
            .map(|r| vec![r])
            .unwrap_or_default();
        let m = Mapping::new(0, ranges);
        IdMaps {
            uid: m.clone(),
            gid: m,
        }
    }

    pub fn overlaps(&self, other: &IdMaps) -> bool {
        self.uid.overlaps(&other.uid) || self.gid.overlaps(&other.gid)
    }
}

/// Moves ids from one mapping to another by container id: host id `h` in `from` becomes
/// `to.to_host(from.to_container(h))`. Ids outside `from` are not moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub from: IdMaps,
    pub to: IdMaps,
}

impl Shift {
    pub fn uid(&self, host: u32) -> Option<u32> {
        self.from
            .uid
            .to_container(host)
            .and_then(|c| self.to.uid.to_host(c))
    }
    pub fn gid(&self, host: u32) -> Option<u32> {
        self.from
            .gid
            .to_container(host)
            .and_then(|c| self.to.gid.to_host(c))
    }
    pub fn inverse(&self) -> Shift {
        Shift {
            from: self.to.clone(),
            to: self.from.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stack() -> Mapping {
        Mapping::new(997, vec![SubidRange::new(200_000, 65_536).unwrap()])
    }

    #[test]
    fn container_ids_map_as_podman_observed() {
        let m = stack();
        assert_eq!(m.to_host(0), Some(997));
        assert_eq!(m.to_host(1), Some(200_000));
        assert_eq!(m.to_host(999), Some(200_998));
        assert_eq!(m.to_host(1000), Some(200_999));
        assert_eq!(m.to_host(65_536), Some(265_535));
        assert_eq!(m.to_host(65_537), None);
        assert_eq!(m.to_container(200_998), Some(999));
        assert_eq!(m.to_container(997), Some(0));
        assert_eq!(m.to_container(199_999), None);
        assert_eq!(m.to_container(265_536), None);
    }

    #[test]
    fn several_ranges_concatenate() {
        let m = Mapping::new(
            1000,
            vec![
                SubidRange::new(100_000, 10).unwrap(),
                SubidRange::new(500_000, 10).unwrap(),
            ],
        );
        assert_eq!(m.to_host(10), Some(100_009));
        assert_eq!(m.to_host(11), Some(500_000));
        assert_eq!(m.to_container(500_009), Some(20));
        assert_eq!(
            m.proc_map_lines(),
            vec![(0, 1000, 1), (1, 100_000, 10), (11, 500_000, 10)]
        );
    }

    #[test]
    fn range_ends_are_exclusive_and_checked() {
        let r = SubidRange::new(10, 5).unwrap();
        assert!(r.contains(14) && !r.contains(15) && !r.contains(9));
        assert!(!r.overlaps(&SubidRange::new(15, 1).unwrap()));
        assert!(r.overlaps(&SubidRange::new(14, 1).unwrap()));
        assert_eq!(
            SubidRange::new(u32::MAX, 2),
            Err(RangeError::Overflow {
                start: u32::MAX,
                count: 2
            })
        );
        assert!(SubidRange::new(u32::MAX, 1).is_ok());
        assert_eq!(SubidRange::new(1, 0), Err(RangeError::Empty));
        assert_eq!(r.to_string(), "10-14");
    }

    proptest! {
        #[test]
        fn to_container_inverts_to_host(root in 1u32..100_000, start in 100_000u32..1_000_000, count in 1u32..100_000, c in 0u32..200_000) {
            let m = Mapping::new(root, vec![SubidRange::new(start, count).unwrap()]);
            match m.to_host(c) {
                Some(h) => prop_assert_eq!(m.to_container(h), Some(c)),
                None => prop_assert!(u64::from(c) > u64::from(count)),
            }
        }

        #[test]
        fn shift_then_inverse_is_identity(c in 0u32..=65_536) {
            let legacy = Mapping::new(1000, vec![SubidRange::new(100_000, 65_536).unwrap()]);
            let s = Shift {
                from: IdMaps { uid: legacy.clone(), gid: legacy },
                to: IdMaps { uid: stack(), gid: stack() },
            };
            let h = s.from.uid.to_host(c).unwrap();
            let moved = s.uid(h).unwrap();
            prop_assert_eq!(s.to.uid.to_container(moved), Some(c));
            prop_assert_eq!(s.inverse().uid(moved), Some(h));
        }

        #[test]
        fn overlap_is_symmetric(a in 0u32..1000, ac in 1u32..100, b in 0u32..1000, bc in 1u32..100) {
            let x = SubidRange::new(a, ac).unwrap();
            let y = SubidRange::new(b, bc).unwrap();
            let brute = (a..a + ac).any(|i| y.contains(i));
            prop_assert_eq!(x.overlaps(&y), brute);
            prop_assert_eq!(y.overlaps(&x), brute);
        }
    }
}
