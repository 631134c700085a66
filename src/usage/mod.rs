//! What each stack uses, read without changing anything: its slice's cgroup v2 files (memory,
//! CPU, tasks, OOM kills, I/O; `cgroup`) and its disk, counted per stack through the mappings
//! (`disk`, the data walk's owner rows and a walk of the stack's podman store). The audit
//! renders both as metrics and `status` shows the cgroup part.
pub mod cgroup;
pub mod disk;
