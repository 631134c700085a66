//! `isolate init`: a policy drafted from compose files. Finds the compose projects, reads
//! their variables and mounts, looks at the host (under --root) for what each mounted path
//! is and which filesystem it lies on, and prints a commented policy that `isolate plan`
//! accepts. Reads only; never changes anything. What it reads from a tree another user owns,
//! it reads with that user's rights (`read`), and YAML within budgets (`yaml`).
pub mod compose;
pub mod connect;
pub mod draft;
mod extends;
pub mod interpolate;
pub mod read;
pub mod yaml;

use crate::error::{Error, Result};
use crate::layout::Root;
use draft::{PathFacts, PathKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `init` was asked to read.
pub struct Request<'a> {
    pub root: &'a Root,
    /// Compose files, project directories, or directories of project directories.
    pub compose: &'a [PathBuf],
    /// Env files read before each project's own `.env` (which wins).
    pub env: &'a [PathBuf],
    pub legacy_owner: Option<&'a str>,
}

/// How many volumes the drafted projects may have together: the draft compares every data
/// path with every other one (homelabs have a few hundred).
const MAX_MOUNTS: usize = 2_000;

/// Filesystems where chown is refused or not the file server's truth.
const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "virtiofs",
    "9p",
    "glusterfs",
    "ceph",
    "afs",
];

fn is_network_fs(t: &str) -> bool {
    NETWORK_FS.contains(&t) || t.starts_with("fuse")
}

/// The compose file of a directory, in compose's order of names.
fn compose_file_in(dir: &Path) -> Option<PathBuf> {
    compose::COMPOSE_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|f| f.is_file())
}

/// Every compose file named by the arguments: a file, a directory holding one, or a
/// directory whose subdirectories hold one each (`stacks/<name>/docker-compose.yml`).
pub fn find_projects(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_file() {
            out.push(a.clone());
            continue;
        }
        if !a.is_dir() {
            return Err(Error::Usage(format!(
                "--compose {}: no such file or directory",
                a.display()
            )));
        }
        if let Some(f) = compose_file_in(a) {
            out.push(f);
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(a)
            .map_err(|e| Error::io(format!("reading {}", a.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter_map(|d| compose_file_in(&d))
            .collect();
        if subs.is_empty() {
            return Err(Error::Usage(format!(
                "--compose {}: no compose file ({}) in it or in its subdirectories",
                a.display(),
                compose::COMPOSE_FILES.join(", ")
            )));
        }
        subs.sort();
        out.append(&mut subs);
    }
    Ok(out)
}

/// A path on this machine as the host under `root` names it.
fn host_path(root: &Path, disk: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(disk).unwrap_or_else(|_| disk.to_path_buf());
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    match abs.strip_prefix(&root) {
        Ok(rest) if root != Path::new("/") => Path::new("/").join(rest),
        _ => abs,
    }
}

/// Mount points and filesystem types from a mountinfo text (octal escapes decoded).
pub fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String)> {
    let unescape = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let octal = b
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match (b[i], octal) {
                (b'\\', Some(d)) => {
                    out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                    i += 4;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
    };
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mp = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((unescape(mp), fstype.to_string()))
        })
        .collect()
}

/// The filesystem type of the mount a path lies on (the longest mount point above it).
fn fs_of<'a>(mounts: &'a [(PathBuf, String)], path: &Path) -> Option<&'a str> {
    mounts
        .iter()
        .filter(|(mp, _)| path.starts_with(mp))
        .max_by_key(|(mp, _)| mp.components().count())
        .map(|(_, t)| t.as_str())
}

