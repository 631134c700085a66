//! Disk use per stack: inodes and bytes (of regular files, as the audit counts them) whose
//! owner uid lies in a stack's mapping count for that stack. The data paths and shares come
//! from the audit's own walk (its owner rows); the podman store under the stack user's home
//! (images, layers, volumes, container layers) is walked here, read-only, with the same
//! symlink-proof, one-mount traversal.
use crate::error::{Error, Result};
use crate::ids::IdMaps;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{self, Entry, Failure, InodeAction, Pinned, Tally};
use rustix::fs::FileType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which tree the bytes were found in: a stack's data path, a share, or a podman store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tree {
    Data,
    Share,
    Store,
}

impl Tree {
    /// The Prometheus `tree` label.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Data => "data",
            Tree::Share => "share",
            Tree::Store => "store",
        }
    }
}

/// One stack's use of one kind of tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackDisk {
    pub stack: String,
    pub tree: Tree,
    pub inodes: u64,
    pub bytes: u64,
}

/// Sums per (stack, tree), in a fixed order.
#[derive(Debug, Default)]
pub struct DiskUsage(BTreeMap<(String, Tree), (u64, u64)>);

impl DiskUsage {
    pub fn add(&mut self, stack: &str, tree: Tree, inodes: u64, bytes: u64) {
        let e = self.0.entry((stack.to_string(), tree)).or_default();
        e.0 += inodes;
        e.1 += bytes;
    }

    pub fn rows(self) -> Vec<StackDisk> {
        self.0
            .into_iter()
            .map(|((stack, tree), (inodes, bytes))| StackDisk {
                stack,
                tree,
                inodes,
                bytes,
            })
            .collect()
    }
}

/// Where rootless podman keeps a user's images, layers and volumes (storage.conf's default
/// `graphroot` for a user).
pub fn store_dir(home: &Path) -> PathBuf {
    home.join(".local/share/containers/storage")
}

/// Inodes and bytes per owner uid, merged across the walk's threads.
#[derive(Debug, Default)]
pub struct UidCounts(pub BTreeMap<u32, (u64, u64)>);

impl Tally for UidCounts {
    fn merge(&mut self, other: UidCounts) {
        for (uid, (i, b)) in other.0 {
            let e = self.0.entry(uid).or_default();
            e.0 += i;
            e.1 += b;
        }
    }
}

/// Counts each inode (a hardlinked one once) by its owner uid; changes nothing.
struct CountByUid;

impl InodeAction for CountByUid {
    type Plan = ();
    type Tally = UidCounts;
    const READ_ONLY: bool = true;

    fn plan(
        &self,
        _: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut UidCounts,
    ) -> std::result::Result<Option<()>, Failure> {
        let bytes = if entry.stat.file_type() == FileType::RegularFile {
            entry.stat.size
        } else {
            0
        };
        let e = tally.0.entry(entry.stat.uid).or_default();
        e.0 += 1;
        e.1 += bytes;
        Ok(None)
    }

    fn apply(
        &self,
        _: &dyn WalkSys,
        _: &Pinned<'_>,
        _: (),
        _: &mut UidCounts,
    ) -> std::result::Result<(), Failure> {
        Ok(())
    }
}

/// What a store walk found: counts per stack, and entries it could not read.
#[derive(Debug, Default)]
pub struct StoreWalk {
    pub per_stack: BTreeMap<String, (u64, u64)>,
    /// Inodes whose uid is in no stack's mapping (a host account's, or unmapped).
    pub unattributed: (u64, u64),
    pub unreadable: u64,
}

/// The stack whose mapping holds host uid `uid`.
pub fn stack_of(stacks: &[(String, IdMaps)], uid: u32) -> Option<&str> {
    stacks
        .iter()
        .find(|(_, m)| m.uid.contains_host(uid))
        .map(|(s, _)| s.as_str())
}

