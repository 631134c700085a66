//! What a capability costs the rest of the crate, for tests/layers.rs: the files outside its
//! folder that name it. Adding a capability should touch few of them (issue 18), so each one
//! shows its list and the test holds it to `BUDGET`.
use super::references;
use std::collections::BTreeSet;

/// At most this many files outside a capability's folder may name it.
pub const BUDGET: usize = 7;

/// Whether `relative` (below `src/`) lies inside `module`'s folder or is its file.
fn inside(relative: &str, module: &str) -> bool {
    relative.starts_with(&format!("{module}/")) || relative == format!("{module}.rs")
}

/// Whether the text declares `mod NAME;` (with any visibility).
fn declares(text: &str, module: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        rest == format!("mod {module};")
    })
}

/// Whether an integration test names `isolate::NAME` (the crate's path from outside).
fn names_from_outside(text: &str, module: &str) -> bool {
    let needle = format!("isolate::{module}");
    text.match_indices(&needle).any(|(at, _)| {
        let after = text[at + needle.len()..].chars().next();
        let before = text[..at].chars().next_back();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The files outside `module`'s folder that name it, sorted: files of `src/` (given relative
/// to it) by a `crate::` or `super::` path or its `mod` declaration, and the integration tests
/// (given relative to the package, `tests/...`) by an `isolate::` path.
pub fn naming_files(
    module: &str,
    src: &[(String, String)],
    tops: &BTreeSet<String>,
    integration: &[(String, String)],
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (relative, text) in src {
        if inside(relative, module) {
            continue;
        }
        let by_path = references(relative, text, tops)
            .iter()
            .any(|(path, _)| path.split("::").next() == Some(module));
        if by_path || declares(text, module) {
            out.insert(format!("src/{relative}"));
        }
    }
    for (relative, text) in integration {
        if names_from_outside(text, module) {
            out.insert(relative.clone());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tops() -> BTreeSet<String> {
        ["limits", "plan", "policy"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn paths_declarations_and_outside_paths_count_and_the_folder_does_not() {
        let src = files(&[
            ("lib.rs", "pub mod limits;\npub mod plan;\n"),
            (
                "plan/step.rs",
                "enum Step { Limits(crate::limits::LimitsStep) }\n",
            ),
            (
                "plan/mod.rs",
                "// crate::limits in a comment\nconst S: &str = \"limits\";\n",
            ),
            ("policy/mod.rs", "use crate::{plan, limits::schema};\n"),
            ("limits/apply.rs", "use crate::limits::dropin;\n"),
        ]);
        let integration = files(&[
            ("tests/a.rs", "isolate::limits::dropin::settings();\n"),
            ("tests/b.rs", "isolate::limits_extra::x();\n"),
        ]);
        assert_eq!(
            naming_files("limits", &src, &tops(), &integration),
            [
                "src/lib.rs",
                "src/plan/step.rs",
                "src/policy/mod.rs",
                "tests/a.rs"
            ]
        );
    }
}
