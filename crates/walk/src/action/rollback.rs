//! The first phase of a rollback: every id in the stack mapping goes back to the legacy
//! mapping (owners, ACL entries). It never puts setuid/setgid bits or capabilities back
//! (chown drops them): only the journal may, for a file proven unmodified since migration.
use super::survey::{count, SurveyTally};
use super::{remapped, Attrs, OwnerChange};
use crate::replay::Proofs;
use crate::rules::Rules;
use crate::sys::WalkSys;
use crate::traverse::{Entry, Failure, InodeAction, Pinned, Samples, Tally};

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
    owner: OwnerChange,
    drops_privilege: bool,
}

/// Shifts ids back by `rules` (the migration's inverse shift).
pub struct Rollback<'p> {
    pub rules: Rules,
    /// A privileged journalled inode isolate left as it is (a race kept the first phase
    /// from it) is not chowned here: that would drop its bits; the last phase gives it
    /// everything back.
    pub proofs: &'p Proofs,
}

impl InodeAction for Rollback<'_> {
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
        if chown && self.proofs.own_inode(st) {
            return Ok(None);
        }
        let attrs = Attrs::read(sys, entry)?;
        let mut unmapped = false;
        let acl_access = remapped(&self.rules, &attrs.acl_access, &mut unmapped);
        let acl_default = remapped(&self.rules, &attrs.acl_default, &mut unmapped);
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
            owner: OwnerChange {
                uid,
                gid,
                chown,
                attrs,
                // Capabilities are never written back here: only the journal may, with proof.
                caps: None,
                acl_access,
                acl_default,
            },
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
        change.owner.apply(sys, target)?;
        if change.drops_privilege {
            tally.privilege_dropped.add(target.entry.rel());
        }
        Ok(())
    }
}
