//! The read-only action: what a migration (or rollback) by some rules would still change,
//! per rule, and what it could not change (immutable files, unmappable ACLs). `plan` shows
//! it before anything changes; after a migration or rollback it is the verification pass
//! whose result the summary reports.
use super::Attrs;
use crate::rules::{Decision, Rules};
use crate::sys::WalkSys;
use crate::traverse::{Entry, Failure, InodeAction, Pinned, Samples, Tally};
use crate::xattr::AclRemap;
use serde::{Deserialize, Serialize};

/// What a survey counts. An inode counts once as reown (some id reowned), else shift (some
/// id shifted), else already; `outside` counts inodes with any id outside the source
/// mapping (they may also count as shift).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyTally {
    pub shift: u64,
    pub reown: u64,
    pub already: u64,
    pub outside: Samples,
    /// Inodes the rules would still change (owner, ACL entry or capability rootid).
    pub pending: Samples,
    /// chattr +i / +a inodes the rules would change: chown fails on them, also for root.
    pub immutable: Samples,
    /// ACLs whose entries would collide once mapped.
    pub acl_unmapped: Samples,
}

impl Tally for SurveyTally {
    fn merge(&mut self, o: SurveyTally) {
        self.shift += o.shift;
        self.reown += o.reown;
        self.already += o.already;
        self.outside.merge(o.outside);
        self.pending.merge(o.pending);
        self.immutable.merge(o.immutable);
        self.acl_unmapped.merge(o.acl_unmapped);
    }
}

/// Counts what `rules` would do, changing nothing.
pub struct Survey {
    pub rules: Rules,
}

/// Counts one inode's decisions (shared with the migrate action).
pub fn count(tally: &mut SurveyTally, entry: &Entry<'_>, du: Decision, dg: Decision) {
    let reown = matches!(du, Decision::Reown(_)) || matches!(dg, Decision::Reown(_));
    let shift = matches!(du, Decision::Shift(_)) || matches!(dg, Decision::Shift(_));
    if reown {
        tally.reown += 1;
    } else if shift {
        tally.shift += 1;
    } else if du == Decision::Already && dg == Decision::Already {
        tally.already += 1;
    }
    if du == Decision::Outside || dg == Decision::Outside {
        tally.outside.add(entry.rel());
    }
}

impl InodeAction for Survey {
    type Plan = ();
    type Tally = SurveyTally;
    const CHANGES: bool = false;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut SurveyTally,
    ) -> Result<Option<()>, Failure> {
        let st = &entry.stat;
        let du = self.rules.uid.decide(st.uid);
        let dg = self.rules.gid.decide(st.gid);
        count(tally, entry, du, dg);
        let mut changes = self.rules.owner(st.uid, st.gid) != (st.uid, st.gid);
        let attrs = Attrs::read(sys, entry)?;
        for acl in [&attrs.acl_access, &attrs.acl_default]
            .into_iter()
            .flatten()
        {
            match self.rules.acl(acl) {
                AclRemap::Unchanged => {}
                AclRemap::Changed(_) => changes = true,
                AclRemap::Collision => {
                    changes = true;
                    tally.acl_unmapped.add(entry.rel());
                }
            }
        }
        if let Some(caps) = &attrs.caps {
            changes |= self.rules.cap(caps) != *caps;
        }
        if changes {
            tally.pending.add(entry.rel());
            if st.immutable() {
                tally.immutable.add(entry.rel());
            }
        }
        Ok(None)
    }

    fn apply(
        &self,
        _: &dyn WalkSys,
        _: &Pinned<'_>,
        _: (),
        _: &mut SurveyTally,
    ) -> Result<(), Failure> {
        Ok(())
    }
}
