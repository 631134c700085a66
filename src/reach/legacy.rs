//! A reaching stack that moves before its target: the target still runs as the legacy user,
//! on her podman network, where nothing of another user reaches it. Giving HER containers the
//! host's loopback would need all of them stopped (the rootless network namespace of her
//! bridge networks is made once, with or without it), but publishing a port needs nothing of
//! the kind. So the reaching stack's apply re-ups the target's compose project as the legacy
//! user with one more `-f` file that publishes the reached port on 127.0.0.1 (the host port
//! the target's own override will use later), and the moved stack reaches it there. The
//! target's own apply forgets it; `rollback --stack` of the reaching stack re-ups her project
//! without it. The other order (the target first) cannot keep the path: plan says so.
use super::targets;
use crate::plan::{NoteKind, StackCtx};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// isolate's directory of the files the legacy user's compose reads (root's, 0755).
pub fn dir() -> PathBuf {
    Path::new(crate::layout::STATE_DIR).join("reach-legacy")
}

/// The override the legacy user's compose of `stack`'s project gets (root's, 0644).
pub fn override_file(stack: &str) -> PathBuf {
    dir().join(format!("{stack}.compose.yaml"))
}

/// What isolate re-upped as the legacy user, per target stack: kept until the target moves or
/// the last reaching stack that asked for it is rolled back.
pub fn record_path() -> PathBuf {
    Path::new(crate::layout::STATE_DIR).join("reach-legacy.json")
}

/// How the legacy user's project of a target is run: enough to run it again without the
/// override (rollback reads no policy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRun {
    pub user: String,
    pub uid: u32,
    pub project: String,
    /// The compose command's words (`podman-compose` unless the policy names another).
    pub command: Vec<String>,
    /// The target's compose files, the legacy user's originals.
    pub compose: Vec<PathBuf>,
    /// The target's env files (compose interpolates with them, as the stack's unit does).
    pub env_files: Vec<PathBuf>,
}

impl LegacyRun {
    /// The compose command line, with the override as the last `-f` when given.
    pub fn argv(&self, with: Option<&Path>) -> Vec<String> {
        let mut argv = self.command.clone();
        argv.extend(["-p".to_string(), self.project.clone()]);
        for c in self.compose.iter().map(|p| p.as_path()).chain(with) {
            argv.push("-f".into());
            argv.push(c.display().to_string());
        }
        argv.extend(["up", "-d", "--force-recreate"].map(String::from));
        argv
    }

    /// Where compose runs: the first compose file's directory (relative paths in the files
    /// are relative to it).
    pub fn workdir(&self) -> PathBuf {
        self.compose
            .first()
            .and_then(|c| c.parent())
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    }
}

/// One target's legacy publish as made: its text and who asked for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRecord {
    pub run: LegacyRun,
    pub text: String,
    /// The moved stacks that reach the target through it.
    pub reached_by: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRecords {
    pub targets: BTreeMap<String, LegacyRecord>,
}

/// What observation saw of a target still run by the legacy user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LegacyTarget {
    /// Her running containers of the target's project.
    pub running: Vec<String>,
}

/// A change to a target still run by the legacy user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "legacy", rename_all = "snake_case")]
pub enum LegacyStep {
    /// Writes the override and re-ups her project of `target` with it (a reaching stack's
    /// step: `stack` reaches `target`).
    Publish {
        stack: String,
        target: String,
        run: LegacyRun,
        path: PathBuf,
        text: String,
    },
    /// The target moves now and publishes its own port: the legacy override and its record
    /// go (her containers are stopped; isolate never deletes them).
    Forget {
        stack: String,
        path: PathBuf,
        user: String,
        project: String,
        reached_by: Vec<String>,
    },
}

impl LegacyStep {
    pub fn stack(&self) -> &str {
        match self {
            LegacyStep::Publish { stack, .. } | LegacyStep::Forget { stack, .. } => stack,
        }
    }
}

impl fmt::Display for LegacyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LegacyStep::Publish {
                stack,
                target,
                run,
                path,
                text,
            } => {
                write!(
                    f,
                    "~ legacy publish of {target} for {stack}: {target} still runs as {}, so its compose project {} is re-upped as {} with {} (its containers are recreated), until `isolate apply --stack {target}`:\n    $ {}",
                    run.user,
                    run.project,
                    run.user,
                    path.display(),
                    run.argv(Some(path)).join(" ")
                )?;
                for line in text.lines() {
                    write!(f, "\n    | {line}")?;
                }
                Ok(())
            }
            LegacyStep::Forget {
                stack,
                path,
                user,
                project,
                reached_by,
            } => write!(
                f,
                "- legacy publish {} of {stack} (for {}): its own override publishes the port now; {user}'s stopped containers of project {project} still carry it (isolate never deletes them)",
                path.display(),
                reached_by.join(", ")
            ),
        }
    }
}

/// The override of the legacy user's project: each reached service's port on 127.0.0.1, on
/// the host port the target's own override uses (nothing else: her networks stay hers).
pub fn render(target: &str, user: &str, published: &[(String, u16, u16, Vec<String>)]) -> String {
    let mut by_service: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (svc, port, host, who) in published {
        by_service.entry(svc).or_default().push(format!(
            "      - {}  # reached by {}",
            super::yaml_str(&format!("127.0.0.1:{host}:{port}")),
            who.join(", ")
        ));
    }
    let mut o = format!(
        "# Written by isolate: stack {target} still runs as {user}, and stacks that moved reach it\n\
         # on the host's loopback. isolate re-ups {user}'s project with this file until\n\
         # `isolate apply --stack {target}`; do not edit.\nservices:\n"
    );
    for (svc, lines) in by_service {
        o.push_str(&format!("  {}:\n    ports:\n", super::yaml_str(svc)));
        for l in lines {
            o.push_str(&l);
            o.push('\n');
        }
    }
    o
}

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
pub fn plan_reacher(
    draft: &mut crate::plan::Draft,
    ctx: &StackCtx<'_>,
    ports: &BTreeMap<String, u16>,
) {
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
        draft.step(crate::plan::Step::ReachLegacy(LegacyStep::Publish {
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
pub fn plan_target(draft: &mut crate::plan::Draft, ctx: &StackCtx<'_>) -> Vec<String> {
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
            draft.refusals.push(format!(
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
            draft.step(crate::plan::Step::ReachLegacy(LegacyStep::Forget {
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