/// Walks the store at `path` (absolute, on the audited host) and attributes what it finds
/// through `stacks`' mappings. None when there is no store (podman never ran for the user);
/// a symlink on the way or any other failure to open it is an error.
pub fn walk_store(
    sys: &dyn WalkSys,
    path: &Path,
    stacks: &[(String, IdMaps)],
) -> Result<Option<StoreWalk>> {
    let root = match sys.open_root(path) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::io(format!("open {}", path.display()), e.into())),
    };
    let walked = traverse::walk(sys, path, root, &CountByUid, None)?;
    let mut out = StoreWalk {
        unreadable: walked.counts.failed.count + walked.counts.raced.count,
        ..StoreWalk::default()
    };
    for (uid, (i, b)) in walked.tally.0 {
        let e = match stack_of(stacks, uid) {
            Some(s) => out.per_stack.entry(s.to_string()).or_default(),
            None => &mut out.unattributed,
        };
        e.0 += i;
        e.1 += b;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Mapping, SubidRange};
    use std::os::unix::fs::{chown, symlink};

    fn maps(root: u32, start: u32) -> IdMaps {
        let m = Mapping::new(root, vec![SubidRange::new(start, 65536).unwrap()]);
        IdMaps {
            uid: m.clone(),
            gid: m,
        }
    }

    #[test]
    fn sums_are_per_stack_and_tree() {
        let mut d = DiskUsage::default();
        d.add("immich", Tree::Data, 3, 100);
        d.add("immich", Tree::Data, 2, 50);
        d.add("immich", Tree::Store, 1, 7);
        d.add("paperless", Tree::Share, 4, 0);
        let rows = d.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            StackDisk {
                stack: "immich".into(),
                tree: Tree::Data,
                inodes: 5,
                bytes: 150
            }
        );
        assert_eq!(rows[2].tree.name(), "share");
    }

    /// A real tree (run as root: files chowned into two stacks' ranges): each file counts
    /// for the stack whose mapping holds its uid, a symlink leading out is not followed.
    #[test]
    fn a_store_is_attributed_through_the_mappings() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("store");
        std::fs::create_dir_all(store.join("overlay/l1/diff")).unwrap();
        std::fs::write(store.join("overlay/l1/diff/a"), vec![0u8; 1000]).unwrap();
        std::fs::write(store.join("overlay/l1/diff/b"), vec![0u8; 24]).unwrap();
        std::fs::write(store.join("other"), vec![0u8; 5]).unwrap();
        std::fs::write(t.path().join("outside"), vec![0u8; 99_999]).unwrap();
        symlink(t.path().join("outside"), store.join("link")).unwrap();
        let stacks = vec![
            ("immich".to_string(), maps(801, 200_000)),
            ("paperless".to_string(), maps(802, 265_536)),
        ];
        for p in ["", "overlay", "overlay/l1", "overlay/l1/diff", "link"] {
            std::os::unix::fs::lchown(store.join(p), Some(801), Some(801)).unwrap();
        }
        chown(
            store.join("overlay/l1/diff/a"),
            Some(200_998),
            Some(200_998),
        )
        .unwrap();
        chown(
            store.join("overlay/l1/diff/b"),
            Some(265_536),
            Some(265_536),
        )
        .unwrap();
        // `other` stays root's: a host account, in no mapping.
        let w = walk_store(&crate::walk::sys::RealSys::new(), &store, &stacks)
            .unwrap()
            .unwrap();
        // immich: the store, overlay, l1, diff, the symlink and `a`.
        assert_eq!(w.per_stack.get("immich"), Some(&(6, 1000)));
        assert_eq!(w.per_stack.get("paperless"), Some(&(1, 24)));
        assert_eq!(w.unattributed, (1, 5));
        assert_eq!(w.unreadable, 0);
    }

    #[test]
    fn a_missing_store_is_none_and_a_symlinked_one_an_error() {
        let t = tempfile::tempdir().unwrap();
        let sys = crate::walk::sys::RealSys::new();
        assert!(walk_store(&sys, &t.path().join("nothing"), &[])
            .unwrap()
            .is_none());
        std::fs::create_dir(t.path().join("elsewhere")).unwrap();
        symlink(t.path().join("elsewhere"), t.path().join("store")).unwrap();
        assert!(walk_store(&sys, &t.path().join("store"), &[]).is_err());
    }
}
