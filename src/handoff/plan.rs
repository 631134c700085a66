//! The hand-off's planner: pure, from the policy and the observed facts to the steps that
//! hand a stack its env files, images and named volumes, and the notes on what is already
//! right, what is left behind and what is worth knowing.
use super::copies::{self, CopyStep};
use super::env_files::{self, EnvFileFacts, FileOwner, ENV_FILE_MODE};
use super::service::ProjectRuns;
use super::volumes::VolumePhase;
use super::{HandoffStep, StackFacts};
use crate::alloc::FIRST_USER_JOURNAL_UID;
use crate::host::accounts::Accounts;
use crate::model::{Note, NoteKind, Planned, Selection as Options};
use crate::policy::{Policy, StackPolicy};
use crate::state::{Allocation, State};
use std::collections::BTreeMap;

/// What the hand-off's planner reads of the observed host.
pub struct Seen<'a> {
    pub accounts: &'a Accounts,
    pub state: &'a State,
    pub handoff: &'a BTreeMap<String, StackFacts>,
}

type Plan = Planned<HandoffStep>;

/// Every other stack user that exists on the host: who must not read this stack's secrets.
fn other_stack_users<'a>(policy: &Policy, obs: &'a Seen<'a>, me: &str) -> Vec<(&'a str, u32)> {
    let mut names: Vec<String> = policy
        .stacks
        .keys()
        .map(|s| policy.stack_user(s))
        .chain(obs.state.stacks.values().map(|r| r.allocation.user.clone()))
        .filter(|u| u != me)
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .filter_map(|n| obs.accounts.user(n))
        .map(|u| (u.name.as_str(), u.uid))
        .collect()
}

/// Appends the stack's hand-off steps and notes; refusals (bad input, nothing changed) go to
/// the draft's refusals.
pub fn plan_stack(
    out: &mut Plan,
    refusals: &mut Vec<String>,
    policy: &Policy,
    s: &StackPolicy,
    a: &Allocation,
    obs: &Seen<'_>,
    opts: &Options,
) {
    plan_env_files(policy, s, a, obs, out, refusals);
    plan_images(policy, s, a, obs, opts, out, refusals);
    plan_volumes(policy, s, a, obs, opts, out, refusals);
    plan_service(s, a, obs, opts, out, refusals);
    if !s.handoff.compose.is_empty() && a.uid < FIRST_USER_JOURNAL_UID {
        out.notes.push(note(
            s,
            NoteKind::Warning,
            format!(
                "{} has uid {} (below {FIRST_USER_JOURNAL_UID}): journald keeps its containers' logs in the system journal, which it cannot read, so `podman logs` fails for it (root still reads them: journalctl _UID={}); give new stacks uids from {FIRST_USER_JOURNAL_UID} up (`[pools] uid_first`, or `uid` per stack)",
                a.user, a.uid, a.uid
            ),
        ));
    }
}

/// The compose service: written, enabled and started unless its unit is already exactly
/// what isolate renders, enabled and active, and the project's containers run (a oneshot
/// unit stays active when compose exits 0 with every container failed).
fn plan_service(
    s: &StackPolicy,
    a: &Allocation,
    obs: &Seen<'_>,
    opts: &Options,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) {
    if !s.handoff.wants_service() {
        return;
    }
    let project = s.handoff.project_of(&s.name);
    let unit = super::service::unit_name(&project);
    if !opts.systemd {
        out.notes.push(note(
            s,
            NoteKind::Skipped,
            format!("service {unit} of `{}` (--no-systemd)", s.name),
        ));
        return;
    }
    let text = super::service::render_unit(s, a);
    let home = super::service::home_of(obs.accounts, a);
    let facts = obs
        .handoff
        .get(&s.name)
        .and_then(|f| f.service.clone())
        .unwrap_or_default();
    let Some((copies, copies_right)) = plan_copies(s, &facts, out, refusals) else {
        return;
    };
    let unit_right = facts.text.as_deref() == Some(text.as_str()) && facts.enabled && facts.active;
    match &facts.project {
        ProjectRuns::Yes if unit_right && copies_right => {
            out.notes.push(note(
                s,
                NoteKind::Present,
                format!(
                    "service {unit} of {} enabled and active, project {project} runs",
                    a.user
                ),
            ));
            return;
        }
        ProjectRuns::No(why) if unit_right => out.notes.push(note(
            s,
            NoteKind::Warning,
            format!(
                "service {unit} of {} is enabled and active, but project {project} does not run ({why}): apply starts it again",
                a.user
            ),
        )),
        _ => {}
    }
    out.steps.push(HandoffStep::InstallService {
        stack: s.name.clone(),
        user: a.user.clone(),
        uid: a.uid,
        gid: a.gid,
        project,
        unit,
        path: super::service::unit_path(&home, &s.handoff.project_of(&s.name)),
        home,
        text,
        copies,
        declared: None,
    });
}

