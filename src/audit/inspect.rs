//! The per-inode part of the audit: counts by owner id and the findings one inode can show
//! (foreign or legacy ids, world-writable, setuid/setgid, capabilities, foreign ACL entries).
//! Pure over what the walk read; its tally merges per batch. Hardlinks reaching outside the
//! tree are counted by the traversal (it forgets an inode once all its links were seen).
use super::access::parse_acl;
use super::attribution::{IdBook, IdKind};
use super::model::{Counts, FindingKind};
use crate::ids::Mapping;
use crate::walk::sys::Stat;
use rustix::fs::FileType;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// How many sample paths a finding keeps.
pub const SAMPLES: usize = 10;

/// Which side of the audited scope an id falls on, decided per inode without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The scope's own stack (a share: a granted stack).
    Own,
    Legacy,
    /// Another stack (a share: one it does not grant).
    Other,
    /// No stack's and not the legacy owner's (host accounts, unmapped).
    Outside,
}

/// Host id ranges with their side, checked in priority order (own, legacy, other).
#[derive(Clone, Debug, Default)]
pub struct Sides {
    ranges: Vec<(u32, u64, Side)>,
}

impl Sides {
    fn push(&mut self, m: &Mapping, side: Side) {
        self.ranges.push((m.root, u64::from(m.root) + 1, side));
        for r in &m.ranges {
            self.ranges.push((r.start, r.end(), side));
        }
    }
    pub fn of(&self, id: u32) -> Side {
        self.ranges
            .iter()
            .find(|(start, end, _)| id >= *start && u64::from(id) < *end)
            .map_or(Side::Outside, |r| r.2)
    }
}

/// The data path's or share's context: who owns it, and whether its migration is done.
#[derive(Clone, Debug)]
pub struct Inspector {
    pub uids: Sides,
    pub gids: Sides,
    /// Legacy ids are a finding (the data path's migration is done).
    pub legacy_is_finding: bool,
}

impl Inspector {
    /// `own` are the stacks whose ids belong here (the data path's stack, or a share's grantees).
    pub fn new(book: &IdBook, own: &[String], legacy_is_finding: bool) -> Inspector {
        let mut uids = Sides::default();
        let mut gids = Sides::default();
        for (side, pick) in [(Side::Own, true), (Side::Other, false)] {
            if side == Side::Other {
                if let Some((_, l)) = &book.legacy {
                    uids.push(&l.uid, Side::Legacy);
                    gids.push(&l.gid, Side::Legacy);
                }
            }
            for (name, maps) in &book.stacks {
                if own.contains(name) == pick {
                    uids.push(&maps.uid, side);
                    gids.push(&maps.gid, side);
                }
            }
        }
        Inspector {
            uids,
            gids,
            legacy_is_finding,
        }
    }

    /// Looks at one inode (each hardlinked inode once) and counts it into `tally`; `rel`
    /// gives its path relative to the audited path, only when a sample is kept.
    pub fn inspect(
        &self,
        stat: &Stat,
        attrs: &Attributes,
        tally: &mut AuditTally,
        rel: &dyn Fn() -> PathBuf,
    ) {
        let regular = stat.file_type() == FileType::RegularFile;
        let bytes = if regular { stat.size } else { 0 };
        tally.inodes += 1;
        tally.bytes += bytes;
        for (map, id) in [(&mut tally.uids, stat.uid), (&mut tally.gids, stat.gid)] {
            let c = map.entry(id).or_default();
            c.inodes += 1;
            c.bytes += bytes;
        }
        let (su, sg) = (self.uids.of(stat.uid), self.gids.of(stat.gid));
        if su == Side::Other || sg == Side::Other {
            tally.hit(FindingKind::OtherStackIds, rel);
        }
        if self.legacy_is_finding && (su == Side::Legacy || sg == Side::Legacy) {
            tally.hit(FindingKind::LegacyAfterMigration, rel);
        }
        if !stat.is_symlink() && stat.mode & 0o002 != 0 {
            tally.hit(FindingKind::WorldWritable, rel);
        }
        if regular && stat.mode & 0o6000 != 0 {
            tally.hit(FindingKind::SetuidSetgid, rel);
        }
        if attrs.capability {
            tally.hit(FindingKind::FileCapability, rel);
        }
        let foreign_acl = [&attrs.acl_access, &attrs.acl_default]
            .into_iter()
            .flatten()
            .filter_map(|v| parse_acl(v))
            .flatten()
            .any(|e| {
                (e.is_named_user() && self.uids.of(e.id) == Side::Other)
                    || (e.is_named_group() && self.gids.of(e.id) == Side::Other)
            });
        if foreign_acl {
            tally.hit(FindingKind::AclOtherStack, rel);
        }
    }
}

/// The id-bearing attributes of one inode, as read by the walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub acl_access: Option<Vec<u8>>,
    pub acl_default: Option<Vec<u8>>,
    pub capability: bool,
}

/// A finding's count and first samples (relative paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub count: u64,
    pub samples: Vec<PathBuf>,
}

impl Hits {
    pub fn add(&mut self, path: impl FnOnce() -> PathBuf) {
        self.count += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(path());
        }
    }
    fn merge(&mut self, other: Hits) {
        self.count += other.count;
        let room = SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }
}

/// What the audit of one path counts: per id inodes and bytes, per kind the findings.
/// Memory is bounded by the distinct ids found, not by the tree.
#[derive(Clone, Debug, Default)]
pub struct AuditTally {
    pub inodes: u64,
    pub bytes: u64,
    pub uids: HashMap<u32, Counts>,
    pub gids: HashMap<u32, Counts>,
    pub hits: BTreeMap<FindingKind, Hits>,
}

