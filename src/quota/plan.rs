//! plan for the disk budget: a pure function from the stack's `disk_max`, the facts of each of
//! its data trees (`port::TreeFacts`, read by observe) and isolate's record to the steps that
//! set, change or take back a limit, and the refusals where the filesystem cannot hold one.
//!
//! btrfs: only a data path that is itself a subvolume's top is limited (its qgroup 0/ID then
//! holds exactly this tree). A directory inside a larger subvolume is refused: a limit on the
//! subvolume containing it would hold everything else there too (other stacks, the host), and
//! making it a subvolume means moving the data, which isolate never does silently.
use super::port::{Filesystem, ProjectQuota, TreeFacts};
use super::{size, QuotaStep};
use crate::model::{Note, NoteKind, Planned};
use crate::state::quota::QuotaRecord;
use std::path::{Path, PathBuf};

/// One of the stack's data trees as observe found it (None: nothing there yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    pub path: PathBuf,
    pub facts: Option<TreeFacts>,
}

/// What the disk budget of one stack needs.
pub struct StackQuota<'a> {
    pub stack: &'a str,
    /// `disk_max` in bytes (None: no key).
    pub disk_max: Option<u64>,
    pub trees: &'a [Tree],
    pub recorded: Option<&'a QuotaRecord>,
}

pub fn plan_stack(
    planned: &mut Planned<QuotaStep>,
    refusals: &mut Vec<String>,
    q: &StackQuota<'_>,
) {
    let stack = q.stack;
    if let Some(bytes) = q.disk_max {
        for tree in q.trees {
            match why_not(stack, &tree.path, tree.facts.as_ref()) {
                Err(refusal) => refusals.push(refusal),
                Ok((facts, btrfs)) => {
                    if btrfs.limit == Some(bytes) {
                        planned.notes.push(Note {
                            kind: NoteKind::Present,
                            stack: Some(stack.to_string()),
                            message: format!(
                                "disk_max {} on {}: btrfs qgroup 0/{} already limited",
                                size(bytes),
                                tree.path.display(),
                                btrfs.subvolume
                            ),
                        });
                        continue;
                    }
                    if btrfs.referenced > bytes {
                        planned.notes.push(Note {
                            kind: NoteKind::Warning,
                            stack: Some(stack.to_string()),
                            message: format!(
                                "disk_max {}: {} already uses {} bytes, more than the limit; \
                                 the stack cannot write there (not even create a file) until \
                                 it frees space",
                                size(bytes),
                                tree.path.display(),
                                btrfs.referenced
                            ),
                        });
                    }
                    planned.steps.push(QuotaStep::SetBtrfs {
                        stack: stack.to_string(),
                        path: tree.path.clone(),
                        subvolume: btrfs.subvolume,
                        dev: facts.dev,
                        bytes,
                        was: btrfs.limit,
                    });
                }
            }
        }
    }
    // What isolate set and the policy no longer wants: put back what was there.
    let wanted = |path: &Path| q.disk_max.is_some() && q.trees.iter().any(|t| t.path == path);
    for rec in q.recorded.map(|r| r.btrfs.as_slice()).unwrap_or_default() {
        if !wanted(&rec.path) {
            planned.steps.push(QuotaStep::RestoreBtrfs {
                stack: stack.to_string(),
                path: rec.path.clone(),
                subvolume: rec.subvolume,
                dev: rec.dev,
                bytes: rec.bytes,
                to: rec.was,
            });
        }
    }
}

/// The btrfs facts of a tree that can hold a limit, or the refusal saying why not and what
/// would make it possible.
fn why_not<'f>(
    stack: &str,
    path: &Path,
    facts: Option<&'f TreeFacts>,
) -> Result<(&'f TreeFacts, super::port::BtrfsFacts), String> {
    let p = path.display();
    let head = format!("{stack}: disk_max: {p}");
    let Some(facts) = facts else {
        return Err(format!(
            "{head} does not exist yet; a limit is set on an existing tree: apply once without \
             disk_max (it creates the data path), then add the key"
        ));
    };
    let fs = facts.filesystem.name();
    match (facts.filesystem, facts.btrfs, facts.project) {
        (Filesystem::Btrfs, Some(b), _) if !b.is_subvolume_top => Err(format!(
            "{head} is a directory inside btrfs subvolume {}, not a subvolume of its own; a \
             qgroup limit on that subvolume would hold everything else in it too. What would \
             make it possible: with the stack stopped, make {p} a subvolume (`btrfs subvolume \
             create`, move the files in); isolate never moves existing data itself",
            b.subvolume
        )),
        (Filesystem::Btrfs, Some(b), _) if !b.quota_enabled => Err(format!(
            "{head} is btrfs subvolume {} but quotas are off on its filesystem. What would make \
             it possible: `btrfs quota enable` on its mount point (qgroups cost write speed on \
             the whole filesystem, so isolate leaves that choice to you)",
            b.subvolume
        )),
        (Filesystem::Btrfs, Some(b), _) => Ok((facts, b)),
        (Filesystem::Ext4 | Filesystem::Xfs, _, Some(ProjectQuota::NoKernelSupport)) => {
            Err(format!(
                "{head} is on {fs}, and this kernel has no quota support for {fs} (no quota \
                 format). What would make it possible: a kernel with quota support \
                 (CONFIG_QUOTA, and CONFIG_QFMT_V2 for ext4) and project quotas on the \
                 filesystem, or the data on a btrfs subvolume"
            ))
        }
        (Filesystem::Ext4, _, Some(ProjectQuota::Off)) => Err(format!(
            "{head} is on ext4 without project quotas. What would make it possible: the \
             filesystem's `project` and `quota` features (`tune2fs -O project,quota` while it is \
             unmounted), or the data on a btrfs subvolume"
        )),
        (Filesystem::Xfs, _, Some(ProjectQuota::Off)) => Err(format!(
            "{head} is on xfs mounted without project quotas. What would make it possible: \
             mounting it with `pquota`, or the data on a btrfs subvolume"
        )),
        (Filesystem::Ext4 | Filesystem::Xfs, _, _) => Err(format!(
            "{head} is on {fs} with project quotas on, but isolate does not set project ids \
             yet (every existing file of the tree would need the stack's project id). What \
             would make it possible today: the data on a btrfs subvolume"
        )),
        _ => Err(format!(
            "{head} is on {fs}, which has no limit for one tree. What would make it possible: \
             the data on a btrfs subvolume of its own (quotas enabled) or on ext4/xfs with \
             project quotas"
        )),
    }
}