/// The copies the service runs, and whether each already holds what its original says; a
/// changed original is a `!` note with the change (None: refused, see `refusals`).
fn plan_copies(
    s: &StackPolicy,
    facts: &super::ServiceFacts,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) -> Option<(Vec<CopyStep>, bool)> {
    let mut steps = Vec::new();
    let mut all_right = true;
    let mut refused = false;
    for (kind, original) in copies::files(s) {
        let what = match kind {
            copies::CopyKind::Env => "env file",
            copies::CopyKind::Compose => "compose file",
        };
        let Some(c) = facts.copies.iter().find(|c| c.original == original) else {
            refusals.push(format!(
                "stack `{}`: {what} {} was not looked at",
                s.name,
                original.display()
            ));
            refused = true;
            continue;
        };
        let Some(wanted) = &c.wanted else {
            refusals.push(format!(
                "stack `{}`: {what} {} cannot be copied for its service: {}",
                s.name,
                original.display(),
                c.error.as_deref().unwrap_or("unreadable")
            ));
            refused = true;
            continue;
        };
        if let Some(n) = copies::changed_note(c, &s.name) {
            out.notes.push(note(s, NoteKind::Warning, n));
        }
        all_right &= c.current.as_ref() == Some(wanted);
        steps.push(CopyStep {
            kind,
            from: original,
            to: c.copy.clone(),
            owners: c.owners.clone(),
            content: wanted.clone(),
        });
    }
    (!refused).then_some((steps, all_right))
}

fn note(s: &StackPolicy, kind: NoteKind, message: String) -> Note {
    Note {
        kind,
        stack: Some(s.name.clone()),
        message,
    }
}

fn plan_env_files(
    policy: &Policy,
    s: &StackPolicy,
    a: &Allocation,
    obs: &Seen<'_>,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) {
    let facts = obs.handoff.get(&s.name);
    let others = other_stack_users(policy, obs, &a.user);
    let legacy = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| obs.accounts.user(&l.value));
    for e in &s.handoff.env_files {
        let path = &e.value;
        let shown = path.display();
        let note = |kind: NoteKind, message: String| note(s, kind, message);
        match facts.and_then(|f| f.env_files.get(path)) {
            None => refusals.push(format!(
                "stack `{}`: env file {shown} was not looked at",
                s.name
            )),
            Some(EnvFileFacts::Missing) => {
                refusals.push(format!("stack `{}`: env file {shown} does not exist", s.name))
            }
            Some(EnvFileFacts::ThroughSymlink) => refusals.push(format!(
                "stack `{}`: env file {shown} is reached through a symbolic link; isolate never follows one: name the real file",
                s.name
            )),
            Some(EnvFileFacts::NotRegular { file_type }) => refusals.push(format!(
                "stack `{}`: env file {shown} is {file_type}, not a regular file",
                s.name
            )),
            Some(EnvFileFacts::File(f)) if f.links != 1 => refusals.push(format!(
                "stack `{}`: env file {shown} has {} names (hard links); another name could be a file that is not the legacy user's to give (a root file, another stack's secret): isolate takes only a file with one name",
                s.name, f.links
            )),
            Some(EnvFileFacts::File(f)) if env_files::is_handed(&f.owner, a.uid, a.gid) => {
                out.notes.push(note(
                    NoteKind::Present,
                    format!(
                        "env file {shown} is {}'s alone (mode {:04o})",
                        a.user, f.owner.mode
                    ),
                ))
            }
            Some(EnvFileFacts::File(f)) if Some(f.owner.uid) != legacy.map(|l| l.uid) => {
                refusals.push(format!(
                    "stack `{}`: env file {shown} belongs to uid {}, not to the legacy user {}: isolate hands over only that user's files",
                    s.name,
                    f.owner.uid,
                    legacy.map_or("(no `legacy_owner` in the policy)", |l| l.name.as_str())
                ))
            }
            Some(EnvFileFacts::File(file)) => {
                let f = &file.owner;
                // Handed over before, and not the stack's now: replaced (an inode number may
                // come back, so this does not rest on the recorded one).
                let handed_before = obs
                    .state
                    .handoff
                    .get(&s.name)
                    .is_some_and(|r| r.env_files.iter().any(|r| &r.path == path));
                if handed_before {
                    out.notes.push(note(
                        NoteKind::Warning,
                        format!(
                            "env file {shown} of stack `{}` was replaced since isolate handed it to {} (owner now uid {}); apply hands over the new file",
                            s.name, a.user, f.uid
                        ),
                    ));
                }
                let readers = env_files::readers(f, obs.accounts, &others);
                if !readers.is_empty() {
                    out.notes.push(note(
                        NoteKind::Warning,
                        format!(
                            "env file {shown} of stack `{}` is readable by other stacks' users today: {} (owner {}:{}, mode {:04o}); apply makes it {}'s alone",
                            s.name,
                            readers.join(", "),
                            f.uid,
                            f.gid,
                            f.mode,
                            a.user
                        ),
                    ));
                }
                out.steps.push(HandoffStep::EnvFile {
                    stack: s.name.clone(),
                    user: a.user.clone(),
                    path: path.clone(),
                    was: *f,
                    id: file.id,
                    to: FileOwner {
                        uid: a.uid,
                        gid: a.gid,
                        mode: ENV_FILE_MODE,
                    },
                });
            }
        }
    }
}

