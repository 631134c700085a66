//! What the hand-off needs from a stack's compose files: the images its services name and the
//! named volumes it declares, after `${VAR}` interpolation from the stack's env files (as
//! compose does). YAML is read with yaml-rust2, the crate the compose import also uses. Also
//! the copy the service runs: the file with its relative paths made absolute.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// A named volume the compose file declares.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ComposeVolume {
    /// The key under top-level `volumes:`.
    pub key: String,
    /// The volume's name in the engine: `name:` or `PROJECT_KEY`.
    pub name: String,
    /// `external: true`: made outside this project.
    pub external: bool,
}

/// The parts of one or more compose files the hand-off uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComposeFacts {
    /// Images of the services, in file order, without repeats.
    pub images: Vec<String>,
    pub volumes: Vec<ComposeVolume>,
    /// Services in file order, with the networks they join (src/reach).
    pub services: Vec<ComposeService>,
    /// Top-level networks declared `external`: key -> name in the engine.
    pub external_networks: BTreeMap<String, String>,
}

/// A service's name and networking as the compose files declare it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComposeService {
    pub name: String,
    /// Keys of the networks it joins (list or mapping form).
    pub networks: Vec<String>,
    pub network_mode: Option<String>,
}

/// `KEY=value` lines of an env file, as compose reads them: blank lines and `#` comments
/// skipped, an `export ` prefix allowed, one pair of matching quotes around the value removed.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| {
                (value.len() >= 2 && value.starts_with(*a) && value.ends_with(*b))
                    .then(|| &value[1..value.len() - 1])
            })
            .unwrap_or(value);
        out.insert(key.trim().to_string(), value.to_string());
    }
    out
}

/// Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?error}`, `${VAR?error}`. An unset variable is empty.
pub fn interpolate(s: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {s:?}"))?;
            out.push_str(&expand(&r[..end], env, s)?);
            rest = &r[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(env.get(&after[..len]).map_or("", |v| v.as_str()));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(inner: &str, env: &BTreeMap<String, String>, whole: &str) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return Err(format!("bad substitution `${{{inner}}}` in {whole:?}"));
    }
    let value = env.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let value = value.cloned().unwrap_or_default();
    let arg = |p: &str| op[p.len()..].to_string();
    Ok(match op {
        "" => value,
        o if o.starts_with(":-") => {
            if non_empty {
                value
            } else {
                arg(":-")
            }
        }
        o if o.starts_with('-') => {
            if set {
                value
            } else {
                arg("-")
            }
        }
        o if o.starts_with(":+") => {
            if non_empty {
                arg(":+")
            } else {
                String::new()
            }
        }
        o if o.starts_with('+') => {
            if set {
                arg("+")
            } else {
                String::new()
            }
        }
        o if o.starts_with(":?") || o.starts_with('?') => {
            let strict = o.starts_with(":?");
            if (strict && non_empty) || (!strict && set) {
                value
            } else {
                let p = if strict { ":?" } else { "?" };
                return Err(format!("variable {name} is required: {}", arg(p)));
            }
        }
        _ => return Err(format!("bad substitution `${{{inner}}}` in {whole:?}")),
    })
}

fn string_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the images and named volumes of one compose file's text and adds them to `into`
/// (a later file overrides an earlier one's volume of the same key, as `-f a -f b` does).
pub fn parse_into(
    text: &str,
    env: &BTreeMap<String, String>,
    project: &str,
    into: &mut ComposeFacts,
) -> Result<(), String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    if !matches!(doc, Yaml::Hash(_)) {
        return Err("the top level is not a mapping".into());
    }
    if let Yaml::Hash(services) = &doc["services"] {
        for (name, service) in services {
            let Some(sname) = string_of(name) else {
                continue;
            };
            let networks: Vec<String> = match &service["networks"] {
                Yaml::Array(a) => a.iter().filter_map(string_of).collect(),
                Yaml::Hash(h) => h.keys().filter_map(string_of).collect(),
                _ => Vec::new(),
            };
            let network_mode = string_of(&service["network_mode"]);
            match into.services.iter_mut().find(|x| x.name == sname) {
                Some(old) => {
                    // `-f a -f b`: lists add up, a scalar is replaced.
                    for n in networks {
                        if !old.networks.contains(&n) {
                            old.networks.push(n);
                        }
                    }
                    if network_mode.is_some() {
                        old.network_mode = network_mode;
                    }
                }
                None => into.services.push(ComposeService {
                    name: sname,
                    networks,
                    network_mode,
                }),
            }
            let Some(image) = service["image"].as_str() else {
                continue;
            };
            let image = interpolate(image, env).map_err(|e| {
                format!(
                    "service {}: image: {e}",
                    string_of(name).unwrap_or_default()
                )
            })?;
            if !image.is_empty() && !into.images.contains(&image) {
                into.images.push(image);
            }
        }
    }
    if let Yaml::Hash(networks) = &doc["networks"] {
        for (key, spec) in networks {
            let Some(key) = string_of(key) else { continue };
            let name = match &spec["external"] {
                Yaml::Boolean(true) => spec["name"].as_str().unwrap_or(&key).to_string(),
                Yaml::Hash(_) => spec["external"]["name"]
                    .as_str()
                    .or(spec["name"].as_str())
                    .unwrap_or(&key)
                    .to_string(),
                _ => {
                    into.external_networks.remove(&key);
                    continue;
                }
            };
            into.external_networks.insert(key, name);
        }
    }
    if let Yaml::Hash(volumes) = &doc["volumes"] {
        for (key, spec) in volumes {
            let key = string_of(key).ok_or("a volume key is not a string")?;
            let external = match &spec["external"] {
                Yaml::Boolean(b) => *b,
                Yaml::Hash(_) => true,
                _ => false,
            };
            let named = match spec["name"].as_str() {
                Some(n) => Some(interpolate(n, env).map_err(|e| format!("volume {key}: {e}"))?),
                None => None,
            };
            let name = match named {
                Some(n) => n,
                None if external => key.clone(),
                None => format!("{project}_{key}"),
            };
            let v = ComposeVolume {
                key: key.clone(),
                name,
                external,
            };
            match into.volumes.iter_mut().find(|x| x.key == key) {
                Some(old) => *old = v,
                None => into.volumes.push(v),
            }
        }
    }
    Ok(())
}

