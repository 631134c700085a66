//! YAML read with budgets, because the compose tree belongs to someone else: yaml-rust2's
//! loader copies an anchor at every alias (nine levels of nine aliases are 3 GiB) and the
//! tree it builds is dropped, cloned and walked recursively (10,000 levels overflow the
//! stack). This loader builds the same tree from the parser's events but counts what aliases
//! expand to and how deep the tree gets, and stops at the first budget exceeded.
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{ScanError, Yaml};

/// How deep mappings and sequences may nest (compose files use under 10).
pub const MAX_DEPTH: usize = 128;
/// How many nodes the aliases of one file may expand to (compose files use hundreds).
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Why a YAML text was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("not valid YAML: {0}")]
    Syntax(#[source] ScanError),
    #[error("nesting deeper than {MAX_DEPTH} (line {line})")]
    TooDeep { line: usize },
    #[error("aliases expand to more than {MAX_ALIAS_NODES} nodes (line {line})")]
    AliasesTooLarge { line: usize },
    #[error("duplicated key {key} in a mapping (line {line})")]
    DuplicateKey { key: String, line: usize },
}

impl YamlError {
    /// A budget was exceeded (as opposed to a text that is not YAML).
    pub fn is_budget(&self) -> bool {
        matches!(
            self,
            YamlError::TooDeep { .. } | YamlError::AliasesTooLarge { .. }
        )
    }
}

/// A node being built, with its anchor.
struct Open {
    node: Yaml,
    anchor: usize,
    /// For a mapping: the key read, waiting for its value.
    key: Option<Yaml>,
}

/// A finished anchored node: the node, how many nodes it holds and how deep it is.
struct Anchored {
    node: Yaml,
    nodes: usize,
    depth: usize,
}

/// The number of nodes in `y` and its depth (containers count one level). `y` was built
/// under the budgets, so the recursion is at most MAX_DEPTH deep.
fn measure(y: &Yaml) -> (usize, usize) {
    match y {
        Yaml::Array(a) => a.iter().fold((1, 1), |(n, d), c| {
            let (cn, cd) = measure(c);
            (n + cn, d.max(cd + 1))
        }),
        Yaml::Hash(h) => h.iter().fold((1, 1), |(n, d), (k, v)| {
            let (kn, kd) = measure(k);
            let (vn, vd) = measure(v);
            (n + kn + vn, d.max(kd + 1).max(vd + 1))
        }),
        _ => (1, 0),
    }
}

fn scalar(v: String, style: TScalarStyle, tag: Option<Tag>) -> Yaml {
    if style != TScalarStyle::Plain {
        return Yaml::String(v);
    }
    match tag {
        Some(Tag { handle, suffix }) if handle == "tag:yaml.org,2002:" => match suffix.as_str() {
            "bool" => match v.as_str() {
                "true" | "True" | "TRUE" => Yaml::Boolean(true),
                "false" | "False" | "FALSE" => Yaml::Boolean(false),
                _ => Yaml::BadValue,
            },
            "int" => v.parse::<i64>().map_or(Yaml::BadValue, Yaml::Integer),
            "float" => match v.parse::<f64>() {
                Ok(_) => Yaml::Real(v),
                Err(_) => Yaml::BadValue,
            },
            "null" => match v.as_str() {
                "~" | "null" => Yaml::Null,
                _ => Yaml::BadValue,
            },
            _ => Yaml::String(v),
        },
        Some(_) => Yaml::String(v),
        None => Yaml::from_str(&v),
    }
}

/// The first document of `text` (Null when there is none), within the budgets.
pub fn load_first(text: &str) -> Result<Yaml, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: std::collections::BTreeMap<usize, Anchored> = Default::default();
    let mut alias_nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(YamlError::Syntax)?;
        let line = mark.line();
        let finished = match event {
            Event::StreamEnd => return Ok(Yaml::Null),
            Event::DocumentEnd => return Ok(Yaml::Null),
            Event::Nothing | Event::StreamStart | Event::DocumentStart => continue,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError::TooDeep { line });
                }
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Yaml::Array(Vec::new())
                } else {
                    Yaml::Hash(Hash::new())
                };
                stack.push(Open {
                    node,
                    anchor,
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = stack.pop().expect("the parser balances starts and ends");
                (open.node, open.anchor)
            }
            Event::Scalar(v, style, anchor, tag) => (scalar(v, style, tag), anchor),
            Event::Alias(id) => match anchors.get(&id) {
                Some(a) => {
                    alias_nodes += a.nodes;
                    if alias_nodes > MAX_ALIAS_NODES {
                        return Err(YamlError::AliasesTooLarge { line });
                    }
                    if stack.len() + a.depth > MAX_DEPTH {
                        return Err(YamlError::TooDeep { line });
                    }
                    (a.node.clone(), 0)
                }
                None => (Yaml::BadValue, 0),
            },
        };
        let (node, anchor) = finished;
        if anchor > 0 {
            let (nodes, depth) = measure(&node);
            anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    nodes,
                    depth,
                },
            );
        }
        let Some(parent) = stack.last_mut() else {
            // The document's root is complete; the rest of the stream is not read.
            return Ok(node);
        };
        insert(parent, node, &mark)?;
    }
}

fn insert(parent: &mut Open, node: Yaml, mark: &Marker) -> Result<(), YamlError> {
    match &mut parent.node {
        Yaml::Array(a) => a.push(node),
        Yaml::Hash(h) => match parent.key.take() {
            None => parent.key = Some(node),
            Some(key) => {
                if h.contains_key(&key) {
                    return Err(YamlError::DuplicateKey {
                        key: match &key {
                            Yaml::String(k) => format!("{k:?}"),
                            other => format!("{other:?}"),
                        },
                        line: mark.line(),
                    });
                }
                h.insert(key, node);
            }
        },
        _ => unreachable!("only sequences and mappings are open"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    #[test]
    fn loads_what_yaml_rust2_loads() {
        let text = "a: &x\n  b: [1, 2.5, true, ~, 'q']\n  c: !!str 3\nd: *x\ne:\n  - f: g\n";
        let ours = load_first(text).unwrap();
        let theirs = YamlLoader::load_from_str(text).unwrap().remove(0);
        assert_eq!(ours, theirs);
        assert_eq!(load_first("").unwrap(), Yaml::Null);
        assert_eq!(load_first("# only a comment\n").unwrap(), Yaml::Null);
    }

    #[test]
    fn budgets_end_with_a_typed_error() {
        let deep = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        assert!(matches!(load_first(&deep), Err(YamlError::TooDeep { .. })));
        let ok = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        assert!(load_first(&ok).is_ok());
        // An alias adds its anchor's depth where it is used.
        let half = MAX_DEPTH / 2 + 1;
        let via_alias = format!(
            "a: &a {}x{}\nb: {}*a{}\n",
            "[".repeat(half),
            "]".repeat(half),
            "[".repeat(half),
            "]".repeat(half)
        );
        assert!(matches!(
            load_first(&via_alias),
            Err(YamlError::TooDeep { .. })
        ));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..6 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{p}"); 10].join(", ")
            ));
        }
        let e = load_first(&bomb).unwrap_err();
        assert!(e.is_budget(), "{e}");
        assert!(e
            .to_string()
            .starts_with("aliases expand to more than 100000 nodes"));
        assert!(matches!(
            load_first("a: 1\na: 2\n"),
            Err(YamlError::DuplicateKey { .. })
        ));
        assert!(matches!(load_first("a: [\n"), Err(YamlError::Syntax(_))));
    }
}
