//! The limits step of one stack: the drop-in to write (with the diff of its `[Slice]` lines
//! against the one found) or to remove, and the notes that say when a limit cannot act (cgroup
//! v1, io not delegated, no systemd) or belongs to NixOS's configuration instead.
use super::dropin;
use super::observe::Facts;
use crate::model::{Note, NoteKind, Planned, Selection};
use crate::policy::StackPolicy;
use crate::state::Allocation;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// One `[Slice]` line as it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum LineChange {
    Add { line: String },
    Change { old: String, new: String },
    Remove { line: String },
}

impl fmt::Display for LineChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineChange::Add { line } => write!(f, "+ {line}"),
            LineChange::Change { old, new } => write!(f, "{old} -> {new}"),
            LineChange::Remove { line } => write!(f, "- {line}"),
        }
    }
}

/// Write (`text` Some) or remove (None) the stack's slice drop-in, then daemon-reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitsStep {
    pub stack: String,
    pub uid: u32,
    /// `/etc/systemd/system/user-UID.slice.d/50-isolate.conf`.
    pub path: PathBuf,
    /// The drop-in's text as apply writes it; None: the drop-in goes.
    pub text: Option<String>,
    /// Its `[Slice]` lines against the ones found.
    pub diff: Vec<LineChange>,
}

impl fmt::Display for LimitsStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = crate::model::escape::path(&self.path);
        let slice = format!("user-{}.slice", self.uid);
        match &self.text {
            None => write!(
                f,
                "- limits of stack {}: remove {path}, daemon-reload ({slice} keeps running, unlimited)",
                self.stack
            )?,
            Some(_) if self.diff.iter().all(|c| matches!(c, LineChange::Add { .. })) => write!(
                f,
                "+ limits of stack {}: write {path}, daemon-reload ({slice} keeps running)",
                self.stack
            )?,
            Some(_) => write!(
                f,
                "~ limits of stack {}: rewrite {path}, daemon-reload ({slice} keeps running)",
                self.stack
            )?,
        }
        for change in &self.diff {
            write!(f, "\n    {change}")?;
        }
        Ok(())
    }
}

/// The changes from the lines found to the lines wanted, by setting name, in name order.
pub fn diff(found: &[String], wanted: &[String]) -> Vec<LineChange> {
    let name = |l: &str| l.split_once('=').map_or(l, |(k, _)| k).trim().to_string();
    let found: std::collections::BTreeMap<String, &String> =
        found.iter().map(|l| (name(l), l)).collect();
    let wanted: std::collections::BTreeMap<String, &String> =
        wanted.iter().map(|l| (name(l), l)).collect();
    let mut names: Vec<&String> = found.keys().chain(wanted.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| match (found.get(n), wanted.get(n)) {
            (None, Some(w)) => Some(LineChange::Add {
                line: w.to_string(),
            }),
            (Some(o), None) => Some(LineChange::Remove {
                line: o.to_string(),
            }),
            (Some(o), Some(w)) if o != w => Some(LineChange::Change {
                old: o.to_string(),
                new: w.to_string(),
            }),
            _ => None,
        })
        .collect()
}

/// What the host needs for the stack's limits.
pub struct Seen<'a> {
    pub facts: &'a Facts,
    /// `/etc/NIXOS` under the root: the slice is NixOS's to declare (`export nixos`).
    pub nixos: bool,
}

fn note(planned: &mut Planned<LimitsStep>, kind: NoteKind, stack: &str, message: String) {
    planned.notes.push(Note {
        kind,
        stack: Some(stack.to_string()),
        message,
    });
}

/// Plans the stack's drop-in; a drop-in someone else wrote at isolate's place is a refusal.
pub fn plan_stack(
    planned: &mut Planned<LimitsStep>,
    refusals: &mut Vec<String>,
    stack: &StackPolicy,
    allocation: &Allocation,
    seen: &Seen<'_>,
    opts: &Selection,
) {
    let name = stack.name.as_str();
    let uid = allocation.uid;
    let settings = dropin::settings(&stack.limits);
    let wanted = dropin::lines(&settings);
    let slice = format!("user-{uid}.slice");
    if seen.nixos {
        if !wanted.is_empty() {
            note(
                planned,
                NoteKind::Skipped,
                name,
                format!(
                    "limits of stack {name} are NixOS's to declare: `isolate export nixos` declares them as systemd.slices.\"user-{uid}\".sliceConfig ({}); import it and nixos-rebuild, no drop-in is written",
                    wanted.join(" ")
                ),
            );
        }
        return;
    }
    let path = dropin::path(uid);
    let shown = crate::model::escape::path(&path);
    let found = seen.facts.dropins.get(name).and_then(|d| d.text.as_deref());
    if let Some(text) = found {
        if !dropin::is_isolates(text) {
            refusals.push(
                super::error::LimitsError::NotIsolates {
                    stack: name.to_string(),
                    path: path.clone(),
                }
                .to_string(),
            );
            return;
        }
    }
    let text = (!wanted.is_empty()).then(|| dropin::render(name, &settings));
    let changes = diff(&found.map(dropin::found_lines).unwrap_or_default(), &wanted);
    match (&text, found) {
        (None, None) => return,
        (Some(t), Some(f)) if t == f => note(
            planned,
            NoteKind::Present,
            name,
            format!(
                "limits of stack {name}: {shown} as the policy says ({})",
                wanted.join(" ")
            ),
        ),
        _ => planned.steps.push(LimitsStep {
            stack: name.to_string(),
            uid,
            path,
            text: text.clone(),
            diff: changes,
        }),
    }
    if text.is_none() {
        return;
    }
    if !opts.systemd {
        note(
            planned,
            NoteKind::Warning,
            name,
            format!("limits of stack {name}: with --no-systemd the drop-in is written but not loaded; it acts after `systemctl daemon-reload` or a reboot"),
        );
    }
    let l = &stack.limits;
    if !seen.facts.cgroup_v2 {
        let keys: Vec<&str> = [
            ("memory_max", l.memory_max.is_some()),
            ("memory_high", l.memory_high.is_some()),
            ("memory_swap_max", l.memory_swap_max.is_some()),
            ("cpu_weight", l.cpu_weight.is_some()),
            ("cpu_quota", l.cpu_quota.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if !keys.is_empty() {
            note(
                planned,
                NoteKind::Warning,
                name,
                format!(
                    "limits of stack {name}: this host runs cgroup v1 (no {}): {} of {slice} may not act; they are written anyway and act on the unified hierarchy (cgroup v2)",
                    super::observe::CGROUP_V2_MARK,
                    keys.join(", ")
                ),
            );
        }
    }
    if l.io_weight.is_some() {
        note(
            planned,
            NoteKind::Warning,
            name,
            format!(
                "limits of stack {name}: io_weight weighs {slice} against the other slices only; user@.service delegates pids, memory and cpu to the user manager, not io, so it has no effect among the stack's own containers"
            ),
        );
    }
}