/// One step per image the stack needs and its own store lacks (or holds with another ID);
/// an image the legacy store is seen to lack is a warning, not a step.
fn plan_images(
    policy: &Policy,
    s: &StackPolicy,
    a: &Allocation,
    obs: &Seen<'_>,
    opts: &Options,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) {
    let Some(facts) = obs.handoff.get(&s.name) else {
        return;
    };
    if let Some(e) = &facts.compose_error {
        refusals.push(format!("stack `{}`: {e}", s.name));
        return;
    }
    let project = s.handoff.project_of(&s.name);
    let containers = facts
        .legacy
        .as_ref()
        .map(|l| l.containers.as_slice())
        .unwrap_or_default();
    let images = super::wanted_images(s, &facts.compose, containers);
    if images.is_empty() {
        return;
    }
    let Some(legacy) = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| obs.accounts.user(&l.value))
    else {
        out.notes.push(note(
            s,
            NoteKind::Skipped,
            format!(
                "images of `{}` ({}): no `legacy_owner` to copy them from",
                s.name,
                images.join(", ")
            ),
        ));
        return;
    };
    if !opts.systemd {
        out.notes.push(note(
            s,
            NoteKind::Skipped,
            format!(
                "images of `{}` ({}): copying needs the podman sockets (--no-systemd)",
                s.name,
                images.join(", ")
            ),
        ));
        return;
    }
    for image in images {
        let in_legacy = facts.legacy.as_ref().and_then(|l| l.images.get(&image));
        let in_stack = facts.stack_images.get(&image).cloned().flatten();
        match (in_legacy, in_stack) {
            (Some(Some(l)), Some(st)) if *l == st => out.notes.push(note(
                s,
                NoteKind::Present,
                format!("image {image} in {}'s store (ID {})", a.user, short(&st)),
            )),
            (Some(None), Some(st)) => out.notes.push(note(
                s,
                NoteKind::Present,
                format!("image {image} in {}'s store (ID {})", a.user, short(&st)),
            )),
            (Some(None), None) => out.notes.push(note(
                s,
                NoteKind::Warning,
                format!(
                    "image {image} of `{}` is not in {}'s podman store: not copied (pull or build it as {} yourself)",
                    s.name, legacy.name, a.user
                ),
            )),
            _ => out.steps.push(HandoffStep::CopyImage {
                stack: s.name.clone(),
                image,
                from_user: legacy.name.clone(),
                from_uid: legacy.uid,
                to_user: a.user.clone(),
                to_uid: a.uid,
            }),
        }
    }
    if !containers.is_empty() {
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        out.notes.push(note(
            s,
            NoteKind::Warning,
            format!(
                "left behind: {}'s containers of project {project}: {} (isolate never deletes them); once the stack runs as {}, remove them with `runuser -u {} -- podman rm {}`",
                legacy.name,
                names.join(", "),
                a.user,
                legacy.name,
                names.join(" ")
            ),
        ));
    }
}

