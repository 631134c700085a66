//! A recording fake of the quota port: facts per path held in memory, every limit call
//! recorded in order, and the limit it sets reflected in the facts it reports next.
use super::error::QuotaError;
use super::port::{QuotaPort, TreeFacts};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct FakeQuota {
    pub trees: RefCell<BTreeMap<PathBuf, TreeFacts>>,
    /// Every `btrfs_limit` call: path, subvolume, limit.
    pub calls: RefCell<Vec<(PathBuf, u64, Option<u64>)>>,
}

impl FakeQuota {
    pub fn with(trees: &[(&Path, TreeFacts)]) -> FakeQuota {
        FakeQuota {
            trees: RefCell::new(trees.iter().map(|(p, f)| (p.to_path_buf(), *f)).collect()),
            calls: RefCell::default(),
        }
    }
}

impl QuotaPort for FakeQuota {
    fn look(&self, path: &Path) -> Result<Option<TreeFacts>, QuotaError> {
        Ok(self.trees.borrow().get(path).copied())
    }

    fn btrfs_limit(
        &self,
        path: &Path,
        dev: u64,
        subvolume: u64,
        bytes: Option<u64>,
    ) -> Result<(), QuotaError> {
        self.calls
            .borrow_mut()
            .push((path.to_path_buf(), subvolume, bytes));
        let mut trees = self.trees.borrow_mut();
        let facts = trees.get_mut(path).filter(|f| f.dev == dev);
        match facts.and_then(|f| f.btrfs.as_mut()) {
            Some(b) if b.subvolume == subvolume => {
                b.limit = bytes;
                Ok(())
            }
            _ => Err(QuotaError::Moved {
                path: path.to_path_buf(),
                dev,
                subvolume,
            }),
        }
    }
}
