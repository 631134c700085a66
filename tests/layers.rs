//! The layer table of `src/`, held as data and enforced: every `crate::` path (and every
//! `super::` path that leaves its top-level module) is read from the source, and the test fails
//! on an import of a higher layer, on a top-level module missing from the table, and on any
//! cycle among top-level modules. The README's architecture section describes the same table.
//! Each capability is also held to a budget: the files outside its folder that name it
//! (`layers_common::budget`), listed by the test so the next capability sees what it costs.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod layers_common;
use layers_common::budget::{naming_files, over_budget};
use layers_common::{cycles, module_path, references};

/// Bottom to top. A module may import its own layer and the layers below; within one layer the
/// imports must still form a DAG (the cycle check).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "model",
        &[
            "model",
            "error",
            "ids",
            "migration",
            "layout",
            "privilege",
            "logging",
        ],
    ),
    ("host", &["host"]),
    // A capability's own schema file is placed with the schemas (`policy::STACK_TABLES`
    // picks it up), so it may name nothing above them.
    ("schemas", &["policy", "state", "limits::schema"]),
    ("walk", &["walk"]),
    ("allocation", &["alloc", "idmap"]),
    (
        "capabilities",
        &[
            "accounts",
            "data",
            "isolation",
            "handoff",
            "reach",
            "preconditions",
            "quadlet",
            "quota",
            "limits",
            "usage",
            "plugins",
        ],
    ),
    (
        "aggregates",
        &["observe", "plan", "apply", "status", "audit"],
    ),
    ("presenters", &["render", "export", "init", "stacks"]),
    ("operations", &["ops", "cli"]),
];

/// Modules of the table that are workspace crates re-exported into `src/` (cargo already
/// refuses an upward import from them): the table name, the file that re-exports it, the
/// re-export's text there, and the crate file whose `//!` header describes it.
const REEXPORTED: &[(&str, &str, &str, &str)] = &[
    (
        "ids",
        "lib.rs",
        "pub use isolate_model::{ids, migration};",
        "crates/model/src/ids.rs",
    ),
    (
        "migration",
        "lib.rs",
        "pub use isolate_model::{ids, migration};",
        "crates/model/src/migration.rs",
    ),
    (
        "walk",
        "lib.rs",
        "pub use isolate_walk as walk;",
        "crates/walk/src/lib.rs",
    ),
];

/// Edges allowed for a while (a move in progress): each names the file it starts from, the
/// module it reaches, and who removes it. Empty: nothing crosses a layer upward.
const TEMPORARY: &[(&str, &str, &str)] = &[];

/// Test files (`tests.rs`, `*_tests.rs`, declared under `#[cfg(test)]`) are built only by
/// `cargo test`: they may import up to this layer (a capability's tests drive it through plan
/// and apply, from its own folder), and their imports are left out of the cycle check.
const TESTS_REACH: &str = "aggregates";

/// Capabilities named from more than `BUDGET` files outside their folder today, each with the
/// most it may reach (so it does not grow) and why. A capability that gets within budget must
/// leave this list (the test says so).
const OVER_BUDGET: &[(&str, usize, &str)] = &[
    (
        "data",
        10,
        "the core's migration: apply, observe and handoff call it directly",
    ),
    (
        "isolation",
        23,
        "closing and sharing, woven through apply, audit and status",
    ),
    (
        "handoff",
        33,
        "its policy section, records and steps predate src/plugins.rs",
    ),
    (
        "reach",
        15,
        "its steps and legacy runs predate src/plugins.rs",
    ),
    (
        "preconditions",
        11,
        "planned by plan/preconditions.rs and plan/undoing.rs",
    ),
    (
        "quota",
        17,
        "its own Backends port, state records and plan phase (after isolation)",
    ),
    (
        "usage",
        9,
        "read by audit and status, printed by three presenters",
    ),
];

/// One `crate::`-level reference: the file it is written in, its line, and the two top-level
/// modules it joins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// The table's name for a module path: a sub-module the table places on its own
/// (`render::escape`) or else the top-level module.
fn node_of(path: &str, placed: &BTreeSet<String>) -> String {
    let mut segments = path.split("::");
    let first = segments.next().unwrap_or_default();
    match segments.next() {
        Some(second) if placed.contains(&format!("{first}::{second}")) => {
            format!("{first}::{second}")
        }
        _ => first.to_string(),
    }
}

