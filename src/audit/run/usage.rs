//! The audit's usage part: disk per stack from the owner rows its walk already made (a file
//! counts for the stack whose mapping holds its uid, wherever it lies) plus a walk of each
//! stack's podman store, and the slices' cgroup files. `slices_only` is `audit --only usage`:
//! the cgroup files and nothing else (no walk), cheap enough for a timer every minute.
use super::{finding, Host};
use crate::audit::model::{Finding, FindingKind, Owner, PathKind, PathReport, StackInfo};
use crate::error::Result;
use crate::layout::{self, Root};
use crate::model::escape::path_text;
use crate::plan;
use crate::policy::Policy;
use crate::state::State;
use crate::usage::disk::{self, DiskUsage, StackDisk, Tree};
use crate::usage::{self as usage_cap, Usage};
use crate::walk::sys::WalkSys;
use std::path::{Path, PathBuf};

/// Where the stack user's store lies: below the home its passwd line names (when the user
/// exists with the recorded uid), else below the home isolate makes.
fn store_of(host: &Host<'_>, info: &StackInfo) -> PathBuf {
    let home = host
        .accounts
        .user(&info.user)
        .filter(|u| u.uid == info.uid)
        .map_or_else(|| layout::home(&info.user), |u| PathBuf::from(&u.home));
    disk::store_dir(&home)
}

/// Disk per stack and tree: the walked paths' uid rows, then each applied stack's store.
pub(super) fn disk_usage(
    sys: &dyn WalkSys,
    host: &Host<'_>,
    infos: &[StackInfo],
    paths: &[PathReport],
    findings: &mut Vec<Finding>,
) -> Vec<StackDisk> {
    let mut sums = DiskUsage::default();
    for p in paths {
        let tree = match p.kind {
            PathKind::Data => Tree::Data,
            PathKind::Share => Tree::Share,
        };
        for row in &p.uids {
            if let Owner::Stack { stack, .. } | Owner::OtherStack { stack, .. } = &row.owner {
                sums.add(stack, tree, row.inodes, row.bytes);
            }
        }
    }
    let maps: Vec<_> = host
        .state
        .stacks
        .iter()
        .map(|(name, rec)| (name.clone(), rec.allocation.maps()))
        .collect();
    for info in infos.iter().filter(|i| i.applied) {
        let store = store_of(host, info);
        match disk::walk_store(sys, &host.root.at(&store), &maps) {
            Ok(None) => {}
            Ok(Some(w)) => {
                for (stack, (inodes, bytes)) in &w.per_stack {
                    sums.add(stack, Tree::Store, *inodes, *bytes);
                }
                if w.unreadable > 0 {
                    findings.push(finding(
                        FindingKind::Unreadable,
                        Some(&info.stack),
                        Some(&store),
                        w.unreadable,
                        format!(
                            "{}: store entries that could not be read (not counted)",
                            path_text(&store)
                        ),
                    ));
                }
            }
            Err(e) => findings.push(finding(
                FindingKind::Unreadable,
                Some(&info.stack),
                Some(&store),
                1,
                path_text(Path::new(&e.to_string())),
            )),
        }
    }
    sums.rows()
}

/// The slices of the applied stacks among `infos`.
pub(super) fn slices(root: &Root, infos: &[StackInfo]) -> Usage {
    let stacks: Vec<(String, u32)> = infos
        .iter()
        .filter(|i| i.applied)
        .map(|i| (i.stack.clone(), i.uid))
        .collect();
    usage_cap::read(root, &stacks)
}

/// `audit --only usage`: the slices of the policy's recorded stacks (of `stacks`, all when
/// empty), read from the state file alone: no accounts, no walk, no systemd.
pub fn slices_only(root: &Root, policy: &Policy, stacks: &[String]) -> Result<Usage> {
    plan::check_selection(
        policy,
        &plan::Options {
            stacks: stacks.to_vec(),
            ..plan::Options::default()
        },
    )?;
    let state = State::read(root)?;
    let recorded: Vec<(String, u32)> = policy
        .stacks
        .keys()
        .filter(|s| stacks.is_empty() || stacks.contains(s))
        .filter_map(|s| Some((s.clone(), state.stacks.get(s)?.allocation.uid)))
        .collect();
    Ok(usage_cap::read(root, &recorded))
}
