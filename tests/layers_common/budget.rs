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

/// Each capability's list as a report, and what breaks the budget: a capability named from more
/// than `BUDGET` files, or from more than its ceiling in `over_budget` (name, ceiling, why), or
/// one listed there that is within budget again.
pub fn over_budget(
    capabilities: &[&str],
    over_budget: &[(&str, usize, &str)],
    naming: impl Fn(&str) -> Vec<String>,
) -> (String, Vec<String>) {
    let mut report = String::new();
    let mut found = Vec::new();
    for capability in capabilities.iter().filter(|c| !c.contains("::")) {
        let naming = naming(capability);
        report.push_str(&format!(
            "{capability}: {} files outside its folder name it (budget {BUDGET})\n",
            naming.len()
        ));
        for file in &naming {
            report.push_str(&format!("    {file}\n"));
        }
        match over_budget.iter().find(|(name, ..)| name == capability) {
            Some((_, ceiling, _)) if naming.len() <= BUDGET => found.push(format!(
                "`{capability}` is within budget again ({} of {BUDGET}): remove it from OVER_BUDGET (ceiling {ceiling})",
                naming.len()
            )),
            Some((_, ceiling, why)) if naming.len() > *ceiling => found.push(format!(
                "`{capability}` is named from {} files outside its folder, above its ceiling {ceiling} ({why})",
                naming.len()
            )),
            Some(_) => {}
            None if naming.len() > BUDGET => found.push(format!(
                "`{capability}` is named from {} files outside its folder, above the budget of {BUDGET}",
                naming.len()
            )),
            None => {}
        }
    }
    (report, found)
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

    #[test]
    fn above_the_budget_or_a_ceiling_fails_and_a_stale_ceiling_too() {
        let many = |n: usize| (0..n).map(|i| format!("src/f{i}.rs")).collect::<Vec<_>>();
        let counts = |c: &str| match c {
            "small" => many(BUDGET),
            "big" => many(BUDGET + 1),
            "capped" => many(12),
            "grown" => many(13),
            _ => many(1),
        };
        let ceilings = &[
            ("capped", 12, "old"),
            ("grown", 12, "old"),
            ("healed", 9, "old"),
        ];
        let (report, found) = over_budget(
            &["small", "big", "capped", "grown", "healed", "big::schema"],
            ceilings,
            counts,
        );
        assert_eq!(
            found,
            [
                "`big` is named from 8 files outside its folder, above the budget of 7",
                "`grown` is named from 13 files outside its folder, above its ceiling 12 (old)",
                "`healed` is within budget again (1 of 7): remove it from OVER_BUDGET (ceiling 9)",
            ]
        );
        assert!(report
            .starts_with("small: 7 files outside its folder name it (budget 7)\n    src/f0.rs\n"));
    }
}
