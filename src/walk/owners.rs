// The per-inode ownership work (shift / reown / auto, and the inverse shift of a rollback):
// decides each id, remaps ACL entries and capability rootids, journals what cannot be
// recomputed, then chowns and puts back what chown drops. Carried by the traversal.
use super::journal::{Journal, Record};
use super::sys::{Stat, WalkSys};
use super::traverse::{Entry, Failure, InodeAction, Tally};
use super::xattr::{self, Present};
use super::MigrateMode;
use crate::error::Error;
use crate::ids::{Mapping, Shift};

/// What happens to one id (a uid or a gid) of one inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// In the source mapping: moves to the same container id in the target mapping.
    Shift(u32),
    /// Becomes the target owner (container root); the original is journalled.
    Reown(u32),
    /// Already where it should be.
    Already,
    /// Outside the source mapping and not reowned: stays.
    Outside,
}

impl Decision {
    pub fn new_id(self, old: u32) -> u32 {
        match self {
            Decision::Shift(id) | Decision::Reown(id) => id,
            Decision::Already | Decision::Outside => old,
        }
    }
}

/// The id rule of one direction (uid or gid).
#[derive(Clone, Debug)]
pub struct IdRule {
    pub from: Mapping,
    pub to: Mapping,
    pub mode: MigrateMode,
    pub target: u32,
}

impl IdRule {
    pub fn decide(&self, id: u32) -> Decision {
        match self.mode {
            MigrateMode::Reown if id == self.target => Decision::Already,
            MigrateMode::Reown => Decision::Reown(self.target),
            MigrateMode::Shift | MigrateMode::Auto => {
                if let Some(c) = self.from.to_container(id) {
                    match self.to.to_host(c) {
                        Some(h) => Decision::Shift(h),
                        // The target mapping is smaller than the source: the container
                        // could not see this id after the move either.
                        None => Decision::Outside,
                    }
                } else if self.to.contains_host(id) {
                    Decision::Already
                } else if self.mode == MigrateMode::Auto {
                    Decision::Reown(self.target)
                } else {
                    Decision::Outside
                }
            }
        }
    }

    /// The rule for ids inside attributes (ACL entries, capability rootids): shift only.
    /// Reowning them would merge distinct entries; ids outside the mapping name host users
    /// and groups, which stay who they are.
    pub fn shift_only(&self, id: u32) -> u32 {
        self.from
            .to_container(id)
            .and_then(|c| self.to.to_host(c))
            .unwrap_or(id)
    }
}

/// Both directions' rules.
#[derive(Clone, Debug)]
pub struct Rules {
    pub uid: IdRule,
    pub gid: IdRule,
}

impl Rules {
    pub fn new(shift: &Shift, mode: MigrateMode, target_uid: u32, target_gid: u32) -> Rules {
        Rules {
            uid: IdRule {
                from: shift.from.uid.clone(),
                to: shift.to.uid.clone(),
                mode,
                target: target_uid,
            },
            gid: IdRule {
                from: shift.from.gid.clone(),
                to: shift.to.gid.clone(),
                mode,
                target: target_gid,
            },
        }
    }

    /// The owner an inode owned by `uid:gid` ends up with.
    pub fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            self.uid.decide(uid).new_id(uid),
            self.gid.decide(gid).new_id(gid),
        )
    }

    pub fn cap(&self, value: &[u8]) -> Vec<u8> {
        xattr::remap_cap(value, |id| self.uid.shift_only(id))
    }

    pub fn acl(&self, value: &[u8]) -> Option<Vec<u8>> {
        xattr::remap_acl(
            value,
            |id| self.uid.shift_only(id),
            |id| self.gid.shift_only(id),
        )
    }
}

/// What to do to one inode.
pub struct Change {
    uid: u32,
    gid: u32,
    chown: bool,
    /// Permission bits to put back after the chown (setuid/setgid).
    restore_perm: Option<u32>,
    caps: Option<Vec<u8>>,
    acl_access: Option<Vec<u8>>,
    acl_default: Option<Vec<u8>>,
    record: Option<Record>,
}

/// Changes owners by `rules`. With `read_only` it only counts (for `plan`); with a journal
/// it writes ahead what a rollback or a re-run after a crash cannot recompute.
pub struct Owners<'j> {
    pub rules: Rules,
    pub journal: Option<&'j Journal>,
    pub read_only: bool,
}

fn failed(op: &'static str, entry: &Entry<'_>, errno: rustix::io::Errno) -> Failure {
    Failure {
        op,
        rel: entry.rel(),
        errno,
    }
}

