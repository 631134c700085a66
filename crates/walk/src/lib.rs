//! Ownership migration over a stack's data: the entry points plan and apply call
//! (`check_data_path`, `survey`, `migrate`, `rollback`, `create_data_dir`), built from a
//! symlink-proof, one-mount, parallel traversal (`traverse`) that carries per-inode actions
//! (`action/`), a write-ahead journal (`journal`) and a verification pass. Paths are opened
//! by `trusted`; what a walk reports is in `report`, its progress bar in `progress`. The
//! engine knows only `isolate-model`: actions of other capabilities plug in from outside.
//!
//! Locked walks (`migrate_with`/`rollback_with` and `Locking::Locked`, see `lock`): the top
//! is made root's alone before anything is read, the caller's `Holders` finds processes that
//! were inside already, and entries are then changed by name with no pin per inode and no
//! verification pass (the walk's own counts are the truth). `--force` and shares keep the
//! pinned path and its verification.
//!
//! Rules per id (uid and gid separately): shift moves an id of the legacy mapping to the same
//! container id in the stack mapping; ids already in the stack mapping are "already" (so a
//! re-run converges); others stay ("outside"). reown makes every id the stack user's; auto
//! shifts what it can and reowns the rest. Ids inside ACL entries and v3 capability rootids
//! are only ever shifted (reowning them would merge distinct entries).
//!
//! Journal: the caller passes one file per migration. migrate appends, synced before the
//! changes of each batch, the identity (inode number and creation time), original owner,
//! permission bits and capability of every inode it reowns, whose setuid/setgid bits or
//! capability a chown drops, or whose capability it rewrites; after the change it appends
//! the inode's ctime. Every later change isolate makes to a privileged journalled inode
//! (each step of its migration, the crash repair's, a rollback's) appends the ctime it left,
//! so isolate's own changes never count as someone else's. setuid/setgid bits and
//! capabilities are given back (by the crash repair or a rollback) only where the ctime is
//! one isolate left (any write, chmod, chown or link change moves ctime, and userspace
//! cannot set it back); otherwise the owner comes back without them, the file is listed
//! and the step is not done. A record applies only to the inode it was written for.
//! Limitation: on the pinned path, a kill in the microseconds between a change and its line
//! leaves that file unproven: withheld and listed, never given back on a guess. A locked
//! migration announces each such chown first (what it leaves), and the next run, finding the
//! tree still locked, repairs before it unlocks.
//! Limitation: an inode that was already in the stack mapping before the first migrate is
//! indistinguishable from a shifted one, so rollback moves it to the legacy mapping.
pub mod action;
pub mod error;
pub mod journal;
mod links;
pub mod lock;
mod progress;
mod replay;
mod report;
pub mod rules;
pub mod sys;
pub mod threads;
pub mod traverse;
mod trusted;
pub mod xattr;

use crate::error::{Error, Result};
use action::migrate::Migrate;
use action::rollback::Rollback;
use action::survey::{Survey as SurveyAction, SurveyTally};
use isolate_model::ids::Mapping;
use isolate_model::migration::{MigrateMode, MigrationSpec, OutsideLinks};
pub use lock::{Holders, Locking};
use progress::finish;
pub use progress::Progress;
pub use report::{Summary, Survey};
use rules::Rules;
use rustix::fd::AsFd;
use std::path::Path;
use std::time::Instant;
use sys::WalkSys;
pub use traverse::Samples;
use traverse::Walked;
use trusted::open_data_path;
pub use trusted::{check_data_path, create_data_dir, data_path_missing, open_trusted};

fn describe(mapping: &Mapping) -> String {
    let mut text = mapping.root.to_string();
    for r in &mapping.ranges {
        text.push_str(&format!(" + {r}"));
    }
    text
}

/// Refuses a spec whose shift is not reversible: source and target mappings overlap.
pub fn check_spec(spec: &MigrationSpec) -> Result<()> {
    let (from, to) = (&spec.shift.from, &spec.shift.to);
    // Reown with no legacy mapping: nothing is shifted (the identity), everything journalled.
    if spec.mode == MigrateMode::Reown && from == to {
        return Ok(());
    }
    for (what, a, b) in [("uid", &from.uid, &to.uid), ("gid", &from.gid, &to.gid)] {
        if a.overlaps(b) {
            return Err(Error::Refused(format!(
                "the legacy {what} mapping ({}) overlaps the stack's {what} mapping ({}): \
                 shifting between them would not be reversible; give the stack a subordinate \
                 range that does not overlap the legacy owner's",
                describe(a),
                describe(b)
            )));
        }
    }
    Ok(())
}

fn rules_of(spec: &MigrationSpec) -> Rules {
    Rules::new(&spec.shift, spec.mode, spec.target_uid, spec.target_gid)
}

fn inverse_rules(spec: &MigrationSpec) -> Rules {
    let inverse = spec.shift.inverse();
    Rules::new(
        &inverse,
        MigrateMode::Shift,
        inverse.to.uid.root,
        inverse.to.gid.root,
    )
}

fn survey_walk(sys: &dyn WalkSys, path: &Path, rules: Rules) -> Result<Walked<SurveyTally>> {
    let root = open_data_path(sys, path)?;
    traverse::walk(sys, path, root, &SurveyAction { rules }, None)
}

/// Read-only walk: what `migrate` would do, per rule, and what it could not change.
pub fn survey(sys: &dyn WalkSys, path: &Path, spec: &MigrationSpec) -> Result<Survey> {
    check_spec(spec)?;
    let Walked { counts, tally } = survey_walk(sys, path, rules_of(spec))?;
    Ok(Survey {
        inodes: counts.inodes,
        shift: tally.shift,
        reown: tally.reown,
        already: tally.already,
        outside: tally.outside.count,
        outside_samples: tally.outside.samples,
        mounts_skipped: counts.mounts_skipped,
        immutable: tally.immutable,
        outside_links: counts.outside_links,
        acl_unmapped: tally.acl_unmapped,
    })
}

