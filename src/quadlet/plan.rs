//! The quadlet planner: pure, from the stack's quadlet files as observed to the steps that
//! retire the legacy owner's units and install the stack user's, plus the podman volumes the
//! hand-off moves (`systemd-NAME`) and refusals for a stack whose files do not hang together.
use super::place;
use super::rewrite::{self, Change, Origin};
use super::unit::{QuadletFile, QuadletKind};
use crate::model::{Note, NoteKind, Planned};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// One quadlet file the policy names, as observation found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceFacts {
    /// The path the policy names (in the legacy owner's quadlet directory).
    pub path: PathBuf,
    /// Its text there (None: no such file, e.g. parked by an earlier apply).
    pub text: Option<String>,
    /// Its text in the parked directory (None: not parked).
    pub parked: Option<String>,
}

/// What observation found for one stack's quadlets (plain data; tests build it by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QuadletFacts {
    /// podman's version, when known.
    pub podman: Option<(u32, u32)>,
    pub sources: Vec<SourceFacts>,
    /// Files in the stack user's quadlet directory: name -> text.
    pub installed: BTreeMap<String, String>,
    /// Units active in the stack user's manager.
    pub active: BTreeSet<String>,
    /// Units active in the legacy owner's manager.
    pub legacy_active: BTreeSet<String>,
}

/// Who the stack moves from and to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    pub stack: String,
    pub user: String,
    pub uid: u32,
    pub home: PathBuf,
    /// The legacy owner (`root` for rootful units) and her uid and home.
    pub legacy_user: String,
    pub legacy_uid: u32,
    pub legacy_home: PathBuf,
}

/// One file written into the stack user's quadlet directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallFile {
    pub name: String,
    pub text: String,
    pub changes: Vec<Change>,
}

/// One quadlet step of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "quadlet", rename_all = "snake_case")]
pub enum QuadletStep {
    /// The legacy owner's units are stopped, their files moved to `parked` and her manager
    /// reloaded: the generator makes none of them again, so a reboot starts one copy only.
    RetireLegacy {
        stack: String,
        user: String,
        uid: u32,
        files: Vec<PathBuf>,
        parked: PathBuf,
        units: Vec<String>,
    },
    /// The files are written (root-owned, 0644) into the stack user's quadlet directory, its
    /// manager reloaded (the generator runs) and the units started.
    Install {
        stack: String,
        user: String,
        uid: u32,
        dir: PathBuf,
        files: Vec<InstallFile>,
        units: Vec<String>,
    },
}

impl QuadletStep {
    pub fn stack(&self) -> &str {
        match self {
            QuadletStep::RetireLegacy { stack, .. } | QuadletStep::Install { stack, .. } => stack,
        }
    }
}

impl fmt::Display for QuadletStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuadletStep::RetireLegacy {
                stack,
                user,
                files,
                parked,
                units,
                ..
            } => write!(
                f,
                "~ quadlets of {stack}: stop {user}'s units {}, move the {} quadlet files to {} and reload {user}'s manager (a reboot starts none of them)",
                units.join(", "),
                files.len(),
                parked.display()
            ),
            QuadletStep::Install {
                stack,
                user,
                dir,
                files,
                units,
                ..
            } => {
                let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                write!(
                    f,
                    "+ quadlets of {stack}: {} into {} for {user}, reload its manager, start {}",
                    names.join(", "),
                    dir.display(),
                    units.join(", ")
                )?;
                let changed: Vec<String> = files
                    .iter()
                    .filter(|x| !x.changes.is_empty())
                    .map(|x| {
                        let lines: Vec<String> =
                            x.changes.iter().map(|c| c.line.to_string()).collect();
                        format!("{} line {}", x.name, lines.join(", "))
                    })
                    .collect();
                if !changed.is_empty() {
                    write!(f, " (rewritten: {})", changed.join("; "))?;
                }
                Ok(())
            }
        }
    }
}

/// The stack's quadlet files as they were before the move (from their place, or parked).
pub fn files_of(facts: &QuadletFacts) -> Vec<QuadletFile> {
    facts
        .sources
        .iter()
        .filter_map(|s| {
            let name = s.path.file_name()?.to_str()?;
            let text = s.text.as_ref().or(s.parked.as_ref())?;
            QuadletFile::new(name, text)
        })
        .collect()
}