/// The first 12 hex digits of an image ID, as podman prints it.
fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// One step per named volume of the project still in the legacy store (or half moved);
/// refused while a container has it mounted or when the stack's volume already holds data.
fn plan_volumes(
    policy: &Policy,
    s: &StackPolicy,
    a: &Allocation,
    obs: &Seen<'_>,
    opts: &Options,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) {
    let recorded: Vec<&super::volumes::VolumeRecord> = obs
        .state
        .handoff
        .get(&s.name)
        .map(|r| r.volumes.iter().collect())
        .unwrap_or_default();
    let Some(facts) = obs.handoff.get(&s.name) else {
        return;
    };
    let legacy = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| obs.accounts.user(&l.value));
    for v in &facts.volumes {
        let rec = recorded.iter().find(|r| r.name == v.name);
        if let Some(r) = rec {
            match r.phase {
                VolumePhase::Done => {
                    out.notes.push(note(
                        s,
                        NoteKind::Present,
                        format!("volume {} moved to {}'s store", v.name, a.user),
                    ));
                    continue;
                }
                VolumePhase::Unplacing | VolumePhase::Unshifting | VolumePhase::MovingBack => {
                    refusals.push(format!(
                        "stack `{}`: a rollback of volume {} was interrupted; finish it first with `isolate rollback --stack {}`",
                        s.name, v.name, s.name
                    ));
                    continue;
                }
                VolumePhase::Moving | VolumePhase::Shifting | VolumePhase::Placing => {}
            }
        }
        if !v.refused.is_empty() {
            for why in &v.refused {
                refusals.push(format!("stack `{}`: volume {}: {why}", s.name, v.name));
            }
            continue;
        }
        if rec.is_none() && !v.legacy_data {
            if v.stack.is_some() {
                out.notes.push(note(
                    s,
                    NoteKind::Present,
                    format!("volume {} in {}'s store", v.name, a.user),
                ));
            }
            continue;
        }
        if !v.holders.is_empty() && !opts.force {
            refusals.push(format!(
                "stack `{}`: containers are using volume {}: {}; stop them first (or pass --force)",
                s.name,
                v.name,
                v.holders.join(", ")
            ));
            // The move stays in the preview; apply refuses it while they run.
        }
        if rec.is_none() && v.stack_data {
            refusals.push(format!(
                "stack `{}`: volume {} already holds data in {}'s store; isolate never mixes two volumes' data: empty or remove one of them first",
                s.name, v.name, a.user
            ));
            continue;
        }
        let (Some(legacy), Some(from)) = (legacy, v.legacy.as_ref()) else {
            continue;
        };
        let to_path = super::volumes::data_path(&super::service::home_of(obs.accounts, a), &v.name);
        let Some(legacy_maps) = crate::alloc::legacy_maps(policy, obs.accounts) else {
            continue;
        };
        let to = a.maps();
        let (shift, mode) = match rec {
            Some(r) => (
                crate::ids::Shift {
                    from: r.from_maps.clone(),
                    to: r.to_maps.clone(),
                },
                r.mode,
            ),
            None => {
                if legacy_maps != to && legacy_maps.overlaps(&to) {
                    refusals.push(format!(
                        "stack `{}`: the legacy mapping and the stack's mapping overlap, so volume {} cannot be shifted exactly",
                        s.name, v.name
                    ));
                    continue;
                }
                (
                    crate::ids::Shift {
                        from: legacy_maps,
                        to,
                    },
                    s.migrate.value,
                )
            }
        };
        out.steps.push(HandoffStep::MoveVolume {
            stack: s.name.clone(),
            name: v.name.clone(),
            labels: v.labels.clone(),
            from_user: legacy.name.clone(),
            from: from.clone(),
            from_id: if rec.is_some() { None } else { v.legacy_id },
            to_user: a.user.clone(),
            to: to_path,
            to_uid: a.uid,
            mode,
            shift,
            target_uid: a.uid,
            target_gid: a.gid,
            resume: rec.is_some(),
        });
    }
}
