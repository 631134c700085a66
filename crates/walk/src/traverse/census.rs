//! The overlayfs link census: before a changing walk on overlayfs, a read-only pass counts
//! the names of every multi-link inode by inode identity, so the walk hands over a name
//! only of an inode with every link inside the data path.
use super::{walk, Entry, Failure, InodeAction, Pinned, Tally, SAMPLES};
use crate::error::Error;
use crate::sys::WalkSys;
use rustix::fd::OwnedFd;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// (device, inode, ctime, link count) of a multi-link inode.
pub(super) type LinkStamp = (u64, u64, (i64, u32), u32);

/// What a changing walk on overlayfs does with one name of a multi-link inode.
pub(super) enum CensusSays {
    /// Every link is inside the data path: hand this name over.
    Inside,
    /// A link is outside: never changed.
    Outside,
    /// Its links or ctime changed since the census (and not by this walk): skipped.
    Changed,
}

/// The multi-link inodes of an overlayfs data path, found by a read-only pass before a
/// change: on overlayfs a changing walk hands every name over (a copy-up splits a
/// lower-layer hardlink, so each name needs its own change), so links cannot be counted as
/// it goes; the census counts them by inode identity first. An inode made on the mounted
/// overlay is one upper inode with several names, and a file outside the data linked into
/// it must never change.
pub(super) struct Census {
    /// Inodes with every link inside: the (ctime, link count) they had.
    pub(super) inside: HashMap<(u64, u64), ((i64, u32), u32)>,
    /// Inodes with links outside (or links that changed during the census).
    pub(super) outside: HashSet<(u64, u64)>,
    pub(super) samples: Vec<PathBuf>,
}

/// The census pass's findings for one inode.
struct Sighting {
    stamp: ((i64, u32), u32),
    /// The names found (hashes of their paths).
    names: HashSet<u64>,
    /// The same ctime and link count at every name.
    steady: bool,
    sample: PathBuf,
}

#[derive(Default)]
struct CensusTally(HashMap<(u64, u64), Sighting>);

impl Tally for CensusTally {
    fn merge(&mut self, other: CensusTally) {
        for (key, theirs) in other.0 {
            match self.0.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(theirs);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let mine = o.get_mut();
                    mine.steady &= theirs.steady && mine.stamp == theirs.stamp;
                    mine.names.extend(theirs.names);
                }
            }
        }
    }
}

/// The census pass: every name of every multi-link inode (read-only, per name).
struct LinkCensus;

impl InodeAction for LinkCensus {
    type Plan = ();
    type Tally = CensusTally;
    const READ_ONLY: bool = true;

    fn plan(
        &self,
        _: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut CensusTally,
    ) -> Result<Option<()>, Failure> {
        let st = &entry.stat;
        if st.is_dir() || st.nlink <= 1 {
            return Ok(None);
        }
        let rel = entry.rel();
        let name = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            rel.hash(&mut h);
            h.finish()
        };
        let stamp = (st.ctime, st.nlink);
        let sighting = tally.0.entry((st.dev, st.ino)).or_insert_with(|| Sighting {
            stamp,
            names: HashSet::new(),
            steady: true,
            sample: rel,
        });
        sighting.steady &= sighting.stamp == stamp;
        sighting.names.insert(name);
        Ok(None)
    }

    fn apply(
        &self,
        _: &dyn WalkSys,
        _: &Pinned<'_>,
        _: (),
        _: &mut CensusTally,
    ) -> Result<(), Failure> {
        Ok(())
    }
}

/// Counts the links of every multi-link inode under `root_fd` by inode identity.
pub(super) fn census(
    sys: &dyn WalkSys,
    root_path: &Path,
    root_fd: OwnedFd,
) -> Result<Census, Error> {
    let found = walk(sys, root_path, root_fd, &LinkCensus, None)?;
    let mut census = Census {
        inside: HashMap::new(),
        outside: HashSet::new(),
        samples: Vec::new(),
    };
    for (key, s) in found.tally.0 {
        if s.steady && s.names.len() as u64 >= u64::from(s.stamp.1) {
            census.inside.insert(key, s.stamp);
        } else {
            census.outside.insert(key);
            if census.samples.len() < SAMPLES {
                census.samples.push(s.sample);
            }
        }
    }
    Ok(census)
}
