//! Per-inode actions the traversal carries: `survey` (read-only counts for plan and the
//! verification after a change), `migrate` (shift / reown / auto with a write-ahead journal)
//! and `rollback` (the inverse shift), `share_acl` (share ACLs and the owners survey of
//! closing a data path), and `audit`, which only reads (owners and findings). Each brings its
//! own tally type.
pub mod audit;
pub mod migrate;
pub mod rollback;
pub mod share_acl;
pub mod survey;

use super::sys::WalkSys;
use super::traverse::{Entry, Failure};
use super::xattr::{self, Present};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// The id-bearing attributes of one inode (none for symlinks, which cannot carry them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub caps: Option<Vec<u8>>,
    pub acl_access: Option<Vec<u8>>,
    pub acl_default: Option<Vec<u8>>,
}

impl Attrs {
    /// Reads them by name (planning; the change re-reads them through the pin).
    pub fn read(sys: &dyn WalkSys, entry: &Entry<'_>) -> Result<Attrs, Failure> {
        if entry.stat.is_symlink() {
            return Ok(Attrs::default());
        }
        Attrs::read_at(sys, entry.dir, entry.name).map_err(|(op, e)| Failure::new(op, entry, e))
    }

    /// Reads them from `dir`/`name` (an empty name: `dir` itself, e.g. a pin).
    pub fn read_at(
        sys: &dyn WalkSys,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
    ) -> Result<Attrs, (&'static str, Errno)> {
        let names = sys
            .list_xattrs(dir, name)
            .map_err(|e| ("list xattrs of", e))?;
        let present = Present::from_list(&names);
        let mut attrs = Attrs::default();
        for (there, attr, slot) in [
            (present.capability, xattr::CAPABILITY, &mut attrs.caps),
            (present.acl_access, xattr::ACL_ACCESS, &mut attrs.acl_access),
            (
                present.acl_default,
                xattr::ACL_DEFAULT,
                &mut attrs.acl_default,
            ),
        ] {
            if there {
                *slot = sys
                    .get_xattr(dir, name, attr)
                    .map_err(|e| ("read xattrs of", e))?;
            }
        }
        Ok(attrs)
    }
}