/// The podman volumes the stack's `.volume` files create: the hand-off moves them like any
/// named volume.
pub fn volumes(files: &[QuadletFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.kind == QuadletKind::Volume)
        .filter_map(QuadletFile::podman_name)
        .collect()
}

/// The units apply starts in the stack user's manager (pods, containers, kube), in file order.
pub fn units_to_start(files: &[QuadletFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                QuadletKind::Pod | QuadletKind::Container | QuadletKind::Kube
            )
        })
        .map(QuadletFile::service_name)
        .collect()
}

/// Why the stack's quadlet files cannot move as they are (nothing is planned then).
fn problems(stack: &str, facts: &QuadletFacts, files: &[QuadletFile]) -> Vec<String> {
    let mut out = Vec::new();
    for s in &facts.sources {
        let shown = s.path.display();
        if let Some(why) = place::source_problem(&s.path) {
            out.push(format!("quadlet file {shown} of stack `{stack}`: {why}"));
        } else if s.text.is_none() && s.parked.is_none() {
            out.push(format!(
                "quadlet file {shown} of stack `{stack}` does not exist (and isolate parked no copy of it)"
            ));
        }
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            out.push(format!(
                "stack `{stack}` names two quadlet files called {n}; one directory holds them all"
            ));
        }
    }
    for f in files {
        for r in f.references() {
            if !names.contains(&r.file.as_str()) {
                out.push(format!(
                    "quadlet file {} of stack `{stack}` names {}={}, which is not among the stack's `quadlets`",
                    f.name, r.key, r.file
                ));
            }
        }
    }
    out
}

/// The refusal of a stack that names `quadlets` while apply cannot carry out the quadlet steps
/// yet (observation, the executor and rollback are still to come): moving only its data and
/// volumes would leave the legacy owner's units enabled, and a reboot would start both copies.
pub fn not_carried_out(s: &crate::policy::StackPolicy) -> Option<String> {
    (!s.handoff.quadlets.is_empty()).then(|| {
        format!(
            "stack `{}`: names `quadlets`, whose move (the legacy owner's units parked, the stack user's installed and started) this isolate cannot carry out yet; moving only its data would leave the legacy units enabled, so a reboot would start both copies",
            s.name
        )
    })
}

/// Appends the stack's quadlet steps and notes; refusals go to `refusals`.
pub fn plan_stack(
    out: &mut Planned<QuadletStep>,
    refusals: &mut Vec<String>,
    sides: &Sides,
    facts: &QuadletFacts,
) {
    let files = files_of(facts);
    let found = problems(&sides.stack, facts, &files);
    if !found.is_empty() {
        refusals.extend(found);
        return;
    }
    let units = units_to_start(&files);
    let parked = place::parked_dir(&sides.stack);
    let in_place: Vec<PathBuf> = facts
        .sources
        .iter()
        .filter(|s| s.text.is_some())
        .map(|s| s.path.clone())
        .collect();
    if !in_place.is_empty() {
        out.steps.push(QuadletStep::RetireLegacy {
            stack: sides.stack.clone(),
            user: sides.legacy_user.clone(),
            uid: sides.legacy_uid,
            files: in_place,
            parked: parked.clone(),
            units: units.clone(),
        });
    }
    let origin = Origin {
        home: sides.legacy_home.display().to_string(),
    };
    let dir = place::stack_dir(facts.podman, sides.uid, &sides.home);
    let install: Vec<InstallFile> = files
        .iter()
        .map(|f| {
            let r = rewrite::for_stack(f, &origin);
            InstallFile {
                name: f.name.clone(),
                text: r.text,
                changes: r.changes,
            }
        })
        .collect();
    let written = install
        .iter()
        .all(|f| facts.installed.get(&f.name) == Some(&f.text));
    let running = units.iter().all(|u| facts.active.contains(u));
    if written && running && out.steps.is_empty() {
        out.notes.push(Note {
            kind: NoteKind::Present,
            stack: Some(sides.stack.clone()),
            message: format!(
                "quadlets of {} in {}, units active; {}'s are parked in {}",
                sides.stack,
                dir.display(),
                sides.legacy_user,
                parked.display()
            ),
        });
        return;
    }
    out.steps.push(QuadletStep::Install {
        stack: sides.stack.clone(),
        user: sides.user.clone(),
        uid: sides.uid,
        dir,
        files: install,
        units,
    });
}
