//! One entry of a service's `volumes`, short (`SRC:DST[:MODE]`, with podman's `:U`) or long
//! syntax, as a [`Mount`]: a host path (relative ones against the project directory), a
//! named volume, something ephemeral, or a source init cannot decide and why.
use super::compose::{normalize, ComposeError, Mount, Source};
use std::path::Path;
use yaml_rust2::Yaml;

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) type Interp<'a> = dyn FnMut(&str) -> Result<(String, Vec<String>), ComposeError> + 'a;

/// Why one entry of a service's `volumes` could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum MountError {
    #[error("{0}")]
    Shape(String),
    #[error(transparent)]
    Interpolate(#[from] ComposeError),
}

/// One entry of a service's `volumes`, short (`SRC:DST[:MODE]`) or long syntax.
pub(super) fn mount(
    vol: &Yaml,
    host_dir: &Path,
    interp: &mut Interp<'_>,
) -> Result<Mount, MountError> {
    let shape = |s: String| MountError::Shape(s);
    let (written, target, read_only, chown, kind) = if let Some(s) = scalar(vol) {
        let parts = split_outside_braces(&s);
        match parts.as_slice() {
            [t] => (String::new(), t.clone(), false, false, Some("volume")),
            [src, t] => (src.clone(), t.clone(), false, false, None),
            [src, t, mode] => {
                let flags: Vec<&str> = mode.split(',').collect();
                (
                    src.clone(),
                    t.clone(),
                    flags.contains(&"ro"),
                    flags.contains(&"U"),
                    None,
                )
            }
            _ => return Err(shape(format!("volume {s:?} has too many `:` parts"))),
        }
    } else if vol.as_hash().is_some() {
        let src = scalar(&vol["source"]).unwrap_or_default();
        let target = scalar(&vol["target"])
            .ok_or_else(|| shape("a long-syntax volume has no `target`".into()))?;
        let kind = scalar(&vol["type"])
            .ok_or_else(|| shape("a long-syntax volume has no `type`".into()))?;
        let ro = matches!(vol["read_only"], Yaml::Boolean(true));
        let kind = match kind.as_str() {
            "bind" => None,
            "volume" if src.is_empty() => Some("volume"),
            "volume" => Some("named"),
            _ => Some("tmpfs"),
        };
        (src, target, ro, false, kind)
    } else {
        return Err(shape(
            "a volume entry is neither a string nor a mapping".into(),
        ));
    };
    let (value, missing) = interp(&written)?;
    let source = match kind {
        Some("volume") | Some("tmpfs") => Source::Ephemeral,
        _ if !missing.is_empty() => Source::Unknown {
            text: written.clone(),
            why: format!("{} not set", missing.join(", ")),
        },
        Some("named") => Source::Named(value),
        _ if placeholder(&value).is_some() => Source::Placeholder {
            text: written.clone(),
            why: placeholder(&value).unwrap_or_default(),
        },
        _ if value.starts_with('/') => Source::Bind(normalize(Path::new(&value))),
        _ if value == "." || value.starts_with("./") || value.starts_with("../") => {
            Source::Bind(normalize(&host_dir.join(&value)))
        }
        _ if value.starts_with('~') => Source::Unknown {
            text: written.clone(),
            why: "`~` is the home of whoever runs compose".into(),
        },
        _ => Source::Named(value),
    };
    Ok(Mount {
        source,
        written,
        target,
        read_only,
        chown,
    })
}

/// Why a mount source is a placeholder an upstream compose file ships for the admin to
/// replace (`/path/to/movies`, `/PATH_TO_YOUR_CONFIG`, `<your path>`), or None.
pub(super) fn placeholder(source: &str) -> Option<&'static str> {
    let lower = source.to_ascii_lowercase();
    if lower.contains('<') || lower.contains('>') {
        return Some("a placeholder in angle brackets");
    }
    if lower.starts_with("/path/to") || lower.contains("/path/to/") || lower.starts_with("path/to/")
    {
        return Some("a /path/to/ placeholder");
    }
    let shouted = source.split('/').any(|part| {
        part.len() > 3
            && part.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')
            && ["PATH", "YOUR", "DIR", "FOLDER", "LOCATION"]
                .iter()
                .any(|w| part.contains(w))
    });
    if shouted {
        return Some("a placeholder in capitals");
    }
    let words = lower
        .split(['/', '_', '-', '.', ' '])
        .any(|w| matches!(w, "your" | "changeme"));
    if words {
        return Some("a placeholder (\"your ...\")");
    }
    None
}

/// Splits a short-syntax volume at `:` outside `${...}` (defaults hold `:-`).
pub(super) fn split_outside_braces(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0usize;
    let mut prev = '\0';
    for ch in s.chars() {
        match ch {
            '{' if prev == '$' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            ':' if depth == 0 => {
                out.push(String::new());
                prev = ch;
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("never empty").push(ch);
        prev = ch;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_placeholders_are_told_from_paths() {
        for p in [
            "/path/to/movies",
            "/PATH_TO_YOUR_CONFIG",
            "<your path>",
            "/mnt/<media>",
            "/srv/your/config",
            "/opt/your_media_dir",
            "./path/to/data",
            "/srv/YOUR_DATA",
            "/changeme/x",
        ] {
            assert!(placeholder(p).is_some(), "{p}");
        }
        for p in [
            "/srv/media",
            "./data",
            "/mnt/storage/data",
            "/srv/yourls/data",
            "/mnt/NAS",
            "/home/alice/paths/to",
            "/opt/stacks/immich/library",
        ] {
            assert_eq!(placeholder(p), None, "{p}");
        }
    }
}
