//! What each stack uses, read without changing anything: its slice's cgroup v2 files (memory,
//! CPU, tasks, OOM kills, I/O; `cgroup`) and its disk, counted per stack through the mappings
//! (`disk`, the data walk's owner rows and a walk of the stack's podman store). The audit
//! renders both as metrics and `status` shows the cgroup part.
pub mod cgroup;
pub mod disk;

use crate::layout::Root;
use serde::Serialize;

/// One stack's slice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackUsage {
    pub stack: String,
    pub uid: u32,
    #[serde(flatten)]
    pub slice: cgroup::SliceUsage,
}

/// Every selected stack's slice, read at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Usage {
    /// Unix time (seconds) the files were read.
    pub read_at: f64,
    pub stacks: Vec<StackUsage>,
}

/// Reads the slice of each `(stack, uid)`: only stacks whose user exists (recorded by
/// apply), since a planned uid may still be someone else's.
pub fn read(root: &Root, stacks: &[(String, u32)]) -> Usage {
    let stacks = stacks
        .iter()
        .map(|(stack, uid)| StackUsage {
            stack: stack.clone(),
            uid: *uid,
            slice: cgroup::read(root, *uid),
        })
        .collect();
    let read_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Usage { read_at, stacks }
}
