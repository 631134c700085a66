//! The per-inode action of shares: makes each inode's access ACL (and a directory's default
//! ACL) what `isolation::share` says, over the same traversal as the migration. Read-only,
//! it counts the inodes that would change (for `plan`). Applying, it journals (ahead, synced)
//! each change that taking isolate's entries out would not undo; rolling back, it puts a
//! journalled inode back as it was. Also the read-only action that finds which of a stack's
//! uids own something in its data (for closing it).
use crate::ids::Mapping;
use crate::isolation::journal::{self, Entries, Saved};
use crate::isolation::share::{self, AclWrite, ShareRule, State};
use crate::walk::action::Attrs;
use crate::walk::error::Error;
use crate::walk::sys::WalkSys;
use crate::walk::traverse::{Entry, Failure, InodeAction, Pinned, Samples, Tally};
use crate::walk::xattr;
use rustix::io::Errno;
use std::collections::BTreeSet;

/// What a share walk counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareTally {
    /// Inodes whose ACLs are (read-only: would be) rewritten.
    pub pending: Samples,
    /// Applying: changes journalled first. Rolling back: inodes put back from the journal.
    pub journalled: u64,
    /// Rolling back: journalled inodes someone changed since isolate did: isolate's entries
    /// are taken out, the rest is left as found.
    pub changed_since: Samples,
}

impl Tally for ShareTally {
    fn merge(&mut self, other: ShareTally) {
        self.pending.merge(other.pending);
        self.journalled += other.journalled;
        self.changed_since.merge(other.changed_since);
    }
}

/// What a share walk does.
pub enum Run<'a> {
    /// Counts what would change (plan).
    Survey,
    /// Makes every inode what the rule says; `journalled` is the tree's journal as it was
    /// when the walk began (an inode in it is journalled again at each change).
    Apply {
        journal: &'a journal::Writer,
        journalled: &'a Entries,
    },
    /// Takes isolate's entries out; puts journalled inodes back as they were.
    Rollback { journalled: &'a Entries },
}

/// Applies (or counts, or rolls back) a share's rule on every inode.
pub struct ShareAcl<'a> {
    /// The grants (for a rollback, the rule with none: `ShareRule::undo`).
    pub rule: ShareRule,
    pub run: Run<'a>,
}

/// One inode's planned change.
pub enum SharePlan {
    /// Made right away, through the descriptor the plan read the inode by (the next
    /// rollback undoes it by taking isolate's entries out): the state read and the one
    /// decided.
    Direct(Box<(State, State)>),
    /// Journalled ahead of the change.
    Journalled(Box<journal::Line>),
}

/// The inode as the rule reads it.
fn inode<'x>(entry: &Entry<'_>, attrs: &'x Attrs, top: bool) -> share::Inode<'x> {
    let st = &entry.stat;
    share::Inode {
        perm: st.perm(),
        gid: st.gid,
        is_dir: st.is_dir(),
        top,
        access: attrs.acl_access.as_deref(),
        default: attrs.acl_default.as_deref(),
    }
}

fn is_top(entry: &Entry<'_>) -> bool {
    entry.name.is_empty() && entry.parent.as_os_str().is_empty()
}

/// A decision that no longer holds once the inode is pinned: skipped as changed under
/// the walk (the next run decides again).
fn raced(entry: &Entry<'_>) -> Failure {
    Failure::new("recheck the ACLs of", entry, Errno::STALE)
}

impl ShareAcl<'_> {
    fn journalled(&self) -> Option<&Entries> {
        match &self.run {
            Run::Survey => None,
            Run::Apply { journalled, .. } | Run::Rollback { journalled } => Some(journalled),
        }
    }

    /// What the inode (now `cur`) becomes; whether a journalled one was changed since.
    fn decide(&self, entry: &Entry<'_>, ino: &share::Inode<'_>, cur: &State) -> (State, bool) {
        match &self.run {
            Run::Rollback { journalled } => share::undo(
                &self.rule,
                ino,
                cur,
                journalled.get(entry.stat.ino, entry.stat.btime).as_ref(),
            ),
            _ => (share::target(&self.rule, ino, cur), false),
        }
    }

    /// Whether this change must be journalled before it is made.
    fn needs_journal(
        &self,
        entry: &Entry<'_>,
        ino: &share::Inode<'_>,
        cur: &State,
        new: &State,
    ) -> bool {
        matches!(self.run, Run::Apply { .. })
            && (self
                .journalled()
                .is_some_and(|j| j.contains(entry.stat.ino, entry.stat.btime))
                || !share::undone_by_removal(&self.rule, ino, cur, new))
    }
}

fn write(
    sys: &dyn WalkSys,
    target: &Pinned<'_>,
    attr: &std::ffi::CStr,
    w: &AclWrite,
) -> Result<(), Failure> {
    let value: &[u8] = match w {
        AclWrite::Keep => return Ok(()),
        AclWrite::Set(v) => v,
        // An empty value removes a POSIX ACL (the kernel's set_acl with no ACL).
        AclWrite::Remove => &[],
    };
    sys.set_xattr(target.fd, target.name, attr, value)
        .map_err(|e| Failure::new("write ACL of", target.entry, e))
}

