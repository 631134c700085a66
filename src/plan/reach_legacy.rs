//! The legacy side of `reaches` in a plan (see reach/legacy.rs): a reaching stack that moves
//! before its still-legacy target gets a legacy publish of the target from her own project;
//! the target moving forgets it; the target moving first says what the still-legacy reaching
//! stack loses. Pure from the policy and the observed facts.
use super::{Draft, NoteKind, StackCtx, Step};
use crate::model::RefusalKind;
use crate::reach::legacy::{override_file, render, LegacyRun, LegacyStep};
use crate::reach::targets;
use std::collections::{BTreeMap, BTreeSet};

/// Whether the target runs as its own user now (its compose service is installed).
fn moved(ctx: &StackCtx<'_>, stack: &str) -> bool {
    ctx.obs
        .state
        .handoff
        .get(stack)
        .is_some_and(|h| h.service.is_some())
}

fn selected(ctx: &StackCtx<'_>, stack: &str) -> bool {
    ctx.opts.stacks.is_empty() || ctx.opts.stacks.iter().any(|s| s == stack)
}

/// The legacy user's name, when the policy names one that exists.
fn legacy_user<'a>(ctx: &StackCtx<'a>) -> Option<&'a crate::host::accounts::etc::PasswdEntry> {
    ctx.policy
        .legacy_owner
        .as_ref()
        .and_then(|l| ctx.obs.accounts.user(&l.value))
}

/// The run of `stack`'s project as the legacy user.
pub fn legacy_run(
    s: &crate::policy::StackPolicy,
    user: &crate::host::accounts::etc::PasswdEntry,
) -> LegacyRun {
    LegacyRun {
        user: user.name.clone(),
        uid: user.uid,
        project: s.handoff.project_of(&s.name),
        command: if s.handoff.compose_command.is_empty() {
            vec![crate::handoff::service::DEFAULT_COMPOSE.to_string()]
        } else {
            s.handoff
                .compose_command
                .iter()
                .map(|w| w.value.clone())
                .collect()
        },
        compose: s.handoff.compose.iter().map(|c| c.value.clone()).collect(),
        env_files: s
            .handoff
            .env_files
            .iter()
            .map(|e| e.value.clone())
            .collect(),
    }
}

/// The reaching stack's side: a legacy publish per target still run by the legacy user.
/// `ports`: the host port of every target.
pub fn plan_reacher(draft: &mut Draft, ctx: &StackCtx<'_>, ports: &BTreeMap<String, u16>) {
    let s = ctx.stack;
    let facts = &ctx.obs.reach;
    let all = targets(ctx.policy);
    let wanted: BTreeSet<&str> = s.reaches.iter().map(|r| r.value.stack.as_str()).collect();
    for t in wanted {
        if selected(ctx, t) || moved(ctx, t) {
            continue; // its own override publishes the port
        }
        let (Some(user), Some(ts)) = (legacy_user(ctx), ctx.policy.stacks.get(t)) else {
            continue;
        };
        let run = legacy_run(ts, user);
        let Some(seen) = facts.legacy.get(t) else {
            draft.note(
                NoteKind::Warning,
                Some(&s.name),
                format!(
                    "`{}` reaches stack `{t}`, which is not applied, and {}'s podman could not be asked whether it runs her project {}: the path answers once `isolate apply --stack {t}` publishes its port",
                    s.name, user.name, run.project
                ),
            );
            continue;
        };
        if seen.running.is_empty() {
            draft.note(
                NoteKind::Warning,
                Some(&s.name),
                format!(
                    "`{}` reaches stack `{t}`, which is not applied and whose project {} does not run as {}: nothing answers until it runs (`isolate apply --stack {t}` publishes its port; or start her project and apply `{}` again, which publishes it from her containers)",
                    s.name, run.project, user.name, s.name
                ),
            );
            continue;
        }
        let published: Vec<(String, u16, u16, Vec<String>)> = all
            .iter()
            .filter(|(_, (r, _))| r.stack == t)
            .map(|(k, (r, who))| (r.service.clone(), r.port, ports[k], who.clone()))
            .collect();
        let text = render(t, &user.name, &published);
        let done = facts.legacy_record.targets.get(t).is_some_and(|rec| {
            rec.text == text && rec.run == run && rec.reached_by.contains(&s.name)
        });
        if done {
            draft.present(
                Some(&s.name),
                format!(
                    "legacy publish of {t} for {} ({}'s project {} runs with {})",
                    s.name,
                    user.name,
                    run.project,
                    override_file(t).display()
                ),
            );
            continue;
        }
        draft.step(Step::ReachLegacy(LegacyStep::Publish {
            stack: s.name.clone(),
            target: t.to_string(),
            run,
            path: override_file(t),
            text,
        }));
    }
}

/// The target's side, when it moves now: a legacy publish made for it is forgotten (refused
/// while her containers of the project still run: they hold the host port its own unit
/// publishes); and what reaching stacks still run as the legacy user lose, said plainly.
/// Returns the warnings for the target's reach step.
pub fn plan_target(draft: &mut Draft, ctx: &StackCtx<'_>) -> Vec<String> {
    let s = ctx.stack;
    let facts = &ctx.obs.reach;
    if let Some(rec) = facts.legacy_record.targets.get(&s.name) {
        let running: Vec<&str> = ctx
            .obs
            .handoff
            .get(&s.name)
            .and_then(|h| h.legacy.as_ref())
            .map(|l| {
                l.containers
                    .iter()
                    .filter(|c| c.state == "running")
                    .map(|c| c.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if !running.is_empty() {
            draft.refusals.push(RefusalKind::Reach, format!(
                "stack `{}`: {}'s containers of project {} ({}) still run, publishing its port on the host's loopback for {} (isolate's legacy publish), where the stack's own unit publishes it now: stop them first (`runuser -u {} -- podman stop {}`)",
                s.name,
                rec.run.user,
                rec.run.project,
                running.join(", "),
                rec.reached_by.iter().cloned().collect::<Vec<_>>().join(", "),
                rec.run.user,
                running.join(" ")
            ));
        } else {
            draft.step(Step::ReachLegacy(LegacyStep::Forget {
                stack: s.name.clone(),
                path: override_file(&s.name),
                user: rec.run.user.clone(),
                project: rec.run.project.clone(),
                reached_by: rec.reached_by.iter().cloned().collect(),
            }));
        }
    }
    let Some(user) = legacy_user(ctx) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (key, (r, who)) in targets(ctx.policy) {
        if r.stack != s.name {
            continue;
        }
        for w in who {
            if selected(ctx, &w) || moved(ctx, &w) {
                continue;
            }
            warnings.push(format!(
                "`{w}` reaches {key} and still runs as {}: her containers cannot reach the host's loopback, where {} answers from now on (her rootless network namespace was made without host-loopback access, and giving it needs all her containers stopped), so `{w}` loses this path until `isolate apply --stack {w}`. Applying the reaching stack first keeps the path at every step: its apply publishes the port of a target still run by {} from her own containers",
                user.name, s.name, user.name
            ));
        }
    }
    warnings
}
