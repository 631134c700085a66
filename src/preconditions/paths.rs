//! The paths a compose file makes compose read in place, from isolate's copy of it (its
//! relative paths already made absolute): env files, build contexts, extended and included
//! files, secrets' and configs' files. Bind sources are left out: data paths and shares
//! (which isolate itself gives the stack) are bind sources, and their checks are the walk's.
use yaml_rust2::{Yaml, YamlLoader};

/// (what it is to compose, absolute path) for each such path, in the file's order.
pub fn read_in_place(text: &str) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    let Ok(docs) = YamlLoader::load_from_str(text) else {
        return out;
    };
    let Some(doc) = docs.first() else { return out };
    let mut push = |kind: &str, y: &Yaml| {
        if let Some(s) = y.as_str() {
            if s.starts_with('/') && !out.iter().any(|(_, p)| p.as_os_str() == s) {
                out.push((kind.to_string(), std::path::PathBuf::from(s)));
            }
        }
    };
    if let Yaml::Hash(services) = &doc["services"] {
        for (_, svc) in services {
            for e in strings_or_paths(&svc["env_file"]) {
                push("env file", e);
            }
            match &svc["build"] {
                b @ Yaml::String(_) => push("build context", b),
                Yaml::Hash(_) => push("build context", &svc["build"]["context"]),
                _ => {}
            }
            push("extended compose file", &svc["extends"]["file"]);
        }
    }
    for i in strings_or_paths(&doc["include"]) {
        push("included compose file", i);
    }
    for (section, kind) in [("secrets", "secret file"), ("configs", "config file")] {
        if let Yaml::Hash(items) = &doc[section] {
            for (_, item) in items {
                push(kind, &item["file"]);
            }
        }
    }
    out
}

/// A string, a list of strings or of mappings with `path`, as env_file and include take.
fn strings_or_paths(y: &Yaml) -> Vec<&Yaml> {
    match y {
        Yaml::String(_) => vec![y],
        Yaml::Array(items) => items
            .iter()
            .map(|i| if let Yaml::Hash(_) = i { &i["path"] } else { i })
            .collect(),
        _ => Vec::new(),
    }
}
