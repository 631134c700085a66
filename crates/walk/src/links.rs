//! Link counting for multi-link inodes: which ones have every link inside the walked tree.
//! An inode is remembered from its first link to its last and then forgotten, in 25 bytes or
//! so, so memory follows the links still open, not every hardlinked inode the walk has seen.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

/// Shards, so that threads finding links at once seldom wait for each other.
const SHARDS: usize = 64;
/// Sample paths kept for inodes still open (the ones reported if their links stay missing).
const SAMPLES_KEPT: usize = 64;

/// What one link of a multi-link inode means for the action: `first` (the first link found)
/// and `last` (every link is now found inside the tree).
#[derive(Debug, PartialEq, Eq)]
pub struct LinkSeen {
    pub first: bool,
    pub last: bool,
}

/// One inode whose links are still being counted: 16 bytes, 24 with its inode number.
#[derive(Clone, Copy)]
struct Open {
    /// Low 32 bits of the ctime seconds, the nanoseconds and the link count when counting
    /// (re)started: a link added, removed or renamed moves ctime, and counting starts over.
    /// (Two ctimes 136 years apart cannot both occur within one walk.)
    ctime_lo: u32,
    ctime_nsec: u32,
    nlink: u32,
    /// Hash of the first link's (directory inode, name): a directory visited twice (renamed
    /// under the walk) does not count its links twice. A collision only makes an inode look
    /// as if it had a link outside (never changed): the safe side. Links beyond the first
    /// are in [`Shard::more`] (only inodes with three links or more get there).
    first_link: u32,
}

/// A multiply-shift hash for inode numbers (not chosen by users; names are hashed apart).
#[derive(Default)]
struct InoHasher(u64);

impl Hasher for InoHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type InoMap<K, V> = HashMap<K, V, BuildHasherDefault<InoHasher>>;

#[derive(Default)]
struct Shard {
    /// Open inodes per device (one device but for btrfs subvolumes), by inode number.
    open: Vec<(u64, InoMap<u64, Open>)>,
    /// Link hashes beyond the first, only for inodes with more than two links.
    more: InoMap<(u64, u64), Vec<u32>>,
    /// Sample paths of some open inodes (at most [`SAMPLES_KEPT`] in all shards).
    samples: InoMap<(u64, u64), PathBuf>,
}

/// The open inodes of device `dev` in one shard.
fn device(open: &mut Vec<(u64, InoMap<u64, Open>)>, dev: u64) -> &mut InoMap<u64, Open> {
    let at = match open.iter().position(|(d, _)| *d == dev) {
        Some(at) => at,
        None => {
            open.push((dev, InoMap::default()));
            open.len() - 1
        }
    };
    &mut open[at].1
}

/// Open multi-link inodes of one walk, by (device, inode).
pub struct LinkTable {
    shards: Vec<Mutex<Shard>>,
    sampled: std::sync::atomic::AtomicUsize,
}

impl Default for LinkTable {
    fn default() -> Self {
        LinkTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            sampled: Default::default(),
        }
    }
}

