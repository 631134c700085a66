//! What one command line does that matters to a stack: change owners or ACLs of paths
//! (`chown`, `chgrp`, `setfacl`; recursive or not), or run a compose project (`podman-compose`,
//! `docker-compose`, `podman compose`, `docker compose`; its `-f` files and `-p` name). Wrappers
//! are looked through: `sudo`, `doas`, `env`, `exec`, `nice`, `nohup`, `command`,
//! `podman unshare`, and `sh -c`/`bash -c` (their argument is read as a shell line).
use super::{StackView, Undo};
use std::path::{Path, PathBuf};

/// One command's effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The command as written (words joined by spaces).
    pub command: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Owners {
        targets: Vec<PathBuf>,
        recursive: bool,
    },
    Compose {
        files: Vec<PathBuf>,
        project: Option<String>,
    },
}

fn base(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

/// Calls `found` with every action of `words` (one command; `sh -c` may hold several).
pub fn actions_of(words: &[String], found: &mut dyn FnMut(Action)) {
    let mut w: &[String] = words;
    loop {
        let Some(first) = w.first() else { return };
        match base(first) {
            "sudo" | "doas" | "exec" | "nice" | "nohup" | "command" | "ionice" => {
                w = &w[1..];
                while w.first().is_some_and(|x| x.starts_with('-')) {
                    w = &w[1..];
                }
            }
            "env" => {
                w = &w[1..];
                while w
                    .first()
                    .is_some_and(|x| x.starts_with('-') || x.contains('='))
                {
                    w = &w[1..];
                }
            }
            "podman" if w.get(1).is_some_and(|x| x == "unshare") => w = &w[2..],
            "sh" | "bash" | "dash" | "ash" | "zsh" => {
                if let Some(i) = w.iter().position(|x| x == "-c" || x == "-ec" || x == "-ce") {
                    if let Some(script) = w.get(i + 1) {
                        for c in super::syntax::shell_commands(script) {
                            actions_of(&c, found);
                        }
                    }
                }
                return;
            }
            _ => break,
        }
    }
    let command = w.join(" ");
    let kind = match base(&w[0]) {
        "chown" | "chgrp" => owners(&w[1..], true, &[]),
        "setfacl" => owners(&w[1..], false, &["m", "M", "x", "X", "set", "set-file"]),
        "podman-compose" | "docker-compose" => compose(&w[1..]),
        "podman" | "docker" if w.get(1).is_some_and(|x| x == "compose") => compose(&w[2..]),
        _ => return,
    };
    found(Action { command, kind });
}

/// `chown`/`chgrp` (`spec_first`: the first operand is the owner, unless `--reference=`) and
/// `setfacl` (options in `with_arg` take the next word).
fn owners(args: &[String], spec_first: bool, with_arg: &[&str]) -> Kind {
    let mut recursive = false;
    let mut operands = Vec::new();
    let mut reference = false;
    let mut i = 0;
    let mut options_end = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if options_end || !a.starts_with('-') || a == "-" {
            operands.push(a.clone());
            continue;
        }
        if a == "--" {
            options_end = true;
        } else if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            recursive |= name == "recursive";
            reference |= name == "reference";
            if with_arg.contains(&name) && !long.contains('=') {
                i += 1;
            }
        } else {
            let cluster = &a[1..];
            recursive |= cluster.contains('R');
            if let Some(last) = cluster.chars().last() {
                if with_arg.contains(&last.to_string().as_str()) {
                    i += 1;
                }
            }
        }
    }
    if spec_first && !reference && !operands.is_empty() {
        operands.remove(0);
    }
    Kind::Owners {
        targets: operands.into_iter().map(PathBuf::from).collect(),
        recursive,
    }
}

fn compose(args: &[String]) -> Kind {
    let mut files = Vec::new();
    let mut project = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).cloned();
        match a {
            "-f" | "--file" => {
                files.extend(next.map(PathBuf::from));
                i += 1;
            }
            "-p" | "--project-name" => {
                project = next;
                i += 1;
            }
            _ => {
                if let Some(v) = a.strip_prefix("--file=") {
                    files.push(PathBuf::from(v));
                } else if let Some(v) = a.strip_prefix("--project-name=") {
                    project = Some(v.to_string());
                }
            }
        }
        i += 1;
    }
    Kind::Compose { files, project }
}

/// A path as written, without a trailing `/` or `.` components.
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

impl Action {
    /// What this action undoes of `stack`, run as `runs_as` with `workdir` as its directory.
    pub fn undoes(&self, stack: &StackView, runs_as: &str, workdir: Option<&Path>) -> Option<Undo> {
        match &self.kind {
            Kind::Owners { targets, recursive } => {
                for t in targets.iter().filter(|t| t.is_absolute()).map(|t| clean(t)) {
                    for d in &stack.data {
                        let d = clean(d);
                        if t.starts_with(&d) || (*recursive && d.starts_with(&t)) {
                            return Some(Undo::Chown { data: d });
                        }
                    }
                }
                None
            }
            Kind::Compose { files, project } => {
                if runs_as == stack.user || runs_as == stack.uid.to_string() {
                    return None;
                }
                let resolved: Vec<PathBuf> = files
                    .iter()
                    .map(|f| match workdir {
                        Some(w) if f.is_relative() => clean(&w.join(f)),
                        _ => clean(f),
                    })
                    .collect();
                let named = resolved
                    .iter()
                    .any(|f| stack.compose.iter().any(|c| clean(c) == *f));
                let by_project = project.as_deref() == Some(stack.project.as_str());
                let by_dir = files.is_empty()
                    && project.is_none()
                    && workdir.is_some_and(|w| {
                        stack
                            .compose
                            .iter()
                            .any(|c| c.parent().is_some_and(|p| clean(p) == clean(w)))
                    });
                (named || by_project || by_dir).then(|| Undo::Compose {
                    runs_as: runs_as.to_string(),
                })
            }
        }
    }
}
