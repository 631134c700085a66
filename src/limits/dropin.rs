//! The drop-in `/etc/systemd/system/user-UID.slice.d/50-isolate.conf`: its place, the `[Slice]`
//! lines a stack's limits give (in name order, as NixOS renders `sliceConfig`), its text with a
//! header saying isolate wrote it, and the lines of one found on the host.
use super::schema::{StackLimits, Tasks};
use std::path::PathBuf;

/// The first words of every drop-in isolate writes: one that lacks them is not isolate's.
pub const HEADER_START: &str = "# Written by isolate";

/// `/etc/systemd/system/user-UID.slice.d`.
pub fn dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/etc/systemd/system/user-{uid}.slice.d"))
}

/// `/etc/systemd/system/user-UID.slice.d/50-isolate.conf`.
/// The slice every process of the stack user runs below.
pub fn slice(uid: u32) -> String {
    format!("user-{uid}.slice")
}

pub fn path(uid: u32) -> PathBuf {
    dir(uid).join("50-isolate.conf")
}

/// The `[Slice]` settings (name, value) of the limits, sorted by name; empty when none is set.
pub fn settings(l: &StackLimits) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(q) = &l.cpu_quota {
        out.push(("CPUQuota", format!("{}%", q.value)));
    }
    if let Some(w) = &l.cpu_weight {
        out.push(("CPUWeight", w.value.to_string()));
    }
    if let Some(w) = &l.io_weight {
        out.push(("IOWeight", w.value.to_string()));
    }
    if let Some(s) = &l.memory_high {
        out.push(("MemoryHigh", s.value.text.clone()));
    }
    if let Some(s) = &l.memory_max {
        out.push(("MemoryMax", s.value.text.clone()));
    }
    if let Some(s) = &l.memory_swap_max {
        out.push(("MemorySwapMax", s.value.text.clone()));
    }
    if let Some(t) = &l.tasks_max {
        let value = match t.value {
            Tasks::Count(n) => n.to_string(),
            Tasks::Infinity => "infinity".to_string(),
        };
        out.push(("TasksMax", value));
    }
    out
}

/// `Name=value` lines of the settings.
pub fn lines(settings: &[(&str, String)]) -> Vec<String> {
    settings.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The drop-in's whole text for `stack`.
pub fn render(stack: &str, settings: &[(&str, String)]) -> String {
    let mut text = format!(
        "{HEADER_START} from [stacks.{stack}.limits] of its policy: `isolate apply` rewrites it,\n\
         # `isolate rollback --stack {stack}` removes it. Edit the policy, not this file.\n[Slice]\n"
    );
    for line in lines(settings) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Whether a drop-in found on the host is one isolate wrote.
pub fn is_isolates(text: &str) -> bool {
    text.starts_with(HEADER_START)
}

/// The setting lines of a drop-in's text (no comments, blanks or section headers).
pub fn found_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter(|l| !l.starts_with('['))
        .map(str::to_string)
        .collect()
}
