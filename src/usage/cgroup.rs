//! A stack's slice as cgroup v2 reports it: every rootless process of stack user UID runs below
//! `/sys/fs/cgroup/user.slice/user-UID.slice`, so that one directory holds the whole stack.
//! Read below `--root` (tests use temp trees with the kernel's file formats). What cannot be
//! read is `None` with its reason, never a zero: a cgroup v1 host, a slice that does not exist
//! (the user manager is not running), a controller the slice has not enabled.
use crate::layout::Root;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where cgroup v2 is mounted; its `cgroup.controllers` file tells v2 from v1.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// The host path of stack user `uid`'s slice.
pub fn slice_dir(uid: u32) -> PathBuf {
    Path::new(CGROUP_MOUNT).join(format!("user.slice/user-{uid}.slice"))
}

/// A limit file's value: `max` (none) or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    #[serde(serialize_with = "max_text")]
    Max,
    Value(u64),
}

fn max_text<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("max")
}

/// One block device's line of `io.stat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IoDevice {
    /// `MAJOR:MINOR`.
    pub device: String,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

/// What a slice's files say; each field `None` when its file is missing or unreadable.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SliceUsage {
    /// The slice's host path.
    pub cgroup: PathBuf,
    /// Why nothing could be read (cgroup v1, no slice); None when the slice was read.
    pub unavailable: Option<String>,
    /// `memory.current`.
    pub memory_bytes: Option<u64>,
    /// `memory.max`.
    pub memory_max_bytes: Option<Limit>,
    /// `memory.events` `oom_kill` (the slice and everything below it).
    pub oom_kills: Option<u64>,
    /// `cpu.stat` `usage_usec`.
    pub cpu_usage_usec: Option<u64>,
    /// `pids.current`.
    pub tasks: Option<u64>,
    /// `pids.max`.
    pub tasks_max: Option<Limit>,
    /// `io.stat`, when the io controller is enabled for the slice.
    pub io: Option<Vec<IoDevice>>,
    /// Files that exist but could not be read or parsed, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl SliceUsage {
    /// `cpu.stat` usage in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.cpu_usage_usec.map(|u| u as f64 / 1e6)
    }
}

/// Opens `rel` (relative, below `dir`) with no symlink anywhere on the way and never above
/// `dir`: the cgroup tree is the kernel's, but `--root` may be anyone's tree.
fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    openat2(
        dir,
        rel,
        flags | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
}

/// A cgroup file's text: None when it does not exist (its controller is not enabled).
fn read_file(slice: BorrowedFd<'_>, name: &str) -> Result<Option<String>, String> {
    let fd = match open_beneath(slice, Path::new(name), OFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("{name}: {}", std::io::Error::from(e))),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Some(text))
}

fn number(name: &str, text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name}: not a number: {:?}", text.trim()))
}

fn limit(name: &str, text: &str) -> Result<Limit, String> {
    match text.trim() {
        "max" => Ok(Limit::Max),
        _ => number(name, text).map(Limit::Value),
    }
}

/// The value of `key` in a flat keyed file (`key value` lines: memory.events, cpu.stat).
fn keyed(name: &str, text: &str, key: &str) -> Result<u64, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .ok_or_else(|| format!("{name}: no `{key}` line"))
        .and_then(|v| number(name, v))
}

/// `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device.
fn io_stat(text: &str) -> Result<Vec<IoDevice>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let device = words.next().unwrap_or_default().to_string();
            let (mut read_bytes, mut written_bytes) = (None, None);
            for w in words {
                match w.split_once('=') {
                    Some(("rbytes", v)) => read_bytes = Some(number("io.stat", v)?),
                    Some(("wbytes", v)) => written_bytes = Some(number("io.stat", v)?),
                    _ => {}
                }
            }
            match (read_bytes, written_bytes) {
                (Some(read_bytes), Some(written_bytes)) => Ok(IoDevice {
                    device,
                    read_bytes,
                    written_bytes,
                }),
                _ => Err(format!("io.stat: no rbytes/wbytes in {line:?}")),
            }
        })
        .collect()
}

/// One file read and parsed: None when it is missing (silently) or unreadable (in `problems`).
fn field<T>(
    slice: BorrowedFd<'_>,
    name: &str,
    problems: &mut Vec<String>,
    parse: impl Fn(&str, &str) -> Result<T, String>,
) -> Option<T> {
    match read_file(slice, name).and_then(|t| t.map(|t| parse(name, &t)).transpose()) {
        Ok(v) => v,
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

/// Reads stack user `uid`'s slice below `root`.
pub fn read(root: &Root, uid: u32) -> SliceUsage {
    let mut usage = SliceUsage {
        cgroup: slice_dir(uid),
        ..SliceUsage::default()
    };
    let root_fd = match rustix::fs::open(
        root.path(),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            usage.unavailable = Some(format!(
                "open {}: {}",
                root.path().display(),
                std::io::Error::from(e)
            ));
            return usage;
        }
    };
    let mount = Path::new(CGROUP_MOUNT)
        .strip_prefix("/")
        .unwrap_or(Path::new(""));
    if open_beneath(
        root_fd.as_fd(),
        &mount.join("cgroup.controllers"),
        OFlags::empty(),
    )
    .is_err()
    {
        usage.unavailable = Some(format!(
            "no cgroup v2 at {CGROUP_MOUNT} (no cgroup.controllers: a cgroup v1 or hybrid host)"
        ));
        return usage;
    }
    let rel = usage
        .cgroup
        .strip_prefix("/")
        .unwrap_or(&usage.cgroup)
        .to_path_buf();
    let slice = match open_beneath(root_fd.as_fd(), &rel, OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(e) => {
            usage.unavailable = Some(format!(
                "{}: {} (no process of the stack user runs)",
                usage.cgroup.display(),
                std::io::Error::from(e)
            ));
            return usage;
        }
    };
    let slice = slice.as_fd();
    let mut problems = Vec::new();
    usage.memory_bytes = field(slice, "memory.current", &mut problems, number);
    usage.memory_max_bytes = field(slice, "memory.max", &mut problems, limit);
    usage.oom_kills = field(slice, "memory.events", &mut problems, |n, t| {
        keyed(n, t, "oom_kill")
    });
    usage.cpu_usage_usec = field(slice, "cpu.stat", &mut problems, |n, t| {
        keyed(n, t, "usage_usec")
    });
    usage.tasks = field(slice, "pids.current", &mut problems, number);
    usage.tasks_max = field(slice, "pids.max", &mut problems, limit);
    usage.io = field(slice, "io.stat", &mut problems, |_, t| io_stat(t));
    usage.unreadable = problems;
    usage
}

#[cfg(test)]
mod tests;
