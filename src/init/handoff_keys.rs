//! The hand-off keys of a drafted stack: the compose files podman-compose read (`compose`),
//! the project name it computed (`project`), the env files of the project (`env_files`),
//! `service`, and what the hand-off will do with each named volume. Without these a first
//! apply migrates the data and leaves the project behind in the legacy user's store.
use super::compose::{Project, Source};
use super::draft::{c, p, toml_string};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Who and what the hand-off block is drafted for.
pub struct Target<'a> {
    pub stack: &'a str,
    /// The stack's user (`user_prefix` + stack).
    pub user: String,
    /// The legacy owner, when the draft names one.
    pub legacy_owner: Option<&'a str>,
    /// Env files and the projects that use them, across the draft (plan refuses one file for
    /// two stacks).
    pub env_users: &'a BTreeMap<PathBuf, Vec<String>>,
    /// Mounts (`service:target`) whose host path is unknown or not there: podman cannot start
    /// the project as it is.
    pub cannot_start: Vec<String>,
}

/// The env files of a project: its `.env` and every `env_file:` that is there.
pub fn env_files_of(pr: &Project) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = pr.dot_env.iter().cloned().collect();
    for u in pr.env_files.iter().filter(|u| u.found) {
        if !out.contains(&u.path) {
            out.push(u.path.clone());
        }
    }
    out
}

/// Why a file cannot be a `compose` or `env_files` entry as it is (plan would refuse it).
fn file_problem(path: &Path, env: bool) -> Option<&'static str> {
    let never = [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/var/lib/isolate",
        "/proc",
        "/sys",
        "/dev",
    ];
    if !path.is_absolute() || super::compose::normalize(path) != path {
        return Some("not an absolute path in normal form");
    }
    if never.iter().any(|n| path.starts_with(n)) {
        return Some("a file isolate never hands to a stack");
    }
    if env
        && super::draft::HOST_SYSTEM
            .iter()
            .any(|d| path.starts_with(d))
    {
        return Some("in a system tree, where plan refuses env files");
    }
    None
}