/// The top-level modules of a crate: its `src/*.rs` files and `src/*/` folders.
fn top_modules(src: &Path) -> BTreeSet<String> {
    let mut tops = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            tops.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                tops.insert(stem.to_string());
            }
        }
    }
    tops
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The edges of one crate, from its sources given as (path relative to `src/`, text).
fn edges_of(
    files: &[(String, String)],
    tops: &BTreeSet<String>,
    placed: &BTreeSet<String>,
) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (relative, text) in files {
        let from = node_of(&module_path(relative).join("::"), placed);
        for (path, line) in references(relative, text, tops) {
            let to = node_of(&path, placed);
            if to == from {
                continue;
            }
            edges.push(Edge {
                file: format!("src/{relative}"),
                line,
                from: from.clone(),
                to,
            });
        }
    }
    edges.sort();
    edges.dedup();
    edges
}

/// Whether a file (below `src/`) is named as a test file: `tests.rs` or `*_tests.rs`.
fn is_test_file(relative: &str) -> bool {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// Test-named files not declared as `#[cfg(test)] mod NAME;` in their parent module's file (or,
/// with `#[path = "FILE"]`, in a file beside them): the exemption of test files must not reach
/// code that is built.
fn undeclared_tests(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (relative, _) in files.iter().filter(|(r, _)| is_test_file(r)) {
        let mut module = module_path(relative);
        let name = module.pop().unwrap_or_default();
        let parents = if module.is_empty() {
            vec!["lib.rs".to_string(), "main.rs".to_string()]
        } else {
            let dir = module.join("/");
            vec![format!("{dir}.rs"), format!("{dir}/mod.rs")]
        };
        let base = relative.rsplit('/').next().unwrap_or(relative);
        let by_path = format!("#[path = \"{base}\"]");
        let declarations = [
            format!("mod {name};"),
            format!("pub(crate) mod {name};"),
            format!("pub mod {name};"),
        ];
        let declared = files.iter().any(|(file, text)| {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            (0..lines.len())
                .filter(|&i| declarations.iter().any(|d| d == lines[i]))
                .any(|i| {
                    let attributes: Vec<&str> = lines[..i]
                        .iter()
                        .rev()
                        .take_while(|l| l.starts_with("#["))
                        .copied()
                        .collect();
                    attributes.contains(&"#[cfg(test)]")
                        && (parents.contains(file) || attributes.contains(&by_path.as_str()))
                })
        });
        if !declared {
            found.push(format!(
                "src/{relative} is named as a test file but not declared as `#[cfg(test)] mod {name};` in its parent"
            ));
        }
    }
    found
}

fn allowed(edge: &Edge, temporary: &[(&str, &str, &str)]) -> bool {
    temporary
        .iter()
        .any(|(file, to, _)| edge.file.starts_with(file) && edge.to == *to)
}

/// Every breach of the table: modules missing from it or listed but absent, upward imports,
/// and cycles among top-level modules. Empty when the crate holds to it.
fn breaches(
    files: &[(String, String)],
    tops: &BTreeSet<String>,
    layers: &[(&str, &[&str])],
    temporary: &[(&str, &str, &str)],
) -> Vec<String> {
    let mut found = Vec::new();
    let mut level: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for (index, (layer, modules)) in layers.iter().enumerate() {
        for module in *modules {
            level.insert(module, (index, layer));
        }
    }
    for top in tops {
        if !level.contains_key(top.as_str()) {
            found.push(format!(
                "top-level module `{top}` is missing from the layer table"
            ));
        }
    }
    let placed: BTreeSet<String> = level
        .keys()
        .filter(|m| m.contains("::"))
        .map(|m| m.to_string())
        .collect();
    for module in level.keys() {
        let present = match module.split_once("::") {
            Some((top, sub)) => files.iter().any(|(relative, _)| {
                *relative == format!("{top}/{sub}.rs") || *relative == format!("{top}/{sub}/mod.rs")
            }),
            None => tops.contains(*module),
        };
        if present {
            continue;
        }
        match REEXPORTED.iter().find(|(name, ..)| name == module) {
            Some((_, file, text, _)) => {
                if !files
                    .iter()
                    .any(|(relative, source)| relative == file && source.contains(text))
                {
                    found.push(format!(
                        "the layer table lists `{module}` as re-exported by `{text}` in src/{file}, which does not hold it"
                    ));
                }
            }
            None => found.push(format!(
                "the layer table lists `{module}`, which src/ does not hold"
            )),
        }
    }
    // A re-exported crate is a module of this crate to the paths that name it.
    let named: BTreeSet<String> = tops
        .iter()
        .cloned()
        .chain(
            REEXPORTED
                .iter()
                .map(|(name, ..)| name.split("::").next().unwrap().to_string()),
        )
        .collect();
    let edges = edges_of(files, &named, &placed);
    for (file, to, owner) in temporary {
        if !edges
            .iter()
            .any(|e| e.file.starts_with(file) && e.to == *to)
        {
            found.push(format!(
                "the temporary allowance {file} -> `{to}` ({owner}) matches no import any more: remove it from TEMPORARY"
            ));
        }
    }
    found.extend(undeclared_tests(files));
    let tests_reach = layers.iter().position(|(layer, _)| *layer == TESTS_REACH);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for edge in &edges {
        if allowed(edge, temporary) {
            continue;
        }
        if is_test_file(edge.file.trim_start_matches("src/")) {
            if let (Some((from_level, from_layer)), Some((to_level, to_layer))) =
                (level.get(edge.from.as_str()), level.get(edge.to.as_str()))
            {
                let reach = tests_reach.map_or(*from_level, |r| r.max(*from_level));
                if *to_level > reach {
                    found.push(format!(
                        "{}:{}: test file of `{}` ({from_layer}) imports `{}` ({to_layer}), above {TESTS_REACH}",
                        edge.file, edge.line, edge.from, edge.to
                    ));
                }
            }
            continue;
        }
        graph
            .entry(edge.from.clone())
            .or_default()
            .insert(edge.to.clone());
        if let (Some((from_level, from_layer)), Some((to_level, to_layer))) =
            (level.get(edge.from.as_str()), level.get(edge.to.as_str()))
        {
            if to_level > from_level {
                found.push(format!(
                    "{}:{}: `{}` ({from_layer}) imports `{}` ({to_layer}), a higher layer",
                    edge.file, edge.line, edge.from, edge.to
                ));
            }
        }
    }
    let nodes: BTreeSet<String> = named
        .iter()
        .cloned()
        .chain(placed.iter().cloned())
        .collect();
    for cycle in cycles(&nodes, &graph) {
        found.push(format!(
            "top-level modules in one import cycle: {}",
            cycle.join(", ")
        ));
    }
    found
}

fn crate_sources(src: &Path) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&path).expect("read source");
            (relative, text)
        })
        .collect()
}

