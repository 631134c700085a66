//! What each stack uses, as Prometheus families beside the audit's: the slice's cgroup files
//! (`isolate_stack_*` gauges and `_total` counters, base units) and the disk per stack and
//! tree. Labels: `stack` as in the audit's families, `tree` (data, share, store) and `device`
//! (MAJOR:MINOR) — bounded. A value that could not be read has no sample (never a zero);
//! `isolate_stack_cgroup_available` says whether the slice could be read at all.
use super::prometheus::{labels, Family};
use crate::usage::cgroup::Limit;
use crate::usage::disk::StackDisk;
use crate::usage::{StackUsage, Usage};

/// A limit file's value: `max` is no limit, +Inf in the exposition format.
fn limit(l: Limit) -> String {
    match l {
        Limit::Max => "+Inf".to_string(),
        Limit::Value(v) => v.to_string(),
    }
}

type Pick = fn(&StackUsage) -> Option<String>;

/// The cgroup families, one per file value: (name, help, counter, value).
const SLICE: &[(&str, &str, bool, Pick)] = &[
    (
        "isolate_stack_memory_bytes",
        "Memory the stack's slice uses now (memory.current of user-UID.slice).",
        false,
        |u| u.slice.memory_bytes.map(|v| v.to_string()),
    ),
    (
        "isolate_stack_memory_max_bytes",
        "The slice's memory limit (memory.max; +Inf when none).",
        false,
        |u| u.slice.memory_max_bytes.map(limit),
    ),
    (
        "isolate_stack_oom_kills_total",
        "Processes of the stack the kernel's OOM killer killed (memory.events oom_kill).",
        true,
        |u| u.slice.oom_kills.map(|v| v.to_string()),
    ),
    (
        "isolate_stack_cpu_seconds_total",
        "CPU time the stack's processes used (cpu.stat usage_usec).",
        true,
        |u| u.slice.cpu_seconds().map(|v| format!("{v:.6}")),
    ),
    (
        "isolate_stack_tasks",
        "Tasks (processes and threads) of the stack now (pids.current).",
        false,
        |u| u.slice.tasks.map(|v| v.to_string()),
    ),
    (
        "isolate_stack_tasks_max",
        "The slice's task limit (pids.max; +Inf when none).",
        false,
        |u| u.slice.tasks_max.map(limit),
    ),
];

/// The slice families of every stack in `usage`, and when they were read.
pub fn usage(usage: &Usage, out: &mut String) {
    let mut f = Family::gauge(
        out,
        "isolate_stack_cgroup_available",
        "Whether the stack's slice could be read (1) or not (0: cgroup v1, or no process of the stack runs).",
    );
    for u in &usage.stacks {
        let l = labels(&[("stack", u.stack.as_str())]);
        f.sample(
            "isolate_stack_cgroup_available",
            &l,
            u8::from(u.slice.unavailable.is_none()),
        );
    }
    for (name, help, counter, pick) in SLICE {
        let mut f = if *counter {
            Family::counter(out, name, help)
        } else {
            Family::gauge(out, name, help)
        };
        for u in &usage.stacks {
            if let Some(v) = pick(u) {
                f.sample(name, &labels(&[("stack", u.stack.as_str())]), v);
            }
        }
    }
    for (name, help, read) in [
        (
            "isolate_stack_io_read_bytes_total",
            "Bytes the stack's processes read from a block device (io.stat rbytes; only where the io controller is enabled).",
            true,
        ),
        (
            "isolate_stack_io_written_bytes_total",
            "Bytes the stack's processes wrote to a block device (io.stat wbytes; only where the io controller is enabled).",
            false,
        ),
    ] {
        let mut f = Family::counter(out, name, help);
        for u in &usage.stacks {
            for d in u.slice.io.iter().flatten() {
                let l = labels(&[("stack", u.stack.as_str()), ("device", d.device.as_str())]);
                f.sample(name, &l, if read { d.read_bytes } else { d.written_bytes });
            }
        }
    }
    Family::gauge(
        out,
        "isolate_usage_last_read_timestamp_seconds",
        "Unix time the slices' cgroup files were last read.",
    )
    .sample(
        "isolate_usage_last_read_timestamp_seconds",
        "",
        format!("{:.3}", usage.read_at),
    );
}

/// Disk use per stack and tree (data paths, shares, the podman store), from the audit's walk.
pub fn disk(disk: &[StackDisk], out: &mut String) {
    for (name, help, bytes) in [
        (
            "isolate_stack_disk_bytes",
            "Bytes of regular files whose owner uid is in the stack's mapping, per tree (data, share, store).",
            true,
        ),
        (
            "isolate_stack_disk_inodes",
            "Inodes whose owner uid is in the stack's mapping, per tree (data, share, store).",
            false,
        ),
    ] {
        let mut f = Family::gauge(out, name, help);
        for d in disk {
            let l = labels(&[("stack", d.stack.as_str()), ("tree", d.tree.name())]);
            f.sample(name, &l, if bytes { d.bytes } else { d.inodes });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