/// The `compose`, `project`, `env_files` and `service` lines (each with why), then the named
/// volumes as comments saying what the hand-off does with them.
pub fn block(o: &mut String, pr: &Project, t: &Target<'_>) {
    // compose
    let mut compose = Vec::new();
    for (i, f) in pr.files.iter().enumerate() {
        match file_problem(f, false) {
            Some(why) => {
                let _ = writeln!(o, "# TODO: compose file {}: {why}", p(f));
            }
            None => compose.push((
                f,
                if i == 0 {
                    "the project's compose file"
                } else {
                    "merged over the one before, as podman-compose reads it"
                },
            )),
        }
    }
    let _ = writeln!(
        o,
        "# The compose files podman-compose reads for this project, in its order: apply copies its\n\
         # images and named volumes to the stack user, and the stack's unit runs these files."
    );
    let _ = writeln!(o, "compose = [");
    for (f, why) in &compose {
        let _ = writeln!(o, "  {},  # {why}", toml_string(&f.display().to_string()));
    }
    let _ = writeln!(o, "]");

    // project
    let project_ok = crate::policy::handoff::valid_project_name(&pr.name);
    if project_ok {
        let _ = writeln!(
            o,
            "project = {}  # from {}: the name its containers and volumes carry today",
            toml_string(&pr.name),
            c(&pr.name_source)
        );
    } else {
        let _ = writeln!(
            o,
            "# TODO: the project name {:?} (from {}) is not one the policy accepts (lower-case\n\
             # letters, digits, `_`, `-`): set `name:` in the compose file and here, e.g.\n\
             # project = \"{}\"",
            c(&pr.name),
            c(&pr.name_source),
            super::compose::normalize_project_name(&pr.name)
        );
    }

    // env_files
    let mut env: Vec<(PathBuf, String)> = Vec::new();
    let mut notes = Vec::new();
    if let Some(d) = &pr.dot_env {
        env.push((
            d.clone(),
            "the .env podman-compose interpolates the compose files from; the unit reads only env_files".into(),
        ));
    }
    for u in &pr.env_files {
        let why = format!("env_file of {}", u.services.join(", "));
        if !u.found {
            notes.push(format!(
                "TODO: {} ({why}) is not on this host: compose fails without it unless `required: false`; create it, then list it in env_files",
                p(&u.path)
            ));
            continue;
        }
        match env.iter_mut().find(|(e, _)| e == &u.path) {
            Some((_, w)) => {
                let _ = write!(w, "; {why}");
            }
            None => env.push((u.path.clone(), why)),
        }
    }
    let mut listed = Vec::new();
    for (path, why) in env {
        let others: Vec<&String> = t
            .env_users
            .get(&path)
            .into_iter()
            .flatten()
            .filter(|n| **n != pr.name)
            .collect();
        match file_problem(&path, true) {
            Some(problem) => notes.push(format!("TODO: env file {} ({why}): {problem}", p(&path))),
            None if !others.is_empty() => notes.push(format!(
                "TODO: env file {} ({why}) is also the env file of project {}: one env file belongs to one stack, so give each project its own copy and list it here",
                p(&path),
                c(&others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            )),
            None => listed.push((path, why)),
        }
    }
    if listed.is_empty() {
        let _ = writeln!(o, "env_files = []  # no .env and no env_file");
    } else {
        let _ = writeln!(
            o,
            "# Secrets: apply makes each file {}'s alone (mode 0400) and the unit reads it:",
            c(&t.user)
        );
        let _ = writeln!(o, "env_files = [");
        for (path, why) in &listed {
            let _ = writeln!(
                o,
                "  {},  # {}",
                toml_string(&path.display().to_string()),
                c(why)
            );
        }
        let _ = writeln!(o, "]");
    }
    for n in &notes {
        let _ = writeln!(o, "# {n}");
    }

    // service
    if pr.services.is_empty() {
        let _ = writeln!(o, "# no `service`: the project has no services");
    } else if compose.is_empty() || !project_ok {
        let _ = writeln!(
            o,
            "# TODO: no `service` until `compose` and `project` name the files and the project:\n\
             # service = true"
        );
    } else if !t.cannot_start.is_empty() {
        let _ = writeln!(
            o,
            "# TODO: podman cannot start the project as it is: {} mount(s) without a host path that\n\
             # exists ({}, see below); once they have one:\n\
             # service = true",
            t.cannot_start.len(),
            c(&t.cannot_start.join(", "))
        );
    } else {
        let _ = writeln!(
            o,
            "service = true  # {} service(s): apply installs and starts isolate-compose-{}.service in {}'s manager",
            pr.services.len(),
            c(&pr.name),
            c(&t.user)
        );
    }
    volumes(o, pr, t, !compose.is_empty());
}

/// Each named volume the services mount, with what the hand-off does with it.
fn volumes(o: &mut String, pr: &Project, t: &Target<'_>, has_compose: bool) {
    let mut used: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &pr.services {
        for m in &s.mounts {
            if let Source::Named(v) = &m.source {
                used.entry(v.as_str())
                    .or_default()
                    .push(format!("{}:{}", s.name, m.target));
            }
        }
    }
    if used.is_empty() {
        return;
    }
    let from = match t.legacy_owner {
        Some(l) => format!("{l}'s podman store"),
        None => "the podman store of the user who runs it today (legacy_owner)".into(),
    };
    let _ = writeln!(
        o,
        "# Named volumes (podman's store, not data paths): the hand-off moves them with `compose`:"
    );
    for (key, uses) in used {
        let at = c(&uses.join(", "));
        let Some(v) = pr.volumes.get(key) else {
            let _ = writeln!(
                o,
                "#   {} ({at}): TODO: not declared under top-level `volumes:`, which compose requires",
                c(key)
            );
            continue;
        };
        let engine = match (&v.engine_name, v.external) {
            (Some(n), _) => n.clone(),
            (None, true) => key.to_string(),
            (None, false) => format!("{}_{key}", pr.name),
        };
        let what = if v.external {
            format!(
                "TODO: `external`, made outside the project, so the hand-off does not move it; move {} to {}'s store yourself, or drop `external` if only this project uses it",
                c(&engine),
                c(&t.user)
            )
        } else if !has_compose {
            "TODO: moved only once `compose` names the file".into()
        } else {
            format!(
                "apply moves podman volume {} from {from} to {}'s, owners shifted like data; rollback moves it back",
                c(&engine),
                c(&t.user)
            )
        };
        let mut line = format!("#   {} ({at}): {what}", c(key));
        if let Some(fs) = &v.fs_type {
            let _ = write!(
                line,
                "; WARNING: on {} (driver_opts{}): owners there are the file server's, and the stack's volume is created with its name and labels only, without these options",
                c(fs),
                v.device
                    .as_ref()
                    .map(|d| format!(", device {}", c(d)))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(o, "{line}");
    }
}
