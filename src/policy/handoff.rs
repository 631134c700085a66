//! The per-stack policy keys of the hand-off (compose files, project, env files, images, the
//! service) and the checks on them that need no host.
use crate::policy::{Located, Problem, StackPolicy};
use std::path::{Component, Path, PathBuf};

/// What moves with a stack besides its data paths. Every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackHandoff {
    /// The stack's compose files (absolute), in the order `-f` gets them.
    pub compose: Vec<Located<PathBuf>>,
    /// The compose project name; the stack's name when absent.
    pub project: Option<Located<String>>,
    /// Files of `KEY=value` lines the stack's containers get (secrets): handed to the stack user.
    pub env_files: Vec<Located<PathBuf>>,
    /// Images to copy beyond those the compose files and legacy containers name.
    pub images: Vec<Located<String>>,
    /// Whether isolate installs and starts the compose service in the stack user's manager.
    pub service: Option<Located<bool>>,
    /// The compose command the service runs (`["podman-compose"]` when absent).
    pub compose_command: Vec<Located<String>>,
    /// The stack's quadlet unit files (absolute), when quadlets define it.
    pub quadlets: Vec<Located<PathBuf>>,
}

impl StackHandoff {
    /// The compose project name of `stack`.
    pub fn project_of(&self, stack: &str) -> String {
        self.project
            .as_ref()
            .map_or_else(|| stack.to_string(), |p| p.value.clone())
    }

    pub fn wants_service(&self) -> bool {
        self.service.as_ref().is_some_and(|s| s.value)
    }
}

/// Compose's own rule for project names: lower-case letters, digits, `_` and `-`, starting
/// with a letter or digit.
pub fn valid_project_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

pub(super) fn file_path_problem(what: &str, p: &Path) -> Option<String> {
    if !p.is_absolute() {
        return Some(format!(
            "{what} {:?} is a relative path; it must be absolute",
            p.display().to_string()
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || p.to_str()
            .is_some_and(|s| s.contains("//") || s.ends_with('/'))
    {
        return Some(format!(
            "{what} {:?} is not in normal form (no `.`, `..`, `//` or trailing `/`)",
            p.display().to_string()
        ));
    }
    if p.starts_with("/etc/passwd")
        || p.starts_with("/etc/shadow")
        || p.starts_with("/etc/group")
        || p.starts_with("/etc/gshadow")
        || p.starts_with("/var/lib/isolate")
        || p.starts_with("/proc")
        || p.starts_with("/sys")
        || p.starts_with("/dev")
    {
        return Some(format!(
            "{what} {:?} is a file isolate never hands to a stack",
            p.display().to_string()
        ));
    }
    None
}

/// Problems of one stack's hand-off keys.
pub fn check(s: &StackPolicy) -> Vec<Problem> {
    let h = &s.handoff;
    let mut out = super::quadlets::check(s);
    for c in &h.compose {
        if let Some(why) = file_path_problem("compose file", &c.value) {
            out.push(Problem::new(c.span.clone(), why));
        }
    }
    for e in &h.env_files {
        if let Some(why) = file_path_problem("env file", &e.value) {
            out.push(Problem::new(e.span.clone(), why));
        }
    }
    for (i, e) in h.env_files.iter().enumerate() {
        if h.env_files[..i].iter().any(|x| x.value == e.value) {
            out.push(Problem::new(
                e.span.clone(),
                format!("env file {} is listed twice", e.value.display()),
            ));
        }
    }
    if let Some(p) = &h.project {
        if !valid_project_name(&p.value) {
            out.push(Problem::new(
                p.span.clone(),
                format!(
                    "project {:?} is not a compose project name (lower-case letters, digits, `_`, `-`, starting with a letter or digit)",
                    p.value
                ),
            ));
        }
    }
    for i in &h.images {
        if i.value.is_empty() || i.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            out.push(Problem::new(
                i.span.clone(),
                format!("image {:?} is not an image reference", i.value),
            ));
        }
    }
    if let Some(first) = h.compose_command.first() {
        if !first.value.starts_with('/') && first.value.contains('/') {
            out.push(Problem::new(
                first.span.clone(),
                format!(
                    "compose_command {:?} must be a command name or an absolute path",
                    first.value
                ),
            ));
        }
    }
    if h.wants_service() && h.compose.is_empty() && h.quadlets.is_empty() {
        let span = h
            .service
            .as_ref()
            .map_or(s.span.clone(), |x| x.span.clone());
        out.push(Problem::new(
            span,
            format!(
                "stack `{}` asks for a service but names no `compose` files to run",
                s.name
            ),
        ));
    }
    out
}
