//! What each stack uses, as text: one line per stack for `status` and `audit --only usage`
//! (memory and its limit, CPU seconds, tasks and their limit, OOM kills), and the disk per
//! stack and tree for the audit. A value that could not be read says so, never a zero.
use super::audit_text::bytes;
use crate::model::escape;
use crate::usage::cgroup::{Limit, SliceUsage};
use crate::usage::disk::StackDisk;
use crate::usage::Usage;
use std::fmt::Write;

fn or_unavailable<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "unavailable".to_string(), show)
}

fn limit(l: Option<Limit>, show: impl Fn(u64) -> String) -> String {
    match l {
        None => String::new(),
        Some(Limit::Max) => " (no limit)".to_string(),
        Some(Limit::Value(v)) => format!(" of {}", show(v)),
    }
}

/// `memory 50.0 MiB of 64.0 MiB, CPU 2.35 s, tasks 7 (no limit), OOM kills 1`.
pub fn slice_line(u: &SliceUsage) -> String {
    if let Some(why) = &u.unavailable {
        return format!("usage unavailable: {}", escape::text(why));
    }
    format!(
        "memory {}{}, CPU {}, tasks {}{}, OOM kills {}",
        or_unavailable(u.memory_bytes, bytes),
        limit(u.memory_max_bytes, bytes),
        or_unavailable(u.cpu_seconds(), |s| format!("{s:.2} s")),
        or_unavailable(u.tasks, |t| t.to_string()),
        limit(u.tasks_max, |t| t.to_string()),
        or_unavailable(u.oom_kills, |k| k.to_string()),
    )
}

/// `audit --only usage` as text.
pub fn render(usage: &Usage) -> String {
    let mut out = String::new();
    for s in &usage.stacks {
        let _ = writeln!(
            out,
            "{} (uid {}): {}",
            escape::text(&s.stack),
            s.uid,
            slice_line(&s.slice)
        );
        for p in &s.slice.unreadable {
            let _ = writeln!(out, "  unreadable: {}", escape::text(p));
        }
    }
    if usage.stacks.is_empty() {
        let _ = writeln!(out, "no recorded stack selected");
    }
    out
}

/// The audit's DISK section.
pub fn disk(out: &mut String, disk: &[StackDisk]) {
    let _ = writeln!(
        out,
        "\nDISK (per stack, by the owner uid's mapping; store: podman's under the stack's home)"
    );
    if disk.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for d in disk {
        let _ = writeln!(
            out,
            "  {:<16} {:<6} {:>10} inodes  {:>10}",
            escape::text(&d.stack),
            d.tree.name(),
            d.inodes,
            bytes(d.bytes)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_what_is_read_and_what_is_not() {
        let usage = crate::render::prometheus_usage::tests::sample_usage();
        assert_eq!(
            slice_line(&usage.stacks[0].slice),
            "memory 50.0 MiB (no limit), CPU 2.35 s, tasks 7 of 512, OOM kills 1"
        );
        assert_eq!(
            slice_line(&usage.stacks[1].slice),
            "usage unavailable: no cgroup v2"
        );
        let partial = SliceUsage {
            memory_bytes: Some(1024),
            ..SliceUsage::default()
        };
        assert_eq!(
            slice_line(&partial),
            "memory 1.0 KiB, CPU unavailable, tasks unavailable, OOM kills unavailable"
        );
        let text = render(&usage);
        assert!(
            text.contains("paperless (uid 802): usage unavailable"),
            "{text}"
        );
    }
}