fn count(tally: &mut Tally, entry: &Entry<'_>, du: Decision, dg: Decision, changes: bool) {
    let reown = matches!(du, Decision::Reown(_)) || matches!(dg, Decision::Reown(_));
    let shift = matches!(du, Decision::Shift(_)) || matches!(dg, Decision::Shift(_));
    if reown {
        tally.reown += 1;
    } else if shift {
        tally.shift += 1;
    } else if !changes && du == Decision::Already && dg == Decision::Already {
        tally.already += 1;
    }
    if du == Decision::Outside || dg == Decision::Outside {
        tally.outside_sample(&entry.rel());
    }
}

impl InodeAction for Owners<'_> {
    type Plan = Change;

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut Tally,
    ) -> Result<Option<Change>, Failure> {
        let st: &Stat = &entry.stat;
        let du = self.rules.uid.decide(st.uid);
        let dg = self.rules.gid.decide(st.gid);
        let (uid, gid) = (du.new_id(st.uid), dg.new_id(st.gid));
        let chown = (uid, gid) != (st.uid, st.gid);
        if self.read_only {
            count(tally, entry, du, dg, chown);
            return Ok(None);
        }
        let mut change = Change {
            uid,
            gid,
            chown,
            restore_perm: None,
            caps: None,
            acl_access: None,
            acl_default: None,
            record: None,
        };
        let mut old_caps = None;
        // Symlinks carry neither ACLs nor capabilities.
        if !st.is_symlink() {
            let names = sys
                .list_xattrs(entry.dir, entry.name)
                .map_err(|e| failed("list xattrs of", entry, e))?;
            let present = Present::from_list(&names);
            if present.capability {
                old_caps = sys
                    .get_xattr(entry.dir, entry.name, xattr::CAPABILITY)
                    .map_err(|e| failed("read security.capability of", entry, e))?;
                if let Some(old) = &old_caps {
                    let new = self.rules.cap(old);
                    if chown || new != *old {
                        change.caps = Some(new);
                    }
                }
            }
            for (there, attr, slot) in [
                (
                    present.acl_access,
                    xattr::ACL_ACCESS,
                    &mut change.acl_access,
                ),
                (
                    present.acl_default,
                    xattr::ACL_DEFAULT,
                    &mut change.acl_default,
                ),
            ] {
                if there {
                    if let Some(old) = sys
                        .get_xattr(entry.dir, entry.name, attr)
                        .map_err(|e| failed("read ACL of", entry, e))?
                    {
                        *slot = self.rules.acl(&old);
                    }
                }
            }
        }
        let changes = chown
            || change.caps.is_some()
            || change.acl_access.is_some()
            || change.acl_default.is_some();
        count(tally, entry, du, dg, changes);
        if !changes {
            return Ok(None);
        }
        let special = chown && !st.is_symlink() && st.perm() & 0o6000 != 0;
        if special {
            change.restore_perm = Some(st.perm());
        }
        let reown = matches!(du, Decision::Reown(_)) || matches!(dg, Decision::Reown(_));
        if self.journal.is_some() && (reown || special || (chown && old_caps.is_some())) {
            change.record = Some(Record {
                path: entry.rel(),
                ino: st.ino,
                uid: st.uid,
                gid: st.gid,
                perm: st.perm(),
                caps: old_caps,
            });
        }
        Ok(Some(change))
    }

    fn before_apply(&self, plans: &[Change], tally: &mut Tally) -> Result<(), Error> {
        let Some(journal) = self.journal else {
            return Ok(());
        };
        let records: Vec<Record> = plans.iter().filter_map(|c| c.record.clone()).collect();
        tally.journalled += records.len() as u64;
        journal
            .append(&records)
            .map_err(|e| Error::io("write the migration journal", e))
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        change: Change,
        _tally: &mut Tally,
    ) -> Result<(), Failure> {
        let (dir, name) = (entry.dir, entry.name);
        if change.chown {
            sys.chown(dir, name, change.uid, change.gid)
                .map_err(|e| failed("chown", entry, e))?;
        }
        if let Some(acl) = &change.acl_access {
            sys.set_xattr(dir, name, xattr::ACL_ACCESS, acl)
                .map_err(|e| failed("write ACL of", entry, e))?;
        }
        if let Some(acl) = &change.acl_default {
            sys.set_xattr(dir, name, xattr::ACL_DEFAULT, acl)
                .map_err(|e| failed("write default ACL of", entry, e))?;
        }
        if let Some(caps) = &change.caps {
            sys.set_xattr(dir, name, xattr::CAPABILITY, caps)
                .map_err(|e| failed("write security.capability of", entry, e))?;
        }
        if let Some(perm) = change.restore_perm {
            sys.chmod(dir, name, perm)
                .map_err(|e| failed("chmod", entry, e))?;
        }
        Ok(())
    }
}
