//! Isolation's planner, pure: from the policy, the observed facts and the stacks'
//! allocations to close / reopen / share steps, notes and refusals. The plan runs it after the
//! stacks' own steps, so a data path migrated in the same apply is closed right after.
use super::facts::{closing_of, known_maps, Facts};
use super::grants;
use super::steps::{CloseData, OpenData, ShareFacts, ShareStep};
use crate::alloc::Allocated;
use crate::host::accounts::Accounts;
use crate::ids::IdMaps;
use crate::model::{Note, NoteKind, Planned, Selection as Options};
use crate::policy::{Policy, ShareMode};
use crate::state::{MigrationPhase, State};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One isolation step, as the plan wraps it into its `Step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsolationStep {
    Close(CloseData),
    Open(OpenData),
    Share(ShareStep),
}

/// What isolation's planner reads of the observed host.
pub struct Seen<'a> {
    pub accounts: &'a Accounts,
    pub state: &'a State,
    pub isolation: &'a Facts,
}

/// Where the planner puts its steps, notes and refusals.
pub struct Draft<'a> {
    pub planned: &'a mut Planned<IsolationStep>,
    pub refusals: &'a mut Vec<String>,
}

impl Draft<'_> {
    fn step(&mut self, step: IsolationStep) {
        self.planned.steps.push(step);
    }

    fn note(&mut self, kind: NoteKind, stack: Option<&str>, message: String) {
        self.planned.notes.push(Note {
            kind,
            stack: stack.map(str::to_string),
            message,
        });
    }
}

/// Adds isolation's steps and notes to `out`; refusals are collected for plan to raise.
pub fn plan(
    draft: &mut Draft,
    policy: &Policy,
    obs: &Seen<'_>,
    allocs: &BTreeMap<String, Allocated>,
    opts: &Options,
    migrating_now: &[(String, PathBuf)],
) {
    let facts = obs.isolation;
    let maps = known_maps(obs.state, allocs);
    let shared_group = &policy.shared_group.value;
    let shared_gid = obs.accounts.group(shared_group).map(|g| g.gid);

    for s in policy
        .stacks
        .values()
        .filter(|s| opts.stacks.is_empty() || opts.stacks.contains(&s.name))
    {
        let Some(own) = maps.get(&s.name) else {
            continue;
        };
        let others: Vec<IdMaps> = maps
            .iter()
            .filter(|(n, _)| **n != s.name)
            .map(|(_, m)| m.clone())
            .collect();
        for d in &s.data {
            let path = &d.value;
            let key = (s.name.clone(), path.clone());
            if let Some(why) = facts.untraversable.get(&key) {
                draft.note(
                    NoteKind::Warning,
                    Some(s.name.as_str()),
                    format!(
                        "stack `{}` cannot reach {}: {why}; isolate does not change parent directories",
                        s.name,
                        path.display()
                    ),
                );
            }
            if !s.closed {
                if facts.record.closed_top(&s.name, path).is_some() {
                    draft.step(IsolationStep::Open(OpenData {
                        stack: s.name.clone(),
                        path: path.clone(),
                    }));
                } else {
                    draft.note(
                        NoteKind::Skipped,
                        Some(s.name.as_str()),
                        format!(
                            "{} of {} stays open to other stacks (closed = false in the policy)",
                            path.display(),
                            s.name
                        ),
                    );
                }
                continue;
            }
            let close = |entered_by| {
                IsolationStep::Close(CloseData {
                    stack: s.name.clone(),
                    path: path.clone(),
                    maps: own.clone(),
                    others: others.clone(),
                    shared_gid,
                    entered_by,
                })
            };
            if migrating_now.contains(&key) {
                draft.step(close(None));
                continue;
            }
            let migrated = matches!(
                obs.state.migration(&s.name, path).map(|m| m.phase),
                Some(MigrationPhase::Done)
            );
            if !migrated {
                continue;
            }
            match facts.closures.get(&key) {
                None => {}
                // Not a reason to hold back every other stack: said, and tried again next time.
                Some(Err(why)) => draft.note(
                    NoteKind::Warning,
                    Some(s.name.as_str()),
                    format!(
                        "cannot tell whether {} of {} is closed to other stacks: {why}",
                        path.display(),
                        s.name
                    ),
                ),
                Some(Ok(cf)) => match closing_of(&s.name, &maps, cf, shared_gid) {
                    Some((None, ids)) => draft.note(
                        NoteKind::Present,
                        Some(s.name.as_str()),
                        format!(
                            "{} closed to other stacks{}",
                            path.display(),
                            if ids.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " (entered by host uids {})",
                                    ids.iter()
                                        .map(|u| u.to_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ),
                    ),
                    Some((Some(_), ids)) => draft.step(close(Some(ids))),
                    None => {}
                },
            }
        }
    }

    let owned: Vec<IdMaps> = maps.values().cloned().collect();
    for share in policy.shares.values() {
        let touches_selection = opts.stacks.is_empty()
            || share
                .read
                .iter()
                .chain(&share.write)
                .any(|g| opts.stacks.contains(&g.value.stack));
        if !touches_selection {
            continue;
        }
        let grants = grants::resolve(share, &maps);
        // A tree isolate changed at another path (the policy moved the share), or any tree
        // once the share is in group mode: taken off before the share is made anew.
        let moves_from: Vec<PathBuf> = facts
            .record
            .shares_named(&share.name)
            .filter(|t| t.path != share.path.value || share.mode == ShareMode::Group)
            .map(|t| t.path.clone())
            .collect();
        let members = obs
            .accounts
            .group(shared_group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        let (inodes, changes) = match facts.shares.get(&share.name) {
            Some(ShareFacts::Refused(why)) => {
                draft
                    .refusals
                    .push(format!("share `{}`: {why}", share.name));
                continue;
            }
            Some(ShareFacts::Missing) => {
                draft
                    .refusals
                    .push(super::fs::missing_share(&share.name, &share.path.value));
                continue;
            }
            Some(ShareFacts::NoAcls(fs)) if share.mode == ShareMode::Acl => {
                draft.refusals.push(super::fs::refusal(
                    &share.name,
                    &share.path.value,
                    fs,
                    shared_group,
                ));
                continue;
            }
            Some(ShareFacts::NoAcls(_)) | None => (0, 0),
            Some(ShareFacts::GroupOnly { ready: true }) if moves_from.is_empty() => {
                let step = ShareStep {
                    share: share.name.clone(),
                    path: share.path.value.clone(),
                    mode: share.mode,
                    grants,
                    owned: owned.clone(),
                    shared_group: shared_group.clone(),
                    shared_gid,
                    inodes: 1,
                    changes: 0,
                    group_members: members,
                    moves_from: Vec::new(),
                };
                draft.note(
                    NoteKind::Present,
                    None,
                    format!(
                        "share {} at {} in group-only mode: group {} owns it, others have nothing. {}",
                        share.name,
                        share.path.value.display(),
                        shared_group,
                        step.who_gains()
                    ),
                );
                continue;
            }
            Some(ShareFacts::GroupOnly { ready }) => (1, u64::from(!*ready)),
            Some(ShareFacts::Surveyed { inodes, changes }) => (*inodes, *changes),
        };
        if changes == 0
            && moves_from.is_empty()
            && matches!(
                facts.shares.get(&share.name),
                Some(ShareFacts::Surveyed { .. })
            )
        {
            draft.note(
                NoteKind::Present,
                None,
                format!(
                    "share {} at {}: {inodes} inodes as the policy grants",
                    share.name,
                    share.path.value.display()
                ),
            );
            continue;
        }
        draft.step(IsolationStep::Share(ShareStep {
            share: share.name.clone(),
            path: share.path.value.clone(),
            mode: share.mode,
            grants,
            owned: owned.clone(),
            shared_group: shared_group.clone(),
            shared_gid,
            inodes,
            changes,
            group_members: members,
            moves_from,
        }));
    }

    // A share isolate applied that the policy no longer names keeps its entries until the
    // operator says so: reported, never removed behind their back.
    for tree in &facts.record.share_trees {
        let name = &tree.name;
        if !policy.shares.contains_key(name) {
            draft.note(
                NoteKind::Orphaned,
                None,
                format!(
                    "share `{name}` ({}) is no longer in the policy; its ACL entries stay until \
                     `isolate rollback --share {name}` removes them",
                    tree.path.display()
                ),
            );
        }
    }
}