#[test]
fn src_holds_to_the_layer_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let found = breaches(&crate_sources(&src), &top_modules(&src), LAYERS, TEMPORARY);
    assert!(
        found.is_empty(),
        "{} breaches of the layer table (tests/layers.rs):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The integration tests (`tests/`, relative to the package), but this checker's own files.
fn integration_sources(root: &Path) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rust_files(&root.join("tests"), &mut paths);
    paths
        .into_iter()
        .map(|path| {
            path.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .filter(|relative| !relative.starts_with("tests/layers"))
        .map(|relative| {
            let text = std::fs::read_to_string(root.join(&relative)).expect("read test");
            (relative, text)
        })
        .collect()
}

/// Every capability (a top-level module of the `capabilities` layer) is named from at most
/// `BUDGET` files outside its folder, tests included, unless `OVER_BUDGET` caps it. Prints each
/// one's list (`cargo test --test layers -- --nocapture`), so a new one sees what it touches.
#[test]
fn every_capability_is_named_from_few_files_outside_its_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let files = crate_sources(&src);
    let tops = top_modules(&src);
    let integration = integration_sources(root);
    let (_, capabilities) = LAYERS
        .iter()
        .find(|(layer, _)| *layer == "capabilities")
        .expect("a capabilities layer");
    let (report, found) = over_budget(capabilities, OVER_BUDGET, |capability| {
        naming_files(capability, &files, &tops, &integration)
    });
    println!("{report}");
    assert!(
        found.is_empty(),
        "{}\n\nthe files naming each capability:\n{report}",
        found.join("\n")
    );
}

const README_BEGIN: &str =
    "<!-- layers: generated from LAYERS and the //! headers by tests/layers.rs (ISOLATE_BLESS=1 cargo test --test layers rewrites it) -->";
const README_END: &str = "<!-- end: layers -->";

/// The first sentence of a file's `//!` header, on one line.
fn header_sentence(text: &str) -> String {
    let joined = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let end = joined
        .match_indices(". ")
        .map(|(i, _)| i)
        .find(|i| !joined[..*i].ends_with("e.g") && !joined[..*i].ends_with("i.e"))
        .unwrap_or(joined.len());
    joined[..end].trim_end_matches('.').replace('|', "\\|")
}

/// The README's layer table: each layer bottom-up, its modules and what each holds.
fn readme_layer_table(src: &Path) -> String {
    let mut out = String::from("| layer | module | what it holds |\n| --- | --- | --- |\n");
    for (index, (layer, modules)) in LAYERS.iter().enumerate() {
        for (n, module) in modules.iter().enumerate() {
            let relative = module.replace("::", "/");
            let crate_file = REEXPORTED
                .iter()
                .find(|(name, ..)| name == module)
                .map(|(.., file)| src.parent().unwrap().join(file));
            let file = [format!("{relative}.rs"), format!("{relative}/mod.rs")]
                .into_iter()
                .map(|f| src.join(f))
                .chain(crate_file)
                .find(|f| f.is_file());
            let what = file
                .map(|f| header_sentence(&std::fs::read_to_string(f).expect("read header")))
                .unwrap_or_default();
            let name = if n == 0 {
                format!("{index} {layer}")
            } else {
                String::new()
            };
            out.push_str(&format!("| {name} | `{module}` | {what} |\n"));
        }
    }
    out
}

#[test]
fn readme_layer_table_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("read README.md");
    let (Some(start), Some(end)) = (readme.find(README_BEGIN), readme.find(README_END)) else {
        panic!("README.md lacks the layer table's markers:\n{README_BEGIN}\n{README_END}");
    };
    let current = format!(
        "{}{README_BEGIN}\n{}{}",
        &readme[..start],
        readme_layer_table(&root.join("src")),
        &readme[end..]
    );
    if current != readme && std::env::var_os("ISOLATE_BLESS").is_some() {
        std::fs::write(&readme_path, &current).expect("write README.md");
        return;
    }
    assert!(
        current == readme,
        "README.md's layer table is stale: run `ISOLATE_BLESS=1 cargo test --test layers`"
    );
}

