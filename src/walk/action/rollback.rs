//! The first phase of a rollback: every id in the stack mapping goes back to the legacy
//! mapping (owners, ACL entries). It never puts setuid/setgid bits or capabilities back
//! (chown drops them): only the journal may, for a file proven unmodified since migration.
use super::survey::{count, SurveyTally};
use super::Attrs;
use crate::walk::rules::Rules;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{Entry, Failure, InodeAction, Pinned, Samples, Tally};
use crate::walk::xattr::{self, AclRemap};
use rustix::io::Errno;

/// What the inverse shift counts beyond the traversal's counts.
#[derive(Debug, Default)]
pub struct RollbackTally {
    pub decisions: SurveyTally,
    /// Inodes whose setuid/setgid bits or capability the chown dropped (journalled ones
    /// get them back in the second phase where the proof holds).
    pub privilege_dropped: Samples,
}

impl Tally for RollbackTally {
    fn merge(&mut self, o: RollbackTally) {
        self.decisions.merge(o.decisions);
        self.privilege_dropped.merge(o.privilege_dropped);
    }
}

pub struct Change {
    uid: u32,
    gid: u32,
    chown: bool,
    attrs: Attrs,
    acl_access: Option<Vec<u8>>,
    acl_default: Option<Vec<u8>>,
    drops_privilege: bool,
}

/// Shifts ids back by `rules` (the migration's inverse shift).
pub struct Rollback {
    pub rules: Rules,
}

impl InodeAction for Rollback {
    type Plan = Change;
    type Tally = RollbackTally;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut RollbackTally,
    ) -> Result<Option<Change>, Failure> {
        let st = &entry.stat;
        let du = self.rules.uid.decide(st.uid);
        let dg = self.rules.gid.decide(st.gid);
        count(&mut tally.decisions, entry, du, dg);
        let (uid, gid) = (du.new_id(st.uid), dg.new_id(st.gid));
        let chown = (uid, gid) != (st.uid, st.gid);
        let attrs = Attrs::read(sys, entry)?;
        let mut unmapped = false;
        let mut remap = |acl: &Option<Vec<u8>>| match acl.as_deref().map(|a| self.rules.acl(a)) {
            Some(AclRemap::Changed(v)) => Some(v),
            Some(AclRemap::Collision) => {
                unmapped = true;
                None
            }
            _ => None,
        };
        let acl_access = remap(&attrs.acl_access);
        let acl_default = remap(&attrs.acl_default);
        if unmapped {
            tally.decisions.acl_unmapped.add(entry.rel());
            return Ok(None);
        }
        if !chown && acl_access.is_none() && acl_default.is_none() {
            return Ok(None);
        }
        if st.immutable() {
            tally.decisions.immutable.add(entry.rel());
            return Ok(None);
        }
        let drops_privilege =
            chown && !st.is_symlink() && (st.perm() & 0o6000 != 0 || attrs.caps.is_some());
        Ok(Some(Change {
            uid,
            gid,
            chown,
            attrs,
            acl_access,
            acl_default,
            drops_privilege,
        }))
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        change: Change,
        tally: &mut RollbackTally,
    ) -> Result<(), Failure> {
        let (fd, entry) = (target.fd, target.entry);
        let failed = |op, e| Failure::new(op, entry, e);
        if (change.acl_access.is_some() || change.acl_default.is_some()) && !entry.stat.is_symlink()
        {
            let now = Attrs::read_at(sys, fd, c"").map_err(|(op, e)| failed(op, e))?;
            if now != change.attrs {
                return Err(failed("re-read xattrs of", Errno::STALE));
            }
        }
        if change.chown {
            sys.chown(fd, c"", change.uid, change.gid)
                .map_err(|e| failed("chown", e))?;
        }
        for (value, attr, op) in [
            (&change.acl_access, xattr::ACL_ACCESS, "write ACL of"),
            (
                &change.acl_default,
                xattr::ACL_DEFAULT,
                "write default ACL of",
            ),
        ] {
            if let Some(value) = value {
                sys.set_xattr(fd, c"", attr, value)
                    .map_err(|e| failed(op, e))?;
            }
        }
        if change.drops_privilege {
            tally.privilege_dropped.add(entry.rel());
        }
        Ok(())
    }
}
