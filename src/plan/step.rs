//! `Step`: one change apply makes, with a readable diff line (`+` added, `~` changed in
//! place) and a JSON form.
use crate::ids::{Shift, SubidRange};
use crate::migration::MigrateMode;
use crate::walk::Survey;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

// A plan holds a handful of steps: a migration's survey inline is simpler than a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    RecordAllocation {
        stack: String,
        user: String,
        uid: u32,
        gid: u32,
        subids: SubidRange,
    },
    CreateGroup {
        group: String,
        gid: Option<u32>,
    },
    CreateUser {
        stack: String,
        user: String,
        uid: u32,
        gid: u32,
        home: PathBuf,
        shell: String,
    },
    AddToGroup {
        stack: String,
        user: String,
        group: String,
    },
    AddSubids {
        stack: String,
        user: String,
        subids: SubidRange,
        subuid: bool,
        subgid: bool,
    },
    EnableLinger {
        stack: String,
        user: String,
        uid: u32,
    },
    StartPodmanSocket {
        stack: String,
        user: String,
        uid: u32,
        socket: PathBuf,
    },
    Migrate {
        stack: String,
        path: PathBuf,
        mode: MigrateMode,
        shift: Shift,
        target_uid: u32,
        target_gid: u32,
        resume: bool,
        survey: Survey,
        /// What the policy accepts for files hardlinked from outside the data path.
        #[serde(default)]
        outside_links: crate::migration::OutsideLinks,
    },
    /// A new stack's data path that does not exist yet: created owned by the stack's
    /// container root, mode 0750, and recorded as migrated (there is nothing to move).
    CreateData {
        stack: String,
        path: PathBuf,
        uid: u32,
        gid: u32,
        mode: MigrateMode,
        shift: Shift,
    },
    CloseData(crate::isolation::steps::CloseData),
    OpenData(crate::isolation::steps::OpenData),
    Share(crate::isolation::steps::ShareStep),
    /// Env files, images, volumes and the service that move with the stack.
    Handoff(crate::handoff::HandoffStep),
    /// A stack's compose override for its `reaches` paths (src/reach).
    Reach(crate::reach::plan::ReachStep),
    /// A reached stack's project still run by the legacy user (src/reach/legacy.rs).
    ReachLegacy(crate::reach::legacy::LegacyStep),
    /// A stack's disk budget on one data tree (src/quota).
    Quota(crate::quota::QuotaStep),
    /// The stack slice's resource limits drop-in (src/limits).
    Limits(crate::limits::LimitsStep),
    /// A quadlet stack's units: the legacy owner's parked, the stack user's installed (src/quadlet).
    Quadlet(super::QuadletStep),
}

impl Step {
    pub fn stack(&self) -> Option<&str> {
        match self {
            Step::RecordAllocation { stack, .. }
            | Step::CreateUser { stack, .. }
            | Step::AddToGroup { stack, .. }
            | Step::AddSubids { stack, .. }
            | Step::EnableLinger { stack, .. }
            | Step::StartPodmanSocket { stack, .. }
            | Step::Migrate { stack, .. }
            | Step::CreateData { stack, .. } => Some(stack),
            Step::Handoff(h) => Some(h.stack()),
            Step::Reach(r) => Some(&r.stack),
            Step::ReachLegacy(l) => Some(l.stack()),
            Step::Quota(q) => Some(q.stack()),
            Step::Limits(l) => Some(&l.stack),
            Step::Quadlet(q) => Some(q.stack()),
            Step::CloseData(c) => Some(&c.stack),
            Step::OpenData(o) => Some(&o.stack),
            Step::CreateGroup { .. } | Step::Share(_) => None,
        }
    }
}

impl fmt::Display for Step {
    /// One line, `+` for something added, `~` for something changed in place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::RecordAllocation {
                stack,
                user,
                uid,
                subids,
                ..
            } => {
                write!(
                    f,
                    "+ allocation {stack}: user {user} uid {uid}, subordinate ids {subids}"
                )
            }
            Step::CreateGroup {
                group,
                gid: Some(g),
            } => write!(f, "+ group {group} (gid {g})"),
            Step::CreateGroup { group, gid: None } => write!(f, "+ group {group}"),
            Step::CreateUser {
                user,
                uid,
                gid,
                home,
                ..
            } => {
                write!(
                    f,
                    "+ user {user} (uid {uid}, gid {gid}, home {})",
                    home.display()
                )
            }
            Step::AddToGroup { user, group, .. } => write!(f, "+ member {user} of group {group}"),
            Step::AddSubids {
                user,
                subids,
                subuid,
                subgid,
                ..
            } => {
                let files = match (subuid, subgid) {
                    (true, true) => "subuid+subgid",
                    (true, false) => "subuid",
                    _ => "subgid",
                };
                write!(f, "+ {files} {user}:{}:{}", subids.start, subids.count)
            }
            Step::EnableLinger { user, .. } => {
                write!(f, "+ linger for {user}, wait for its user manager")
            }
            Step::StartPodmanSocket { user, socket, .. } => {
                write!(
                    f,
                    "+ podman.socket for {user}, verify GET /_ping on {}",
                    socket.display()
                )
            }
            Step::Migrate {
                stack,
                path,
                mode,
                survey,
                resume,
                ..
            } => {
                write!(
                    f,
                    "~ migrate {} for {stack} ({mode}{}): {} inodes: {} shift, {} reown, {} already done, {} left (outside the legacy mapping)",
                    path.display(),
                    if *resume { ", resuming an interrupted run" } else { "" },
                    survey.inodes,
                    survey.shift,
                    survey.reown,
                    survey.already,
                    survey.outside
                )?;
                for warning in survey.warnings() {
                    write!(f, "\n  ! {warning}")?;
                }
                Ok(())
            }
            Step::CreateData {
                stack,
                path,
                uid,
                gid,
                ..
            } => write!(
                f,
                "+ data {} for {stack}: new directory owned by {uid}:{gid} (container root), mode 0750",
                path.display()
            ),
            Step::CloseData(c) => c.fmt(f),
            Step::OpenData(o) => o.fmt(f),
            Step::Share(sh) => sh.fmt(f),
            Step::Handoff(h) => h.fmt(f),
            Step::Reach(r) => r.fmt(f),
            Step::ReachLegacy(l) => l.fmt(f),
            Step::Quota(q) => q.fmt(f),
            Step::Limits(l) => l.fmt(f),
            Step::Quadlet(q) => q.fmt(f),
        }
    }
}

/// A plugged capability's step as the plan carries it (src/plugins.rs).
impl From<crate::limits::LimitsStep> for Step {
    fn from(step: crate::limits::LimitsStep) -> Self {
        Step::Limits(step)
    }
}

impl From<super::QuadletStep> for Step {
    fn from(step: super::QuadletStep) -> Self {
        Step::Quadlet(step)
    }
}

/// The step's kind as `--json` names it (`create_user`, `migrate`, ...).
pub fn step_kind(step: &Step) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.get("kind")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The span every record about one step runs in: journal fields `ISOLATE_STACK` (empty for
/// steps of no single stack) and `ISOLATE_STEP`.
pub fn step_span(step: &Step) -> tracing::Span {
    tracing::info_span!(
        "step",
        stack = step.stack().unwrap_or(""),
        step = step_kind(step).as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_kind_is_the_json_kind() {
        let step = Step::EnableLinger {
            stack: "immich".into(),
            user: "stk-immich".into(),
            uid: 800,
        };
        assert_eq!(step_kind(&step), "enable_linger");
    }
}