/// Whether a path of a compose file (env file, build context, included file) is relative to
/// the compose file's directory: not absolute, not `~`, not a variable, not a URL.
fn relative_path(p: &str) -> bool {
    !(p.is_empty()
        || p.starts_with('/')
        || p.starts_with('~')
        || p.starts_with('$')
        || p.contains("://")
        || p.starts_with("git@"))
}

/// Whether a short-syntax volume source is a host path relative to the compose file (a bare
/// name is a named volume).
fn relative_source(p: &str) -> bool {
    p == "." || p == ".." || p.starts_with("./") || p.starts_with("../")
}

/// `dir/p`, with `.` and `..` resolved by name (compose does the same).
fn joined(dir: &Path, p: &str) -> String {
    let mut out = PathBuf::new();
    for c in dir.join(p).components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.display().to_string()
}

fn rebase_string(y: &mut Yaml, dir: &Path, test: fn(&str) -> bool) {
    if let Yaml::String(s) = y {
        if test(s) {
            *s = joined(dir, s);
        }
    }
}

/// A string, a list of strings, or (`key`) mappings holding one.
fn rebase_paths(y: &mut Yaml, dir: &Path, key: &str) {
    match y {
        Yaml::String(_) => rebase_string(y, dir, relative_path),
        Yaml::Array(items) => items.iter_mut().for_each(|i| rebase_paths(i, dir, key)),
        Yaml::Hash(h) => {
            if let Some(v) = h.get_mut(&Yaml::String(key.into())) {
                rebase_paths(v, dir, key);
            }
        }
        _ => {}
    }
}

