//! `isolate init`: a policy drafted from compose files. Finds the compose projects, reads
//! their variables and mounts, looks at the host (under --root) for what each mounted path
//! is and which filesystem it lies on, and prints a commented policy that `isolate plan`
//! accepts. Reads only; never changes anything. What it reads from a tree another user owns,
//! it reads with that user's rights (`read`), and YAML within budgets (`yaml`).
pub mod compose;
pub mod connect;
pub mod draft;
mod extends;
pub mod handoff_keys;
pub mod interpolate;
mod libraries;
mod merge;
mod mounts;
pub mod quadlets;
pub mod read;
mod render;
mod text;
mod uids;
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
    /// Quadlet directories whose files become stacks (`quadlets`).
    pub quadlets: &'a [PathBuf],
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

/// The compose files podman-compose reads in a directory without `-f`: every file of its
/// default list that exists, in its order, when one of them is not an override file.
fn compose_files_in(dir: &Path) -> Option<Vec<PathBuf>> {
    let found: Vec<PathBuf> = compose::DEFAULT_FILES
        .iter()
        .map(|n| dir.join(n))
        .filter(|f| f.is_file())
        .collect();
    let main = found.iter().any(|f| {
        !f.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(".override."))
    });
    main.then_some(found)
}

/// The compose files of every project the arguments name: a file (that file alone), a
/// directory holding compose files (all podman-compose reads there, overrides included), or
/// a directory whose subdirectories hold them (`stacks/<name>/docker-compose.yml`).
pub fn find_projects(args: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_file() {
            out.push(vec![a.clone()]);
            continue;
        }
        if !a.is_dir() {
            return Err(Error::Usage(format!(
                "--compose {}: no such file or directory",
                a.display()
            )));
        }
        if let Some(f) = compose_files_in(a) {
            out.push(f);
            continue;
        }
        let mut subs: Vec<Vec<PathBuf>> = std::fs::read_dir(a)
            .map_err(|e| Error::io(format!("reading {}", a.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter_map(|d| compose_files_in(&d))
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

/// A path on this machine as the host under `root` names it (one that is not there, such as
/// a missing env file: its directory's real path and its name).
fn host_path(root: &Path, disk: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(disk).unwrap_or_else(|_| {
        let parent = disk
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match (std::fs::canonicalize(parent), disk.file_name()) {
            (Ok(d), Some(n)) => d.join(n),
            _ => std::path::absolute(disk).unwrap_or_else(|_| disk.to_path_buf()),
        }
    });
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
    for project_files in &compose_files {
        let Some(f) = project_files.first() else {
            continue;
        };
        let dir = f.parent().unwrap_or(Path::new("."));
        let mut files =
            read::Files::for_project(&rights, f).map_err(|e| Error::Usage(e.to_string()))?;
        let mut vars = base.clone();
        let dot_env = dir.join(".env");
        let read_dot_env = match files.read(&dot_env) {
            Ok(t) => {
                interpolate::parse_env_file(&t, &mut vars)
                    .map_err(|m| Error::Usage(format!("{}: {m}", dot_env.display())))?;
                true
            }
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(Error::Usage(e.to_string())),
        };
        let host_files: Vec<PathBuf> = project_files
            .iter()
            .map(|f| host_path(req.root.path(), f))
            .collect();
        let mut p = compose::load(
            project_files,
            &host_files,
            &host_path(req.root.path(), dir),
            &vars,
            &mut files,
        )
        .map_err(|e| Error::Usage(e.to_string()))?;
        if read_dot_env {
            p.dot_env = Some(host_path(req.root.path(), &dot_env));
        }
        for e in &mut p.env_files {
            e.path = compose::normalize(&host_path(req.root.path(), &e.path));
        }
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
    let interpolated_with: Vec<PathBuf> = req
        .env
        .iter()
        .map(|e| host_path(req.root.path(), e))
        .collect();
    let text = draft::draft(&draft::Input {
        projects: &projects,
        legacy_owner: req.legacy_owner,
        legacy_missing,
        facts: &facts,
        mountinfo: mounts.as_ref().map(|_| shown.as_str()),
        user_prefix: "stk-",
        interpolated_with: &interpolated_with,
    });
    let mut taken: Vec<String> = projects
        .iter()
        .map(|p| text::stack_name(&p.name, "stk-"))
        .collect();
    let accounts = crate::host::accounts::Accounts::read(req.root).ok();
    let home_of_dir = |d: &Path| quadlets::quadlet_home(accounts.as_ref(), d);
    let text = text
        + &quadlets::draft_dirs(
            req.root,
            req.quadlets,
            &home_of_dir,
            req.legacy_owner,
            &mut taken,
        )?;
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
    fn a_project_directory_is_every_file_podman_compose_reads_there_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("My App.v2");
        std::fs::create_dir(&p).unwrap();
        for f in [
            "docker-compose.yml",
            "compose.override.yaml",
            "compose.yaml",
        ] {
            std::fs::write(p.join(f), "services: {}\n").unwrap();
        }
        let only_override = dir.path().join("other");
        std::fs::create_dir(&only_override).unwrap();
        std::fs::write(only_override.join("compose.override.yml"), "services: {}\n").unwrap();
        assert_eq!(
            find_projects(std::slice::from_ref(&p)).unwrap(),
            [[
                "compose.yaml",
                "compose.override.yaml",
                "docker-compose.yml"
            ]
            .map(|f| p.join(f))]
        );
        // A directory of project directories: an override alone is no project.
        assert_eq!(find_projects(&[dir.path().to_path_buf()]).unwrap().len(), 1);
        assert_eq!(compose::normalize_project_name("My App.v2"), "myappv2");
    }

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
