//! The compose and env files a stack's service runs are isolate's root-owned copies, not the
//! originals: those stay in a directory the legacy user owns, where she could replace them
//! after the hand-off (a new secret, `volumes: ["/:/host"]`) and the unit would read them at
//! its next start. The copies live in `/var/lib/isolate/stacks/STACK/files/` + the original's
//! absolute path: every directory there root-owned, group the stack's, mode 0750 (only root
//! and the stack user enter); each copy root-owned, group the stack's, mode 0440 (the stack
//! user reads it, nobody but root changes it). A compose copy has its relative paths made
//! absolute against the original's directory, so it means what the original means. A changed
//! original is a plan diff (an env file's keys only, never its values); only apply, run by
//! root, copies it again: the admin approves by running it.
use super::compose;
use super::env_files;
use super::error::HandoffError;
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::policy::StackPolicy;
use rustix::fs::Mode;
use serde::Serialize;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where the copies of all stacks live.
pub const STACKS_DIR: &str = "/var/lib/isolate/stacks";
/// Directories of a stack's copies: root and the stack's group enter them.
pub const COPY_DIR_MODE: u32 = 0o750;
/// A copy: root owns it, the stack's group reads it.
pub const COPY_MODE: u32 = 0o440;
/// At most this many diff lines in a plan note.
const DIFF_LINES: usize = 40;

/// The stack's own directory below [`STACKS_DIR`].
pub fn stack_dir(stack: &str) -> PathBuf {
    Path::new(STACKS_DIR).join(stack)
}

/// Where the copy of `original` (absolute) lives.
pub fn copy_path(stack: &str, original: &Path) -> PathBuf {
    stack_dir(stack)
        .join("files")
        .join(original.strip_prefix("/").unwrap_or(original))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyKind {
    Env,
    Compose,
}

impl CopyKind {
    fn noun(self) -> &'static str {
        match self {
            CopyKind::Env => "env file",
            CopyKind::Compose => "compose file",
        }
    }
}

/// A copy's content: never printed, logged or put in JSON (an env file holds secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Content(pub String);

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// One file the service runs, as observation found the original and its copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyFacts {
    pub kind: CopyKind,
    pub original: PathBuf,
    pub copy: PathBuf,
    /// What the copy must hold (None: the original cannot be copied, see `error`).
    #[serde(skip)]
    pub wanted: Option<Content>,
    pub error: Option<String>,
    /// What the copy holds now (None: no copy yet).
    #[serde(skip)]
    pub current: Option<Content>,
    /// The owners an original may have (legacy user, stack user, root).
    pub owners: Vec<u32>,
}

/// One copy apply makes: `content` is what plan saw; apply copies the original only while it
/// still renders to exactly that.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyStep {
    pub kind: CopyKind,
    pub from: PathBuf,
    pub to: PathBuf,
    pub owners: Vec<u32>,
    #[serde(skip)]
    pub content: Content,
}

/// What the copy of `original` must hold: the original (owned by one of `owners`, one name,
/// no link followed), a compose file with its relative paths made absolute.
pub fn wanted(
    root: &Root,
    stack: &str,
    kind: CopyKind,
    original: &Path,
    owners: &[u32],
) -> std::result::Result<Content, String> {
    let bytes = env_files::read_owned(root, original, owners).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    match kind {
        CopyKind::Env => Ok(Content(text)),
        CopyKind::Compose => {
            let dir = original.parent().unwrap_or(Path::new("/"));
            let body = compose::rebased_copy(&text, dir)?;
            Ok(Content(format!(
                "# isolate's copy of {} for stack {stack}, relative paths made absolute.\n\
                 # Edit the original: `isolate plan` shows the change, `isolate apply` copies it.\n{body}",
                crate::model::escape::path_text(original)
            )))
        }
    }
}

/// The copy as it is (None: absent or unreadable).
pub fn current(root: &Root, copy: &Path) -> Option<Content> {
    env_files::read_pinned(root, copy)
        .ok()
        .map(|b| Content(String::from_utf8_lossy(&b).into_owned()))
}

/// The files the stack's service runs, in unit order: env files, then compose files.
pub fn files(s: &StackPolicy) -> Vec<(CopyKind, PathBuf)> {
    s.handoff
        .env_files
        .iter()
        .map(|e| (CopyKind::Env, e.value.clone()))
        .chain(
            s.handoff
                .compose
                .iter()
                .map(|c| (CopyKind::Compose, c.value.clone())),
        )
        .collect()
}

/// Reads every original and its copy. Never writes.
pub fn observe(root: &Root, s: &StackPolicy, owners: &[u32]) -> Vec<CopyFacts> {
    files(s)
        .into_iter()
        .map(|(kind, original)| {
            let copy = copy_path(&s.name, &original);
            let (wanted, error) = match wanted(root, &s.name, kind, &original, owners) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e)),
            };
            CopyFacts {
                kind,
                current: current(root, &copy),
                original,
                copy,
                wanted,
                error,
                owners: owners.to_vec(),
            }
        })
        .collect()
}

/// The keys of `KEY=value` lines.
fn env_pairs(text: &str) -> std::collections::BTreeMap<String, String> {
    compose::parse_env_file(text)
}

