//! The hand-off part of plan(): pure, from the policy and the observed facts to the steps that
//! hand a stack its env files (and, later, images, volumes and service), and the notes on what
//! is already right or worth knowing.
use super::env_files::{self, EnvFileFacts, FileOwner, ENV_FILE_MODE};
use super::HandoffStep;
use crate::plan::{Note, NoteKind, Observed, Plan, Step};
use crate::policy::{Policy, StackPolicy};
use crate::state::Allocation;

/// Every other stack user that exists on the host: who must not read this stack's secrets.
fn other_stack_users<'a>(policy: &Policy, obs: &'a Observed, me: &str) -> Vec<(&'a str, u32)> {
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
/// `refusals`.
pub fn plan_stack(
    policy: &Policy,
    s: &StackPolicy,
    a: &Allocation,
    obs: &Observed,
    out: &mut Plan,
    refusals: &mut Vec<String>,
) {
    let facts = obs.handoff.get(&s.name);
    let others = other_stack_users(policy, obs, &a.user);
    for e in &s.handoff.env_files {
        let path = &e.value;
        let shown = path.display();
        let note = |kind: NoteKind, message: String| Note {
            kind,
            stack: Some(s.name.clone()),
            message,
        };
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
            Some(EnvFileFacts::File(f)) if env_files::is_handed(f, a.uid, a.gid) => {
                out.notes.push(note(
                    NoteKind::Present,
                    format!("env file {shown} is {}'s alone (mode {:04o})", a.user, f.mode),
                ))
            }
            Some(EnvFileFacts::File(f)) => {
                let readers = env_files::readers(f, &obs.accounts, &others);
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
                out.steps.push(Step::Handoff(HandoffStep::EnvFile {
                    stack: s.name.clone(),
                    user: a.user.clone(),
                    path: path.clone(),
                    was: *f,
                    to: FileOwner {
                        uid: a.uid,
                        gid: a.gid,
                        mode: ENV_FILE_MODE,
                    },
                }));
            }
        }
    }
}
