//! The migration action (shift / reown / auto): decides each id, remaps ACL entries and
//! capability rootids, journals ahead what cannot be recomputed, then changes the pinned
//! inode and puts back what chown drops, and journals the inode's ctime after the change
//! (and, for an inode with setuid/setgid bits or a capability, after each step of it): the
//! proof a re-run or a rollback checks before it gives privileges back.
use super::survey::{count, SurveyTally};
use super::{remapped, Attrs, OwnerChange};
use crate::error::Error;
use crate::journal::{Applied, Intent, Journal, Kind, Line, Record};
use crate::rules::{Decision, Rules};
use crate::sys::WalkSys;
use crate::traverse::{Entry, Failure, InodeAction, Pinned, Tally};
use rustix::io::Errno;

/// What the migration counts beyond the traversal's counts.
#[derive(Debug, Default)]
pub struct MigrateTally {
    pub decisions: SurveyTally,
    /// Records written ahead to the journal.
    pub journalled: u64,
    /// A failed `After` write of this batch: stops the walk once the batch is applied.
    journal_error: Option<std::io::Error>,
}

impl Tally for MigrateTally {
    fn merge(&mut self, o: MigrateTally) {
        self.decisions.merge(o.decisions);
        self.journalled += o.journalled;
        if self.journal_error.is_none() {
            self.journal_error = o.journal_error;
        }
    }
}

/// What to do to one inode.
pub struct Change {
    owner: OwnerChange,
    /// Permission bits to put back after the chown (setuid/setgid).
    restore_perm: Option<u32>,
    record: Option<Record>,
}

/// Changes owners by `rules`, journalling to `journal`.
pub struct Migrate<'j> {
    pub rules: Rules,
    pub journal: &'j Journal,
}

impl InodeAction for Migrate<'_> {
    type Plan = Change;
    type Tally = MigrateTally;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut MigrateTally,
    ) -> Result<Option<Change>, Failure> {
        let st = &entry.stat;
        let du = self.rules.uid.decide(st.uid);
        let dg = self.rules.gid.decide(st.gid);
        let (uid, gid) = (du.new_id(st.uid), dg.new_id(st.gid));
        let chown = (uid, gid) != (st.uid, st.gid);
        let attrs = Attrs::read(sys, entry)?;
        let mut unmapped = false;
        let acl_access = remapped(&self.rules, &attrs.acl_access, &mut unmapped);
        let acl_default = remapped(&self.rules, &attrs.acl_default, &mut unmapped);
        let caps = attrs
            .caps
            .as_ref()
            .map(|old| self.rules.cap(old))
            .filter(|new| chown || Some(new) != attrs.caps.as_ref());
        let changes = chown || caps.is_some() || acl_access.is_some() || acl_default.is_some();
        count(&mut tally.decisions, entry, du, dg);
        if unmapped {
            // Changing the owner but not the ACL would hand access to the wrong ids.
            tally.decisions.acl_unmapped.add(entry.rel());
            return Ok(None);
        }
        if !changes {
            return Ok(None);
        }
        if st.immutable() {
            tally.decisions.immutable.add(entry.rel());
            return Ok(None);
        }
        let special = chown && !st.is_symlink() && st.perm() & 0o6000 != 0;
        let reown = matches!(du, Decision::Reown(_)) || matches!(dg, Decision::Reown(_));
        let caps_change = caps.is_some();
        let record = (reown || special || caps_change).then(|| Record {
            kind: if reown { Kind::Reown } else { Kind::Privilege },
            path: entry.rel(),
            ino: st.ino,
            btime: st.btime,
            uid: st.uid,
            gid: st.gid,
            perm: st.perm(),
            caps: attrs.caps.clone(),
        });
        Ok(Some(Change {
            owner: OwnerChange {
                uid,
                gid,
                chown,
                attrs,
                caps,
                acl_access,
                acl_default,
            },
            restore_perm: special.then_some(st.perm()),
            record,
        }))
    }

    /// Records of owners and privileges go to the journal before the change.
    fn written_ahead(&self, change: &Change) -> bool {
        change.record.is_some()
    }

    fn before_apply(&self, plans: &[Change], tally: &mut MigrateTally) -> Result<(), Error> {
        let lines: Vec<Line> = plans
            .iter()
            .filter_map(|c| c.record.clone().map(Line::Before))
            .collect();
        tally.journalled += lines.len() as u64;
        self.journal
            .append(&lines)
            .map_err(|e| Error::io("write the migration journal", e))
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        change: Change,
        tally: &mut MigrateTally,
    ) -> Result<(), Failure> {
        let (fd, name, entry) = (target.fd, target.name, target.entry);
        let failed = |op, e| Failure::new(op, entry, e);
        // Right away (not synced): a crash before a line only makes the rollback withhold
        // this file's privileges (and say so).
        let after = |path: &std::path::Path, tally: &mut MigrateTally| {
            let st = sys.stat(fd, name).map_err(|e| failed("stat", e))?;
            let line = Line::After(Applied {
                path: path.to_path_buf(),
                ino: st.ino,
                ctime: st.ctime,
            });
            if let Err(e) = self.journal.write(std::slice::from_ref(&line)) {
                tally.journal_error.get_or_insert(e);
            }
            Ok(())
        };
        if let Some(record) = change.record.as_ref().filter(|r| r.privileged()) {
            if target.by_name() && change.owner.chown {
                // Locked tree: announce what the chown leaves, so a run killed right after
                // it (and finding the tree still locked) can give the bits back.
                let st = &entry.stat;
                let line = Line::LockedIntent(Intent {
                    path: record.path.clone(),
                    ino: st.ino,
                    proven_ctime: st.ctime,
                    uid: change.owner.uid,
                    gid: change.owner.gid,
                    perm: st.perm(),
                    mtime: st.mtime,
                    size: st.size,
                    nlink: st.nlink,
                });
                if let Err(e) = self.journal.write(std::slice::from_ref(&line)) {
                    tally.journal_error.get_or_insert(e);
                    return Err(failed("write the journal about", Errno::IO));
                }
            }
        }
        match change.record.as_ref().filter(|r| r.privileged()) {
            // Each step of a privileged inode's change is journalled as isolate's own, so
            // a crash between the chown and the chmod leaves a state a re-run recognises.
            Some(record) => change
                .owner
                .apply_noting(sys, target, &mut || after(&record.path, tally))?,
            None => change.owner.apply(sys, target)?,
        }
        if let Some(perm) = change.restore_perm {
            sys.chmod(fd, name, perm).map_err(|e| failed("chmod", e))?;
        }
        if let Some(record) = change.record {
            after(&record.path, tally)?;
        }
        Ok(())
    }

    fn after_batch(&self, tally: &mut MigrateTally) -> Result<(), Error> {
        match tally.journal_error.take() {
            Some(e) => Err(Error::io("write the migration journal", e)),
            None => Ok(()),
        }
    }
}