fn rebase_service(svc: &mut Yaml, dir: &Path) {
    let Yaml::Hash(h) = svc else {
        return;
    };
    if let Some(Yaml::Array(vols)) = h.get_mut(&Yaml::String("volumes".into())) {
        for v in vols.iter_mut() {
            match v {
                Yaml::String(s) => {
                    if let Some((src, rest)) = s.split_once(':') {
                        if relative_source(src) {
                            *s = format!("{}:{rest}", joined(dir, src));
                        }
                    }
                }
                Yaml::Hash(m) => {
                    if let Some(src) = m.get_mut(&Yaml::String("source".into())) {
                        rebase_string(src, dir, relative_source);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(b) = h.get_mut(&Yaml::String("build".into())) {
        match b {
            Yaml::String(_) => rebase_string(b, dir, relative_path),
            Yaml::Hash(m) => {
                if let Some(c) = m.get_mut(&Yaml::String("context".into())) {
                    rebase_string(c, dir, relative_path);
                }
            }
            _ => {}
        }
    }
    if let Some(e) = h.get_mut(&Yaml::String("env_file".into())) {
        rebase_paths(e, dir, "path");
    }
    if let Some(Yaml::Hash(m)) = h.get_mut(&Yaml::String("extends".into())) {
        if let Some(f) = m.get_mut(&Yaml::String("file".into())) {
            rebase_string(f, dir, relative_path);
        }
    }
}

/// The text isolate runs instead of a compose file: its first document with every path
/// relative to the file's directory `dir` made absolute (bind sources, build contexts, env
/// files, extended and included files, secrets and configs), so the copy, kept elsewhere,
/// means what the original means. Variables are left for compose to interpolate.
pub fn rebased_copy(text: &str, dir: &Path) -> Result<String, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let mut doc = docs
        .into_iter()
        .next()
        .unwrap_or(Yaml::Hash(Default::default()));
    let Yaml::Hash(top) = &mut doc else {
        return Err("the top level is not a mapping".into());
    };
    if let Some(Yaml::Hash(services)) = top.get_mut(&Yaml::String("services".into())) {
        for (_, svc) in services.iter_mut() {
            rebase_service(svc, dir);
        }
    }
    if let Some(inc) = top.get_mut(&Yaml::String("include".into())) {
        rebase_paths(inc, dir, "path");
        if let Yaml::Array(items) = inc {
            for i in items.iter_mut() {
                if let Yaml::Hash(m) = i {
                    for key in ["project_directory", "env_file"] {
                        if let Some(v) = m.get_mut(&Yaml::String(key.into())) {
                            rebase_paths(v, dir, "path");
                        }
                    }
                }
            }
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Yaml::Hash(items)) = top.get_mut(&Yaml::String(section.into())) {
            for (_, item) in items.iter_mut() {
                if let Yaml::Hash(m) = item {
                    if let Some(f) = m.get_mut(&Yaml::String("file".into())) {
                        rebase_string(f, dir, relative_path);
                    }
                }
            }
        }
    }
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(&doc)
        .map_err(|e| format!("cannot write the copy: {e}"))?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_files_read_as_compose_reads_them() {
        let e = parse_env_file("# c\n\nA=1\nexport B = \"two words\"\nC='x'\nD=\nnot a pair\n");
        assert_eq!(
            e,
            env(&[("A", "1"), ("B", "two words"), ("C", "x"), ("D", "")])
        );
    }

    #[test]
    fn interpolation_follows_compose() {
        let e = env(&[("TAG", "1.2"), ("EMPTY", "")]);
        let i = |s| interpolate(s, &e);
        assert_eq!(i("img:${TAG}").unwrap(), "img:1.2");
        assert_eq!(i("img:$TAG-x").unwrap(), "img:1.2-x");
        assert_eq!(i("a$$b").unwrap(), "a$b");
        assert_eq!(i("${NOPE:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").unwrap(), "");
        assert_eq!(i("${TAG:+yes}").unwrap(), "yes");
        assert_eq!(i("${NOPE}").unwrap(), "");
        assert_eq!(
            i("${NOPE:?set NOPE}").unwrap_err(),
            "variable NOPE is required: set NOPE"
        );
        assert!(i("${TAG").is_err());
    }

    #[test]
    fn images_and_volumes_of_a_compose_file() {
        let text = r#"
services:
  web:
    image: localhost/app:${TAG:-latest}
    volumes: [db:/var/lib/db, /srv/app:/data]
  worker:
    image: localhost/app:${TAG:-latest}
  built:
    build: .
volumes:
  db:
  cache:
    name: ${CACHE_NAME}
  shared:
    external: true
"#;
        let mut f = ComposeFacts::default();
        parse_into(text, &env(&[("CACHE_NAME", "models")]), "app", &mut f).unwrap();
        assert_eq!(f.images, vec!["localhost/app:latest".to_string()]);
        let names: Vec<(&str, &str, bool)> = f
            .volumes
            .iter()
            .map(|v| (v.key.as_str(), v.name.as_str(), v.external))
            .collect();
        assert_eq!(
            names,
            vec![
                ("db", "app_db", false),
                ("cache", "models", false),
                ("shared", "shared", true)
            ]
        );
    }

    #[test]
    fn broken_compose_files_are_errors() {
        let mut f = ComposeFacts::default();
        assert!(parse_into("services: [", &BTreeMap::new(), "p", &mut f).is_err());
        assert_eq!(
            parse_into("- a\n- b\n", &BTreeMap::new(), "p", &mut f).unwrap_err(),
            "the top level is not a mapping"
        );
    }

    #[test]
    fn a_copy_keeps_every_relative_path_pointing_at_the_original_directory() {
        let text = r#"
services:
  web:
    image: app:${TAG}
    build: ./web
    env_file: [./web.env, {path: ../shared.env}, /etc/abs.env]
    volumes:
      - ./data:/data:ro
      - ../up:/up
      - named:/named
      - /abs:/abs
      - {type: bind, source: ./cfg, target: /cfg}
    extends: {file: ./base.yaml, service: base}
    command: ["sh", "-c", "echo $$(id -u)"]
    user: "999:999"
  api:
    build: {context: ., dockerfile: Dockerfile.api}
include: [./more.yaml]
secrets:
  token: {file: ./token.txt}
volumes:
  named:
"#;
        let out = rebased_copy(text, Path::new("/srv/app/conf")).unwrap();
        for want in [
            "build: /srv/app/conf/web\n",
            "/srv/app/conf/web.env",
            "/srv/app/shared.env",
            "/etc/abs.env",
            "/srv/app/conf/data:/data:ro",
            "/srv/app/up:/up",
            "named:/named",
            "/abs:/abs",
            "/srv/app/conf/cfg",
            "/srv/app/conf/base.yaml",
            "context: /srv/app/conf\n",
            "dockerfile: Dockerfile.api",
            "/srv/app/conf/more.yaml",
            "/srv/app/conf/token.txt",
            "app:${TAG}",
            "$$(id -u)",
        ] {
            assert!(out.contains(want), "{want} missing in {out}");
        }
        // Read back, it is the same document apart from the paths.
        let back = &YamlLoader::load_from_str(&out).unwrap()[0];
        assert_eq!(back["services"]["web"]["user"].as_str(), Some("999:999"));
        assert!(back["volumes"]["named"].is_null());
    }
}