/// Migrates the owners under `path` by `spec`. Re-runnable after a crash at any point: it
/// first repairs what a previous run's journal says may have been cut short (setuid bits
/// and capabilities a chown dropped), then walks; ids already in the target mapping are
/// left, so the walk converges. Then a read-only walk counts what is still in the source
/// mapping. The summary's `problems()` say why the migration is not done, if it is not.
pub fn migrate(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
) -> Result<Summary> {
    migrate_with(sys, path, spec, journal_path, progress, Locking::Pinned)
}

/// [`migrate`], locking the top first with `Locking::Locked` (see `lock`): entries are then
/// changed by name and the walk's own counts are the verification.
pub fn migrate_with(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
    locking: Locking<'_>,
) -> Result<Summary> {
    let started = Instant::now();
    check_spec(spec)?;
    let root = open_data_path(sys, path)?;
    let rules = rules_of(spec);
    let proofs = replay::Proofs::read(journal_path)?;
    let mut after = replay::AfterLines::new(journal_path, proofs.valid_len);
    // Before a lock a killed run left is given back: while the tree is still locked, what
    // its announced chowns left is provably isolate's own.
    let repaired =
        replay::repair_after_crash(sys, root.as_fd(), path, &rules, &proofs, &mut after)?;
    let journal = after
        .into_journal()
        .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))?;
    lock::converge_into(sys, root.as_fd(), path, &proofs, &journal)?;
    let locking = lock::lockable(sys, root.as_fd(), locking);
    let action = Migrate {
        rules: rules.clone(),
        journal: &journal,
    };
    let bar = progress.bar();
    let walked = match locking {
        Locking::Pinned => traverse::walk(sys, path, root, &action, bar.as_ref()),
        Locking::Locked(holders) => lock::walk_locked(
            sys,
            path,
            root,
            &action,
            bar.as_ref(),
            lock::LockWith {
                holders,
                stack: &spec.shift.to.uid,
                journal: &journal,
                proofs: &proofs,
            },
        ),
    };
    finish(bar);
    let Walked { counts, tally } = walked?;
    journal
        .sync()
        .map_err(|e| Error::io(format!("write journal {}", journal_path.display()), e))?;
    let mut summary = Summary::from_walk(counts, tally.decisions, tally.journalled);
    summary.changed += repaired.changed;
    summary.journal_missing = repaired.missing;
    summary.privilege_withheld = repaired.withheld;
    summary.outside_links_accepted = spec.outside_links == OutsideLinks::Skip;
    if let Locking::Pinned = locking {
        summary.verify(survey_walk(sys, path, rules)?);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Undoes `migrate`. First, journalled files that had setuid/setgid bits or a capability
/// and are provably unchanged since isolate last changed them (same inode, same creation
/// time, ctime one that isolate journalled after its own change: the migration's, or an
/// interrupted rollback's) get everything back, each step journalled. Then every id in the
/// stack mapping goes back to the legacy mapping (ACL entries too; chown drops privileges
/// and this phase never restores them, so it does not chown a proven one the first phase
/// could not reach). Then every journalled inode that is still the file its record was
/// written for gets its owner and mode back (a proven one everything), without
/// setuid/setgid bits or capability otherwise (those are reported, and the rollback is not
/// done). A
/// verification walk counts what is left in the stack mapping. Re-runnable; the journal is
/// kept.
pub fn rollback(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
) -> Result<Summary> {
    rollback_with(sys, path, spec, journal_path, progress, Locking::Pinned)
}

/// [`rollback`], its walk locked with `Locking::Locked` (as [`migrate_with`]); the journal
/// replays before and after it stay on the pinned path.
pub fn rollback_with(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
    locking: Locking<'_>,
) -> Result<Summary> {
    let started = Instant::now();
    check_spec(spec)?;
    let root = open_data_path(sys, path)?;
    let proofs = replay::Proofs::read(journal_path)?;
    let proofs = lock::converge(sys, root.as_fd(), path, journal_path, proofs)?;
    let locking = lock::lockable(sys, root.as_fd(), locking);
    let mut after = replay::AfterLines::new(journal_path, proofs.valid_len);
    replay::restore_proven(sys, root.as_fd(), path, &proofs, &mut after)?;
    let rules = inverse_rules(spec);
    let bar = progress.bar();
    let action = Rollback {
        rules: rules.clone(),
        proofs: &proofs,
    };
    let walked = match locking {
        Locking::Pinned => traverse::walk(sys, path, root, &action, bar.as_ref()),
        Locking::Locked(holders) => {
            let journal = after
                .open()
                .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))?;
            lock::walk_locked(
                sys,
                path,
                root,
                &action,
                bar.as_ref(),
                lock::LockWith {
                    holders,
                    stack: &spec.shift.to.uid,
                    journal,
                    proofs: &proofs,
                },
            )
        }
    };
    finish(bar);
    let Walked { counts, tally } = walked?;
    let mut summary = Summary::from_walk(counts, tally.decisions, 0);
    let root = open_data_path(sys, path)?;
    let restored = replay::restore(sys, root.as_fd(), path, journal_path, &proofs, &mut after)?;
    summary.journalled = restored.restored;
    summary.journal_missing = restored.missing;
    summary.changed += restored.changed;
    summary.privilege_withheld = restored.withheld;
    summary.failed.merge(restored.failed);
    summary.failure_messages.extend(restored.failure_messages);
    if let Locking::Pinned = locking {
        summary.verify(survey_walk(sys, path, rules)?);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
