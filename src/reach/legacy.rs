//! A reaching stack that moves before its target: the target still runs as the legacy user,
//! on her podman network, where nothing of another user reaches it. Giving HER containers the
//! host's loopback would need all of them stopped (the rootless network namespace of her
//! bridge networks is made once, with or without it), but publishing a port needs nothing of
//! the kind. So the reaching stack's apply re-ups the target's compose project as the legacy
//! user with one more `-f` file that publishes the reached port on 127.0.0.1 (the host port
//! the target's own override will use later), and the moved stack reaches it there. The
//! target's own apply forgets it; `rollback --stack` of the reaching stack re-ups her project
//! without it. The other order (the target first) cannot keep the path: plan says so. This
//! file holds the paths, the record and the step; plan/reach_legacy.rs plans them,
//! legacy_run.rs carries them out.
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