/// Workspace crates (crates/*/src) have their own top-level modules; those form a DAG too (the
/// crates themselves cannot import upward: cargo refuses a dependency cycle).
#[test]
fn every_workspace_crate_is_a_dag() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let Ok(entries) = std::fs::read_dir(&crates) else {
        return;
    };
    let mut found = Vec::new();
    for entry in entries {
        let src = entry.expect("entry").path().join("src");
        if !src.is_dir() {
            continue;
        }
        let tops = top_modules(&src);
        let layer: Vec<&str> = tops.iter().map(String::as_str).collect();
        let layers: [(&str, &[&str]); 1] = [("crate", &layer)];
        for breach in breaches(&crate_sources(&src), &tops, &layers, &[]) {
            found.push(format!("{}: {breach}", src.display()));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[cfg(test)]
mod checker {
    use super::*;

    const TABLE: &[(&str, &[&str])] = &[("low", &["model"]), ("high", &["cli", "plan"])];

    fn run(files: &[(&str, &str)]) -> Vec<String> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        let tops: BTreeSet<String> = ["model", "cli", "plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        breaches(&files, &tops, TABLE, &[])
    }

    #[test]
    fn an_upward_import_fails() {
        let found = run(&[("model/mod.rs", "use crate::cli::Args;\n")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("src/model/mod.rs:1: `model` (low) imports `cli` (high)"));
    }

    #[test]
    fn grouped_and_nested_uses_are_read() {
        let found = run(&[(
            "model/a.rs",
            "use crate::{\n    model::x,\n    plan::{Step, Options},\n};\n",
        )]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("src/model/a.rs:3: `model` (low) imports `plan`"));
    }

    #[test]
    fn super_paths_leaving_the_module_are_read() {
        let found = run(&[(
            "model/a.rs",
            "use super::b;\nmod tests { use super::super::super::cli; }\nfn f() { super::super::plan::go(); }\n",
        )]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found
            .iter()
            .any(|f| f.contains(":2: `model` (low) imports `cli`")));
        assert!(found
            .iter()
            .any(|f| f.contains(":3: `model` (low) imports `plan`")));
    }

    #[test]
    fn a_path_written_as_a_string_counts() {
        let found = run(&[(
            "model/a.rs",
            "#[serde(serialize_with = \"crate::cli::paths\")]\nstruct S;\n",
        )]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(":1: `model` (low) imports `cli`"));
    }

    #[test]
    fn comments_and_strings_do_not_count() {
        let found = run(&[(
            "model/a.rs",
            "//! see crate::cli\n/* crate::cli */ const S: &str = \"see crate::cli\";\nconst R: &str = r#\"crate::plan\"#;\nfn f<'a>(c: char) -> bool { c == '{' }\n",
        )]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_test_file_may_reach_the_aggregates_and_no_higher() {
        let table: &[(&str, &[&str])] = &[
            ("low", &["model"]),
            ("aggregates", &["plan"]),
            ("high", &["cli"]),
        ];
        let files = vec![
            (
                "model/mod.rs".to_string(),
                "#[cfg(test)]\nmod tests;\n".to_string(),
            ),
            (
                "model/tests.rs".to_string(),
                "use crate::plan::X;\nuse crate::cli::Y;\n".to_string(),
            ),
            (
                "plan/mod.rs".to_string(),
                "use crate::model::Z;\n".to_string(),
            ),
        ];
        let tops: BTreeSet<String> = ["model", "cli", "plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = breaches(&files, &tops, table, &[]);
        assert_eq!(
            found,
            vec![
                "src/model/tests.rs:2: test file of `model` (low) imports `cli` (high), above aggregates"
                    .to_string()
            ]
        );
    }

    #[test]
    fn a_test_named_file_not_under_cfg_test_fails() {
        let found = run(&[("model/mod.rs", "mod tests;\n"), ("model/tests.rs", "")]);
        assert_eq!(
            found,
            vec![
                "src/model/tests.rs is named as a test file but not declared as `#[cfg(test)] mod tests;` in its parent"
                    .to_string()
            ]
        );
    }

    #[test]
    fn a_cycle_within_a_layer_fails() {
        let found = run(&[
            ("cli/mod.rs", "use crate::plan::Step;\n"),
            ("plan/mod.rs", "use crate::cli::Args;\n"),
        ]);
        assert_eq!(
            found,
            vec!["top-level modules in one import cycle: cli, plan".to_string()]
        );
    }

    #[test]
    fn a_module_missing_from_the_table_fails() {
        let files = vec![("fresh.rs".to_string(), String::new())];
        let tops: BTreeSet<String> = ["model", "cli", "plan", "fresh"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = breaches(&files, &tops, TABLE, &[]);
        assert_eq!(
            found,
            vec!["top-level module `fresh` is missing from the layer table".to_string()]
        );
    }

    #[test]
    fn a_sub_module_placed_low_may_be_imported_from_below() {
        let table: &[(&str, &[&str])] = &[
            ("low", &["model", "cli::words"]),
            ("high", &["cli", "plan"]),
        ];
        let files = vec![
            (
                "model/a.rs".to_string(),
                "use crate::cli::words::W;\nuse crate::{cli::words, plan::X};".to_string(),
            ),
            ("cli/words.rs".to_string(), String::new()),
        ];
        let tops: BTreeSet<String> = ["model", "cli", "plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = breaches(&files, &tops, table, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(":2: `model` (low) imports `plan`"));
    }

    #[test]
    fn a_temporary_edge_is_allowed_only_from_its_file() {
        let temporary = &[("src/model/a.rs", "cli", "someone")];
        let files = vec![
            ("model/a.rs".to_string(), "use crate::cli::X;".to_string()),
            ("model/b.rs".to_string(), "use crate::cli::Y;".to_string()),
        ];
        let tops: BTreeSet<String> = ["model", "cli", "plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = breaches(&files, &tops, TABLE, temporary);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("src/model/b.rs:1:"));
    }

    #[test]
    fn a_temporary_edge_no_longer_needed_fails() {
        let temporary = &[("src/model/a.rs", "cli", "someone")];
        let files = vec![("model/a.rs".to_string(), String::new())];
        let tops: BTreeSet<String> = ["model", "cli", "plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = breaches(&files, &tops, TABLE, temporary);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("matches no import any more"));
    }
}
