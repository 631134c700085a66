//! Per-inode actions the traversal carries: `survey` (read-only counts for plan and the
//! verification after a change), `migrate` (shift / reown / auto with a write-ahead journal)
//! and `rollback` (the inverse shift), and the inode attributes every action reads (`Attrs`).
//! Each brings its own tally type. Actions of other capabilities live with them
//! (`isolation::share_acl`, `audit::tree_walk`) and plug into the same traversal.
pub mod migrate;
pub mod rollback;
pub mod survey;

use super::rules::Rules;
use super::sys::WalkSys;
use super::traverse::{Entry, Failure, Pinned};
use super::xattr::{self, AclRemap, Present};
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
        let (fd, name) = match entry.opened {
            Some(opened) => (opened, c""),
            None => (entry.dir, entry.name),
        };
        Attrs::read_at(sys, fd, name).map_err(|(op, e)| Failure::new(op, entry, e))
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

/// `acl` with its ids remapped by `rules`: None when it is absent or nothing changes; sets
/// `unmapped` when two entries would collide (the inode must then not change at all).
pub fn remapped(rules: &Rules, acl: &Option<Vec<u8>>, unmapped: &mut bool) -> Option<Vec<u8>> {
    match rules.acl(acl.as_deref()?) {
        AclRemap::Unchanged => None,
        AclRemap::Changed(v) => Some(v),
        AclRemap::Collision => {
            *unmapped = true;
            None
        }
    }
}

/// The new owner and id-bearing attributes of one inode, as migrate and rollback plan them,
/// and how both put them on the pinned inode: only if its attributes still read as planned,
/// then chown, ACLs and capability, all through the descriptor.
#[derive(Debug)]
pub struct OwnerChange {
    pub uid: u32,
    pub gid: u32,
    pub chown: bool,
    /// What was read when planning: the change goes ahead only if the pin reads the same.
    pub attrs: Attrs,
    /// New values to write (None: left as they are).
    pub caps: Option<Vec<u8>>,
    pub acl_access: Option<Vec<u8>>,
    pub acl_default: Option<Vec<u8>>,
}

impl OwnerChange {
    pub fn apply(&self, sys: &dyn WalkSys, target: &Pinned<'_>) -> Result<(), Failure> {
        self.apply_noting(sys, target, &mut || Ok(()))
    }

    /// [`OwnerChange::apply`], calling `noted` after each syscall that changed the inode
    /// (so a journal can record the ctime each of isolate's own changes left).
    pub fn apply_noting(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        noted: &mut dyn FnMut() -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let (fd, name, entry) = (target.fd, target.name, target.entry);
        let failed = |op, e| Failure::new(op, entry, e);
        let writes_attrs =
            self.caps.is_some() || self.acl_access.is_some() || self.acl_default.is_some();
        if writes_attrs && !entry.stat.is_symlink() && !target.by_name() {
            // The planned values were read by name: apply them only to the inode they came from.
            let now = Attrs::read_at(sys, fd, c"").map_err(|(op, e)| failed(op, e))?;
            if now != self.attrs {
                return Err(failed("re-read xattrs of", Errno::STALE));
            }
        }
        if self.chown {
            sys.chown(fd, name, self.uid, self.gid)
                .map_err(|e| failed("chown", e))?;
            noted()?;
        }
        for (value, attr, op) in [
            (&self.acl_access, xattr::ACL_ACCESS, "write ACL of"),
            (
                &self.acl_default,
                xattr::ACL_DEFAULT,
                "write default ACL of",
            ),
            (
                &self.caps,
                xattr::CAPABILITY,
                "write security.capability of",
            ),
        ] {
            if let Some(value) = value {
                sys.set_xattr(fd, name, attr, value)
                    .map_err(|e| failed(op, e))?;
                noted()?;
            }
        }
        Ok(())
    }
}