/// Reads everything and returns the draft; the draft is checked to parse as a policy.
pub fn run(req: &Request<'_>) -> Result<String> {
    let compose_files = find_projects(req.compose)?;
    let rights = read::Rights::new(req.root.path());
    let mut base = interpolate::Vars::new();
    let mut env_files = read::Files::per_file(&rights);
    for e in req.env {
        let t = env_files
            .read(e)
            .map_err(|err| Error::Usage(format!("--env: {err}")))?;
        interpolate::parse_env_file(&t, &mut base)
            .map_err(|m| Error::Usage(format!("--env {}: {m}", e.display())))?;
    }
    let mut projects = Vec::new();
    let mut mounts = 0;
    for f in &compose_files {
        let dir = f.parent().unwrap_or(Path::new("."));
        let mut files =
            read::Files::for_project(&rights, f).map_err(|e| Error::Usage(e.to_string()))?;
        let mut vars = base.clone();
        let dot_env = dir.join(".env");
        match files.read(&dot_env) {
            Ok(t) => interpolate::parse_env_file(&t, &mut vars)
                .map_err(|m| Error::Usage(format!("{}: {m}", dot_env.display())))?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Error::Usage(e.to_string())),
        }
        let p = compose::load(
            f,
            &host_path(req.root.path(), f),
            &host_path(req.root.path(), dir),
            &vars,
            &mut files,
        )
        .map_err(|e| Error::Usage(e.to_string()))?;
        mounts += p.services.iter().map(|s| s.mounts.len()).sum::<usize>();
        if mounts > MAX_MOUNTS {
            return Err(Error::Usage(format!(
                "{}: the compose projects have more than {MAX_MOUNTS} volumes together; run init on fewer at a time",
                f.display()
            )));
        }
        projects.push(p);
    }

    let mountinfo_file = if req.root.is_host() {
        PathBuf::from("/proc/self/mountinfo")
    } else {
        req.root.at(Path::new("/proc/self/mountinfo"))
    };
    let mounts = std::fs::read_to_string(&mountinfo_file)
        .ok()
        .map(|t| parse_mountinfo(&t));
    let mut facts = BTreeMap::new();
    for pr in &projects {
        for s in &pr.services {
            for m in &s.mounts {
                if let compose::Source::Bind(path) = &m.source {
                    let on_host = req.root.at(path);
                    let kind = match std::fs::symlink_metadata(&on_host) {
                        Ok(md) if md.file_type().is_symlink() => PathKind::Symlink,
                        Ok(md) if md.is_dir() => PathKind::Dir,
                        Ok(_) => PathKind::File,
                        Err(_) => PathKind::Missing,
                    };
                    let network_fs = mounts
                        .as_deref()
                        .and_then(|ms| fs_of(ms, path))
                        .filter(|t| is_network_fs(t))
                        .map(str::to_string);
                    facts.insert(path.clone(), PathFacts { kind, network_fs });
                }
            }
        }
    }
    let shown = if req.root.is_host() {
        "/proc/self/mountinfo".to_string()
    } else {
        "/proc/self/mountinfo under the root".to_string()
    };
    // A legacy owner the root does not know would make plan refuse the draft.
    let legacy_missing = req.legacy_owner.is_some_and(|l| {
        crate::host::accounts::Accounts::read(req.root).is_ok_and(|a| a.user(l).is_none())
    });
    let text = draft::draft(&draft::Input {
        projects: &projects,
        legacy_owner: req.legacy_owner,
        legacy_missing,
        facts: &facts,
        mountinfo: mounts.as_ref().map(|_| shown.as_str()),
        user_prefix: "stk-",
    });
    // The draft must be a policy isolate accepts; anything else is a bug here.
    crate::policy::Policy::parse(Path::new("(draft)"), &text).map_err(|e| {
        Error::failed(DraftRejected {
            source: Box::new(e),
            text: text.clone(),
        })
    })?;
    Ok(text)
}

/// The drafted policy is not one isolate accepts: a bug in the draft.
#[derive(Debug, thiserror::Error)]
#[error("the drafted policy does not parse (a bug in isolate init): {source}\n{text}")]
pub struct DraftRejected {
    #[source]
    pub source: Box<Error>,
    /// The drafted text.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_the_filesystem_of_the_longest_mount_point() {
        let m = parse_mountinfo(
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             40 22 0:50 / /mnt/data rw - ext4 /dev/sdb1 rw\n\
             41 40 0:51 / /mnt/data/media rw - nfs4 nas:/media rw\n\
             42 22 0:52 / /mnt/with\\040space rw - cifs //nas/x rw\n",
        );
        assert_eq!(fs_of(&m, Path::new("/mnt/data/media/tv")), Some("nfs4"));
        assert_eq!(fs_of(&m, Path::new("/mnt/data/downloads")), Some("ext4"));
        assert_eq!(fs_of(&m, Path::new("/mnt/with space/a")), Some("cifs"));
        assert_eq!(fs_of(&m, Path::new("/srv")), Some("ext4"));
    }
}
