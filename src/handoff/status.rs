//! The hand-off's lines of `status`: what isolate handed the stack (env files, volumes, the
//! service and its state) and what the legacy user still holds of the project, with the
//! command that removes it. Asks podman only through sockets that already listen. A service
//! is shown running only when its project's containers run.
use super::env_files::{self, EnvFileFacts};
use super::service::ProjectRuns;
use crate::host::accounts::Accounts;
use crate::host::session::Session;
use crate::layout::Root;
use crate::policy::Policy;
use crate::state::{Allocation, State};

pub fn lines(
    root: &Root,
    policy: &Policy,
    state: &State,
    acc: &Accounts,
    stack: &str,
    a: &Allocation,
    stores: Option<&Session<'_>>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rec) = state.handoff.get(stack) {
        for e in &rec.env_files {
            // What the file is now, not what the record says was done.
            let now = match env_files::observe(root, &e.path) {
                Ok(EnvFileFacts::File(f))
                    if f.links == 1 && env_files::is_handed(&f.owner, a.uid, a.gid) =>
                {
                    format!("{}'s alone", a.user)
                }
                Ok(EnvFileFacts::File(f)) => format!(
                    "no longer {}'s alone: owner uid {}, mode {:04o}, {} name(s); `isolate plan` shows what apply does",
                    a.user, f.owner.uid, f.owner.mode, f.links
                ),
                Ok(other) => format!("no longer a file isolate handed over ({other:?})"),
                Err(e) => format!("cannot be read: {e}"),
            };
            out.push(format!(
                "env file {}: {now} (was {}:{} mode {:04o})",
                e.path.display(),
                e.was.uid,
                e.was.gid,
                e.was.mode
            ));
        }
        for v in &rec.volumes {
            let phase = serde_json::to_value(v.phase).unwrap_or_default();
            out.push(format!(
                "volume {} ({}): {}",
                v.name,
                phase.as_str().unwrap_or("?"),
                v.to.display()
            ));
        }
        if let Some(svc) = &rec.service {
            let project = policy
                .stacks
                .get(stack)
                .map_or_else(|| stack.to_string(), |s| s.handoff.project_of(&s.name));
            let state = match stores.and_then(|s| s.unit_state(&a.user, a.uid, &svc.unit)) {
                Some((enabled, active)) => format!(
                    "{}, {}, {}",
                    if enabled { "enabled" } else { "disabled" },
                    if active { "active" } else { "inactive" },
                    match stores.map(|s| super::service::project_runs(s, a.uid, &project)) {
                        Some(ProjectRuns::Yes) => format!("project {project} runs"),
                        Some(ProjectRuns::No(why)) => {
                            format!("project {project} does not run: {why}")
                        }
                        _ => format!(
                            "project {project} not asked (its podman socket does not listen)"
                        ),
                    }
                ),
                None => "not asked".into(),
            };
            out.push(format!(
                "service {} ({state}): {}",
                svc.unit,
                svc.path.display()
            ));
            if let Some(s) = policy.stacks.get(stack) {
                let copies =
                    super::copies::observe(root, s, &super::service::copy_owners(policy, acc, a));
                let changed: Vec<String> = copies
                    .iter()
                    .filter(|c| c.wanted.is_none() || c.wanted != c.current)
                    .map(|c| c.original.display().to_string())
                    .collect();
                out.push(if changed.is_empty() {
                    format!(
                        "the service runs isolate's copies in {}, equal to their originals",
                        super::copies::stack_dir(stack).join("files").display()
                    )
                } else {
                    format!(
                        "the service runs isolate's copies in {}; these originals differ from their copies (`isolate plan` shows how, `isolate apply` copies them): {}",
                        super::copies::stack_dir(stack).join("files").display(),
                        changed.join(", ")
                    )
                });
            }
        }
    }
    let (Some(stores), Some(s), Some(legacy)) = (
        stores,
        policy.stacks.get(stack),
        policy
            .legacy_owner
            .as_ref()
            .and_then(|l| acc.user(&l.value)),
    ) else {
        return out;
    };
    if s.handoff.compose.is_empty() || !stores.socket_listening(legacy.uid) {
        return out;
    }
    let project = s.handoff.project_of(&s.name);
    if let Ok(left) = stores.project_containers(legacy.uid, &project) {
        if !left.is_empty() {
            let names: Vec<&str> = left.iter().map(|c| c.name.as_str()).collect();
            out.push(format!(
                "left behind: {}'s containers of project {project}: {}; remove with `runuser -u {} -- podman rm {}`",
                legacy.name,
                names.join(", "),
                legacy.name,
                names.join(" ")
            ));
        }
    }
    out
}