/// What changed from `old` to `new`, one line each: for an env file its keys (`+ KEY`,
/// `- KEY`, `~ KEY`), never a value; for a compose file the lines (`+ `/`- `).
pub fn changes(kind: CopyKind, old: &str, new: &str) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        CopyKind::Env => {
            let (a, b) = (env_pairs(old), env_pairs(new));
            for (k, v) in &b {
                match a.get(k) {
                    None => out.push(format!("+ {k} (new)")),
                    Some(w) if w != v => out.push(format!("~ {k} (value changed)")),
                    _ => {}
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("- {k} (gone)"));
            }
            if out.is_empty() {
                out.push("(comments or layout changed)".into());
            }
        }
        CopyKind::Compose => out = line_diff(old, new),
    }
    if out.len() > DIFF_LINES {
        let more = out.len() - DIFF_LINES;
        out.truncate(DIFF_LINES);
        out.push(format!("... and {more} more changed lines"));
    }
    out
}

/// The lines removed (`- `) and added (`+ `) from `old` to `new` (longest common subsequence;
/// files too large for that are reported by their sizes).
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        return vec![format!(
            "({} lines before, {} lines now; too large to compare line by line)",
            a.len(),
            b.len()
        )];
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

/// The plan note for a copy whose original changed since isolate copied it.
pub fn changed_note(c: &CopyFacts, stack: &str) -> Option<String> {
    let (Some(old), Some(new)) = (&c.current, &c.wanted) else {
        return None;
    };
    if old == new {
        return None;
    }
    let lines = changes(c.kind, &old.0, &new.0);
    Some(format!(
        "{} {} changed since isolate copied it for stack `{stack}` (its service runs the copy {} until apply copies it again):\n{}",
        c.kind.noun(),
        c.original.display(),
        c.copy.display(),
        lines
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

fn io(what: &str, p: &Path, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {}", p.display()), e.into())
}

/// Opens (creating what is missing) each directory of `dir` below `root` without following a
/// link. Every existing directory on the way must be root's and writable by nobody else;
/// those at or below the stack's own directory become root:`gid` mode 0750.
fn open_dirs(root: &Root, dir: &Path, stack: &str, gid: u32) -> Result<OwnedFd> {
    let own = stack_dir(stack);
    crate::host::files::open_dir_chain(
        root,
        dir,
        |rel| {
            if rel.starts_with(&own) {
                COPY_DIR_MODE
            } else {
                0o755
            }
        },
        |fd, rel, shown, _| {
            if rel.starts_with(&own) {
                rustix::fs::fchown(
                    fd,
                    Some(rustix::fs::Uid::from_raw(0)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(|e| io("chown", shown, e))?;
                rustix::fs::fchmod(fd, Mode::from_raw_mode(COPY_DIR_MODE))
                    .map_err(|e| io("chmod", shown, e))?;
            } else {
                let st = rustix::fs::fstat(fd).map_err(|e| io("stat", shown, e))?;
                if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
                    return Err(HandoffError::NotRootsAlone {
                        path: shown.to_path_buf(),
                        uid: st.st_uid,
                        mode: st.st_mode & 0o7777,
                    }
                    .into());
                }
            }
            Ok(())
        },
    )
}

/// Writes a copy atomically: a new file beside it (root:`gid`, 0440), synced, renamed over.
pub fn write(root: &Root, stack: &str, gid: u32, copy: &Path, content: &Content) -> Result<()> {
    let dir = copy.parent().unwrap_or(Path::new("/"));
    let name = copy.file_name().ok_or_else(|| HandoffError::NamesNoFile {
        path: copy.to_path_buf(),
    })?;
    let dirfd = open_dirs(root, dir, stack, gid)?;
    crate::host::files::replace_beneath(
        &dirfd,
        name,
        &root.at(copy),
        content.0.as_bytes(),
        (0, gid),
        COPY_MODE,
    )
}

/// Removes the stack's copies (rollback). `remove_dir_all` follows no symbolic link.
pub fn remove(root: &Root, stack: &str) -> Result<()> {
    let dir = root.at(&stack_dir(stack));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_changes_name_keys_never_values() {
        let c = changes(CopyKind::Env, "A=1\nB=2\n# x\n", "A=1\nB=3\nC=secret\n");
        assert_eq!(c, vec!["~ B (value changed)", "+ C (new)"]);
        assert!(!c.join("").contains("secret"));
        assert_eq!(
            changes(CopyKind::Env, "A=1\nB=2\n", "A=1\n"),
            vec!["- B (gone)"]
        );
    }

    #[test]
    fn compose_changes_are_lines() {
        assert_eq!(
            changes(CopyKind::Compose, "a\nb\nc\n", "a\nc\nd\n"),
            vec!["- b", "+ d"]
        );
    }

    #[test]
    fn a_copy_is_kept_below_the_stacks_own_directory() {
        assert_eq!(
            copy_path("app", Path::new("/srv/app/conf/compose.yaml")),
            Path::new("/var/lib/isolate/stacks/app/files/srv/app/conf/compose.yaml")
        );
    }
}