impl AuditTally {
    pub fn hit(&mut self, kind: FindingKind, rel: &dyn Fn() -> PathBuf) {
        self.hits.entry(kind).or_default().add(rel);
    }

    pub fn merge(&mut self, other: AuditTally) {
        self.inodes += other.inodes;
        self.bytes += other.bytes;
        for (mine, theirs) in [(&mut self.uids, other.uids), (&mut self.gids, other.gids)] {
            for (id, c) in theirs {
                mine.entry(id).or_default().add(&c);
            }
        }
        for (kind, hits) in other.hits {
            self.hits.entry(kind).or_default().merge(hits);
        }
    }

    /// The resolved owner rows of one id kind, most inodes first.
    pub fn rows(
        &self,
        book: &IdBook,
        kind: IdKind,
        scope: super::attribution::Scope<'_>,
    ) -> Vec<super::model::OwnerRow> {
        let ids = match kind {
            IdKind::Uid => &self.uids,
            IdKind::Gid => &self.gids,
        };
        let mut rows: Vec<_> = ids
            .iter()
            .map(|(&id, c)| super::model::OwnerRow {
                host_id: id,
                owner: book.resolve(kind, id, scope),
                inodes: c.inodes,
                bytes: c.bytes,
            })
            .collect();
        rows.sort_by(|a, b| b.inodes.cmp(&a.inodes).then(a.host_id.cmp(&b.host_id)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::super::access::{encode_acl, AclEntry, TAG_USER};
    use super::super::attribution::tests::book;
    use super::*;

    fn stat(uid: u32, gid: u32, mode: u32) -> Stat {
        Stat {
            dev: 1,
            mnt_id: 1,
            ino: 7,
            mode,
            uid,
            gid,
            nlink: 1,
            size: 100,
            ctime: (0, 0),
            mtime: (0, 0),
            btime: None,
            attributes: 0,
        }
    }

    fn hits_of(inspector: &Inspector, st: Stat, attrs: Attributes) -> Vec<FindingKind> {
        let mut t = AuditTally::default();
        inspector.inspect(&st, &attrs, &mut t, &|| PathBuf::from("f"));
        t.hits.keys().copied().collect()
    }

    fn immich(done: bool) -> Inspector {
        Inspector::new(&book(), &["immich".to_string()], done)
    }

    const FILE: u32 = 0o100_644;

    #[test]
    fn own_ids_are_no_finding_foreign_uid_or_gid_are() {
        let i = immich(true);
        assert!(hits_of(&i, stat(200_998, 200_998, FILE), Attributes::default()).is_empty());
        assert_eq!(
            hits_of(&i, stat(200_998, 265_600, FILE), Attributes::default()),
            vec![FindingKind::OtherStackIds]
        );
        assert_eq!(
            hits_of(&i, stat(801, 200_998, FILE), Attributes::default()),
            vec![FindingKind::OtherStackIds]
        );
    }

    #[test]
    fn legacy_ids_are_a_finding_only_after_the_migration() {
        let st = stat(100_998, 100_998, FILE);
        assert!(hits_of(&immich(false), st, Attributes::default()).is_empty());
        assert_eq!(
            hits_of(&immich(true), st, Attributes::default()),
            vec![FindingKind::LegacyAfterMigration]
        );
    }

    #[test]
    fn modes_capabilities_and_acls() {
        let i = immich(false);
        let none = Attributes::default;
        assert_eq!(
            hits_of(&i, stat(800, 800, 0o040_777), none()),
            vec![FindingKind::WorldWritable]
        );
        assert_eq!(
            hits_of(&i, stat(800, 800, 0o041_777), none()),
            vec![FindingKind::WorldWritable]
        );
        assert!(
            hits_of(&i, stat(800, 800, 0o120_777), none()).is_empty(),
            "symlinks are 0777"
        );
        assert_eq!(
            hits_of(&i, stat(800, 800, 0o104_755), none()),
            vec![FindingKind::SetuidSetgid]
        );
        assert!(
            hits_of(&i, stat(800, 800, 0o042_755), none()).is_empty(),
            "setgid dirs are fine"
        );
        let cap = Attributes {
            capability: true,
            ..none()
        };
        assert_eq!(
            hits_of(&i, stat(800, 800, FILE), cap),
            vec![FindingKind::FileCapability]
        );
        let entry = |id| {
            encode_acl(&[AclEntry {
                tag: TAG_USER,
                perm: 5,
                id,
            }])
        };
        let own = Attributes {
            acl_access: Some(entry(200_999)),
            ..none()
        };
        assert!(hits_of(&i, stat(800, 800, FILE), own).is_empty());
        let foreign = Attributes {
            acl_default: Some(entry(265_999)),
            ..none()
        };
        assert_eq!(
            hits_of(&i, stat(800, 800, FILE), foreign),
            vec![FindingKind::AclOtherStack]
        );
    }

    #[test]
    fn counts_per_id_merge_and_samples_are_bounded() {
        let i = immich(true);
        let mut a = AuditTally::default();
        let mut b = AuditTally::default();
        for n in 0..15 {
            let t = if n % 2 == 0 { &mut a } else { &mut b };
            i.inspect(
                &stat(265_600, 200_000, FILE),
                &Attributes::default(),
                t,
                &|| PathBuf::from(format!("f{n}")),
            );
        }
        a.merge(b);
        assert_eq!(a.inodes, 15);
        assert_eq!(
            a.uids[&265_600],
            Counts {
                inodes: 15,
                bytes: 1500
            }
        );
        let hits = &a.hits[&FindingKind::OtherStackIds];
        assert_eq!((hits.count, hits.samples.len()), (15, SAMPLES));
    }
}
