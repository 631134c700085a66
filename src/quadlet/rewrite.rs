//! What changes in a quadlet file when it moves from the legacy owner to the stack user's own
//! quadlet directory, line by line, with the reason kept beside each change in the file itself.
//! File names stay, so `Pod=`, `Network=` and `Volume=NAME.volume` references stay consistent;
//! bind sources are data paths, which keep their path.
use super::unit::QuadletFile;
use serde::Serialize;

/// One line changed, as the plan shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// 1-based line in the legacy file.
    pub line: usize,
    pub was: String,
    pub why: String,
}

/// The file's text for the stack user's directory and what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewritten {
    pub text: String,
    pub changes: Vec<Change>,
}

/// The legacy owner's side, which the file's own specifiers meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The legacy owner's home, which `%h` meant in her manager (root: `/root`).
    pub home: String,
}

/// Rewrites `file` for the stack user.
pub fn for_stack(file: &QuadletFile, origin: &Origin) -> Rewritten {
    let mut out: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    let mut section = String::new();
    let mut continued = false;
    for (i, raw) in file.text.lines().enumerate() {
        let was_continued = continued;
        continued = raw.trim_end().ends_with('\\');
        let t = raw.trim();
        if was_continued || continued || t.starts_with('#') || t.starts_with(';') {
            out.push(raw.to_string());
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.to_string();
            out.push(raw.to_string());
            continue;
        }
        let Some((key, value)) = t.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
            out.push(raw.to_string());
            continue;
        };
        match change_of(&section, key, value, origin) {
            None => out.push(raw.to_string()),
            Some((why, replacement)) => {
                changes.push(Change {
                    line: i + 1,
                    was: t.to_string(),
                    why: why.clone(),
                });
                match replacement {
                    None => out.push(format!("# isolate: removed {t:?} ({why})")),
                    Some(line) => {
                        out.push(format!("# isolate: was {t:?} ({why})"));
                        out.push(line);
                    }
                }
            }
        }
    }
    let mut text = out.join("\n");
    if file.text.ends_with('\n') {
        text.push('\n');
    }
    Rewritten { text, changes }
}

/// Why one entry changes and its new line (None: removed); None when it stays.
fn change_of(
    section: &str,
    key: &str,
    value: &str,
    origin: &Origin,
) -> Option<(String, Option<String>)> {
    let container_like = matches!(section, "Container" | "Pod" | "Kube");
    if container_like && key == "UserNS" && value.starts_with("auto") {
        return Some((
            "the stack's data is shifted for podman's default rootless mapping".to_string(),
            None,
        ));
    }
    if section == "Service" && matches!(key, "User" | "Group") {
        return Some((
            "the unit runs in the stack user's own manager".to_string(),
            None,
        ));
    }
    if section == "Install"
        && matches!(key, "WantedBy" | "RequiredBy" | "UpheldBy")
        && value.split_whitespace().any(|t| t == "multi-user.target")
    {
        let targets: Vec<&str> = value
            .split_whitespace()
            .map(|t| {
                if t == "multi-user.target" {
                    "default.target"
                } else {
                    t
                }
            })
            .collect();
        let mut kept: Vec<&str> = Vec::new();
        for t in targets {
            if !kept.contains(&t) {
                kept.push(t);
            }
        }
        return Some((
            "a user manager has no multi-user.target; its default.target starts at boot (linger)"
                .to_string(),
            Some(format!("{key}={}", kept.join(" "))),
        ));
    }
    if value.contains("%h") {
        return Some((
            format!(
                "%h meant {}, the legacy owner's home; data keeps its path",
                origin.home
            ),
            Some(format!("{key}={}", value.replace("%h", &origin.home))),
        ));
    }
    None
}
