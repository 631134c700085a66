//! Reading Rust source for the paths it imports, for tests/layers.rs: a small tokenizer
//! (comments, strings, char literals and lifetimes set aside; a path written as a string kept)
//! and the `crate::` and `super::` paths each file names, with their lines; and the cycle
//! finder (Tarjan) the layer test runs over the modules they join; `budget` counts the files
//! outside a capability's folder that name it.
use std::collections::{BTreeMap, BTreeSet};

pub mod budget;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// Tokens of Rust source with comments, strings and char literals removed; each with its line.
fn tokenize(source: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to].iter().filter(|c| **c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i.min(chars.len()), &mut line);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, body) = raw_string_start(&chars, i).unwrap();
            let start = i;
            i = body;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            count_lines(start, i.min(chars.len()), &mut line);
            tokens.push((Token::Other, line));
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let start = i;
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            count_lines(start, i.min(chars.len()), &mut line);
            // A path written as a string (`serialize_with = "crate::render::escape::x"`) is an
            // import too.
            let body: String = chars[start..i.min(chars.len())].iter().collect();
            let body = body.trim_matches('"');
            if body.starts_with("crate::")
                && body
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                for (n, segment) in body.split("::").enumerate() {
                    if n > 0 {
                        tokens.push((Token::PathSep, line));
                    }
                    tokens.push((Token::Ident(segment.to_string()), line));
                }
            } else {
                tokens.push((Token::Other, line));
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            tokens.push((Token::Other, line));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let word = word
                .trim_start_matches('$')
                .trim_start_matches("r#")
                .to_string();
            tokens.push((Token::Ident(word), line));
        } else if c == ':' && next == Some(':') {
            tokens.push((Token::PathSep, line));
            i += 2;
        } else if c == '{' {
            tokens.push((Token::Open, line));
            i += 1;
        } else if c == '}' {
            tokens.push((Token::Close, line));
            i += 1;
        } else if c == ',' {
            tokens.push((Token::Comma, line));
            i += 1;
        } else {
            tokens.push((Token::Other, line));
            i += 1;
        }
    }
    tokens
}

/// At a raw string (r"..", r#".."#, br".."): how many hashes, and where its body starts.
fn raw_string_start(chars: &[char], at: usize) -> Option<(usize, usize)> {
    if at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_') {
        return None;
    }
    let mut i = at;
    if chars[i] == 'b' {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    (chars.get(i) == Some(&'"')).then_some((hashes, i + 1))
}

/// The module path a file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
pub fn module_path(relative: &str) -> Vec<String> {
    let without = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = without.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The first path segments named right after position `at` (an identifier, or each item of a
/// `{a, b::c}` group).
fn first_segments(tokens: &[(Token, usize)], at: usize) -> Vec<(String, usize)> {
    // The first segment, joined with the second when there is one (`render::escape`).
    let path_at = |k: usize, name: &str| match (tokens.get(k + 1), tokens.get(k + 2)) {
        (Some((Token::PathSep, _)), Some((Token::Ident(second), _))) => format!("{name}::{second}"),
        _ => name.to_string(),
    };
    match tokens.get(at) {
        Some((Token::Ident(name), line)) => vec![(path_at(at, name), *line)],
        Some((Token::Open, _)) => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut expect_item = true;
            for (k, (token, line)) in tokens.iter().enumerate().skip(at) {
                match token {
                    Token::Open => {
                        depth += 1;
                        if depth > 1 {
                            expect_item = false;
                        }
                    }
                    Token::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Comma if depth == 1 => expect_item = true,
                    Token::Ident(name) if depth == 1 && expect_item => {
                        out.push((path_at(k, name), *line));
                        expect_item = false;
                    }
                    _ => {
                        if depth == 1 {
                            expect_item = false;
                        }
                    }
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every reference from `relative` (a path below the crate's `src/`) to another top-level
/// module of the same crate.
pub fn references(relative: &str, source: &str, tops: &BTreeSet<String>) -> Vec<(String, usize)> {
    let file_module = module_path(relative);
    let Some(own_top) = file_module.first().cloned() else {
        return Vec::new();
    };
    let tokens = tokenize(source);
    let mut out = Vec::new();
    // Inline modules (`mod tests { .. }`): their names and the brace depth they close at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i].0;
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some((Token::Ident(name), _)), Some((Token::Open, _))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Token::Ident(word)
                if word == "crate" && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::PathSep) =>
            {
                out.extend(first_segments(&tokens, i + 2));
            }
            Token::Ident(word)
                if word == "super"
                    && !matches!(
                        tokens.get(i.wrapping_sub(1)).map(|t| &t.0),
                        Some(Token::PathSep)
                    ) =>
            {
                let mut ups = 0;
                let mut j = i;
                while matches!(tokens.get(j).map(|t| &t.0), Some(Token::Ident(w)) if w == "super")
                    && tokens.get(j + 1).map(|t| &t.0) == Some(&Token::PathSep)
                {
                    ups += 1;
                    j += 2;
                }
                let mut here = file_module.clone();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                if ups > 0 && ups >= here.len() {
                    out.extend(first_segments(&tokens, j));
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.into_iter()
        .filter(|(path, _)| {
            let first = path.split("::").next().unwrap_or_default();
            tops.contains(first) && (first != own_top || path.contains("::"))
        })
        .collect()
}

/// The strongly connected components of more than one module (Tarjan).
pub fn cycles(
    tops: &BTreeSet<String>,
    graph: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit(walk: &mut Walk, node: &str) {
        walk.index.insert(node.to_string(), walk.next);
        walk.low.insert(node.to_string(), walk.next);
        walk.next += 1;
        walk.stack.push(node.to_string());
        walk.on_stack.insert(node.to_string());
        let targets: Vec<String> = walk
            .graph
            .get(node)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for target in targets {
            if !walk.index.contains_key(&target) {
                visit(walk, &target);
                let low = walk.low[node].min(walk.low[&target]);
                walk.low.insert(node.to_string(), low);
            } else if walk.on_stack.contains(&target) {
                let low = walk.low[node].min(walk.index[&target]);
                walk.low.insert(node.to_string(), low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut component = Vec::new();
            loop {
                let member = walk.stack.pop().expect("on stack");
                walk.on_stack.remove(&member);
                let done = member == node;
                component.push(member);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for top in tops {
        if !walk.index.contains_key(top) {
            visit(&mut walk, top);
        }
    }
    walk.found
}