impl InodeAction for ShareAcl<'_> {
    type Plan = SharePlan;
    type Tally = ShareTally;
    /// Every change is ACL reads and writes: through an opened file they are plain syscalls.
    const OPENS_FILES: bool = true;

    fn written_ahead(&self, plan: &SharePlan) -> bool {
        matches!(plan, SharePlan::Journalled(_))
    }

    fn plan(
        &self,
        sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut ShareTally,
    ) -> Result<Option<SharePlan>, Failure> {
        // Symbolic links carry no ACLs (and are never followed).
        if entry.stat.is_symlink() {
            return Ok(None);
        }
        let attrs = Attrs::read(sys, entry)?;
        let ino = inode(entry, &attrs, is_top(entry));
        let cur = State::of(&ino);
        let (new, changed_since) = self.decide(entry, &ino, &cur);
        if changed_since {
            tally.changed_since.add(entry.rel());
        }
        if new == cur {
            return Ok(None);
        }
        if matches!(self.run, Run::Survey) {
            tally.pending.add(entry.rel());
            return Ok(None);
        }
        if self.needs_journal(entry, &ino, &cur, &new) {
            return Ok(Some(SharePlan::Journalled(Box::new(journal::Line {
                ino: entry.stat.ino,
                btime: entry.stat.btime,
                rel: entry.rel(),
                before: Saved::of(&cur),
                after: Saved::of(&new),
            }))));
        }
        Ok(Some(SharePlan::Direct(Box::new((cur, new)))))
    }

    fn before_apply(&self, plans: &[SharePlan], tally: &mut ShareTally) -> Result<(), Error> {
        let Run::Apply { journal, .. } = &self.run else {
            return Ok(());
        };
        let lines: Vec<&journal::Line> = plans
            .iter()
            .filter_map(|p| match p {
                SharePlan::Journalled(l) => Some(&**l),
                SharePlan::Direct(_) => None,
            })
            .collect();
        journal
            .append(lines.iter().copied())
            .map_err(|e| Error::io("writing a share's ACL journal".to_string(), e))?;
        tally.journalled += lines.len() as u64;
        Ok(())
    }

    fn apply(
        &self,
        sys: &dyn WalkSys,
        target: &Pinned<'_>,
        plan: SharePlan,
        tally: &mut ShareTally,
    ) -> Result<(), Failure> {
        let entry = target.entry;
        let (cur, new) = match plan {
            // Read through this very descriptor a moment ago (not written ahead, so applied
            // right after its plan): reading again would only read the same.
            SharePlan::Direct(decided) => *decided,
            // Written ahead across a journal sync: decided again from the pinned inode's
            // attributes, and exactly the change journalled, or none.
            SharePlan::Journalled(line) => {
                let attrs = Attrs::read_at(sys, target.fd, target.name)
                    .map_err(|(op, e)| Failure::new(op, entry, e))?;
                let ino = inode(entry, &attrs, is_top(entry));
                let cur = State::of(&ino);
                let (new, _) = self.decide(entry, &ino, &cur);
                if cur != line.before.state() || new != line.after.state() {
                    return Err(raced(entry));
                }
                (cur, new)
            }
        };
        if let Run::Rollback { journalled } = &self.run {
            if journalled.contains(entry.stat.ino, entry.stat.btime) {
                tally.journalled += 1;
            }
        }
        let change = share::writes(&cur, &new);
        write(sys, target, xattr::ACL_ACCESS, &change.access)?;
        write(sys, target, xattr::ACL_DEFAULT, &change.default)?;
        if let Some(perm) = change.chmod {
            sys.chmod(target.fd, target.name, perm)
                .map_err(|e| Failure::new("chmod", entry, e))?;
        }
        tally.pending.add(entry.rel());
        Ok(())
    }
}

/// The uids of one mapping that own inodes (below the top, which is excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnersTally {
    pub uids: BTreeSet<u32>,
}

impl Tally for OwnersTally {
    fn merge(&mut self, other: OwnersTally) {
        self.uids.extend(other.uids);
    }
}

/// Read-only: collects the owners in `mapping` of everything below the top.
pub struct Owners {
    pub mapping: Mapping,
}

impl InodeAction for Owners {
    type Plan = ();
    type Tally = OwnersTally;
    const CHANGES: bool = false;

    fn plan(
        &self,
        _sys: &dyn WalkSys,
        entry: &Entry<'_>,
        tally: &mut OwnersTally,
    ) -> Result<Option<()>, Failure> {
        let top = entry.name.is_empty() && entry.parent.as_os_str().is_empty();
        if !top && self.mapping.contains_host(entry.stat.uid) {
            tally.uids.insert(entry.stat.uid);
        }
        Ok(None)
    }

    fn apply(
        &self,
        _sys: &dyn WalkSys,
        _target: &Pinned<'_>,
        _plan: (),
        _tally: &mut OwnersTally,
    ) -> Result<(), Failure> {
        Ok(())
    }
}