/// The hash of one link: its directory's inode number and its name.
pub fn link_hash(dir_ino: u64, name: &[u8]) -> u32 {
    let mut h = InoHasher(dir_ino.wrapping_mul(0xA076_1D64_78BD_642F));
    h.write(name);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

impl LinkTable {
    fn shard(&self, key: (u64, u64)) -> &Mutex<Shard> {
        let mut h = InoHasher::default();
        h.write_u64(key.1);
        h.write_u64(key.0);
        &self.shards[(h.finish() >> 58) as usize % SHARDS]
    }

    /// Counts one link of inode `key` (device, inode) found as `link` (see [`link_hash`]),
    /// with the inode's current link count and ctime. `sample` gives its path, asked only
    /// while few inodes hold one.
    pub fn seen(
        &self,
        key: (u64, u64),
        link: u32,
        nlink: u32,
        ctime: (i64, u32),
        sample: impl FnOnce() -> PathBuf,
    ) -> LinkSeen {
        use std::collections::hash_map::Entry;
        use std::sync::atomic::Ordering;
        let stamp = (ctime.0 as u32, ctime.1, nlink);
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let shard = &mut *shard;
        let open = match device(&mut shard.open, key.0).entry(key.1) {
            Entry::Vacant(v) => {
                if nlink <= 1 {
                    // Its other links went away meanwhile: this is the only one.
                    return LinkSeen {
                        first: true,
                        last: true,
                    };
                }
                v.insert(Open {
                    ctime_lo: stamp.0,
                    ctime_nsec: stamp.1,
                    nlink,
                    first_link: link,
                });
                if self.sampled.fetch_add(1, Ordering::Relaxed) < SAMPLES_KEPT {
                    shard.samples.insert(key, sample());
                } else {
                    self.sampled.fetch_sub(1, Ordering::Relaxed);
                }
                return LinkSeen {
                    first: true,
                    last: false,
                };
            }
            Entry::Occupied(o) => o.into_mut(),
        };
        let counted = if (open.ctime_lo, open.ctime_nsec, open.nlink) != stamp {
            // Linked, unlinked or renamed meanwhile: count again from this link.
            (open.ctime_lo, open.ctime_nsec, open.nlink) = stamp;
            open.first_link = link;
            shard.more.remove(&key);
            1
        } else if open.first_link == link {
            1 + shard.more.get(&key).map_or(0, Vec::len)
        } else {
            let more = shard.more.entry(key).or_default();
            if !more.contains(&link) {
                more.push(link);
            }
            1 + more.len()
        };
        let last = counted as u64 >= u64::from(open.nlink);
        if last {
            device(&mut shard.open, key.0).remove(&key.1);
            shard.more.remove(&key);
            if shard.samples.remove(&key).is_some() {
                self.sampled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        LinkSeen { first: false, last }
    }

    /// The inodes still open once the walk is done (links outside the tree): how many, and
    /// the sample paths held (sorted).
    pub fn into_open(self) -> (u64, Vec<PathBuf>) {
        let mut count = 0;
        let mut samples = Vec::new();
        for shard in self.shards {
            let shard = shard.into_inner().unwrap_or_else(|e| e.into_inner());
            count += shard.open.iter().map(|(_, m)| m.len() as u64).sum::<u64>();
            samples.extend(shard.samples.into_values());
        }
        samples.sort();
        (count, samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(t: &LinkTable, ino: u64, link: u32, nlink: u32, ctime: i64) -> (bool, bool) {
        let s = t.seen((1, ino), link, nlink, (ctime, 0), || {
            PathBuf::from(format!("f{ino}"))
        });
        (s.first, s.last)
    }

    #[test]
    fn an_inode_is_forgotten_at_its_last_link() {
        let t = LinkTable::default();
        assert_eq!(seen(&t, 7, 1, 3, 100), (true, false));
        assert_eq!(seen(&t, 7, 2, 3, 100), (false, false));
        assert_eq!(seen(&t, 7, 3, 3, 100), (false, true));
        assert_eq!(t.into_open(), (0, vec![]));
    }

    #[test]
    fn the_same_link_twice_counts_once() {
        let t = LinkTable::default();
        assert_eq!(seen(&t, 7, 1, 2, 100), (true, false));
        assert_eq!(seen(&t, 7, 1, 2, 100), (false, false));
        let t3 = LinkTable::default();
        seen(&t3, 8, 1, 3, 100);
        seen(&t3, 8, 2, 3, 100);
        assert_eq!(seen(&t3, 8, 2, 3, 100), (false, false));
        assert_eq!(t3.into_open(), (1, vec![PathBuf::from("f8")]));
        assert_eq!(t.into_open(), (1, vec![PathBuf::from("f7")]));
    }

    #[test]
    fn a_link_change_under_the_walk_starts_the_count_again() {
        let t = LinkTable::default();
        seen(&t, 7, 1, 2, 100);
        // A link was added elsewhere (nlink 3, new ctime): the first link no longer counts.
        assert_eq!(seen(&t, 7, 2, 3, 101), (false, false));
        assert_eq!(seen(&t, 7, 3, 3, 101), (false, false));
        assert_eq!(seen(&t, 7, 4, 3, 101), (false, true));
    }

    #[test]
    fn the_same_inode_number_on_another_device_is_another_inode() {
        let t = LinkTable::default();
        t.seen((1, 7), 1, 2, (100, 0), PathBuf::new);
        let other = t.seen((2, 7), 2, 2, (100, 0), PathBuf::new);
        assert_eq!(
            other,
            LinkSeen {
                first: true,
                last: false
            }
        );
        assert_eq!(t.into_open().0, 2);
    }

    #[test]
    fn only_a_bounded_number_of_samples_is_held() {
        let t = LinkTable::default();
        for ino in 0..1000 {
            seen(&t, ino, 1, 2, 100);
        }
        let (count, samples) = t.into_open();
        assert_eq!(count, 1000);
        assert_eq!(samples.len(), SAMPLES_KEPT);
    }

    #[test]
    fn samples_are_freed_with_their_inode_so_later_ones_get_one() {
        let t = LinkTable::default();
        for ino in 0..SAMPLES_KEPT as u64 {
            seen(&t, ino, 1, 2, 100);
            seen(&t, ino, 2, 2, 100);
        }
        seen(&t, 5000, 1, 2, 100);
        assert_eq!(t.into_open(), (1, vec![PathBuf::from("f5000")]));
    }
}
