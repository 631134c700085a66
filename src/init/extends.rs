//! Compose's `extends` and `include`, resolved before a project is read: a service built on
//! another (in the same file or another one) and files included into the project, their
//! relative paths rebased onto their own directory. What cannot be followed (a missing or
//! broken file, a remote include, a cycle) is named for a TODO instead; a file the
//! project's reader may not read, or one over a budget, ends init with an error.
use super::compose::{merge_keys, normalize, split_outside_braces, ComposeError};
use super::merge::{merged, without_extends};
use super::read::{Files, MAX_PROJECT_NODES};
use std::path::{Path, PathBuf};
use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

/// How many `extends`/`include` steps a chain may take (compose has no limit; a cycle has).
const MAX_DEPTH: usize = 8;

/// Where one compose file's relative paths start: on this machine (to read env files and
/// other compose files) and as the host names it (bind mounts, under --root without it).
#[derive(Clone)]
struct Dirs {
    disk: PathBuf,
    host: PathBuf,
}

impl Dirs {
    /// The directories of `rel`, a file named relative to these.
    fn of(&self, rel: &str) -> (PathBuf, Dirs) {
        let disk_file = self.disk.join(rel);
        let host_file = normalize(&self.host.join(rel));
        let dirs = Dirs {
            disk: disk_file
                .parent()
                .map_or_else(|| self.disk.clone(), Path::to_path_buf),
            host: host_file
                .parent()
                .map_or_else(|| self.host.clone(), Path::to_path_buf),
        };
        (disk_file, dirs)
    }
}

/// `doc` (the compose file `file`, whose directory the host names `host_dir`) with every
/// service's `extends` merged in and every `include`d file's services and volumes added
/// (the including file's own definitions win). What was not followed goes to `not_followed`.
/// Every file is read through `files` (the project's reader and budgets).
pub fn resolve(
    doc: Yaml,
    file: &Path,
    host_dir: &Path,
    not_followed: &mut Vec<String>,
    files: &mut Files<'_>,
) -> Result<Yaml, ComposeError> {
    let dirs = Dirs {
        disk: file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        host: host_dir.to_path_buf(),
    };
    let mut cx = Cx {
        file,
        not_followed,
        files,
        read_before: Default::default(),
    };
    resolve_in(doc, &dirs, 0, &mut cx)
}

/// What one resolution carries along: the project's compose file (for errors), what was
/// not followed, and the reads with their budgets.
struct Cx<'a, 'b> {
    file: &'a Path,
    not_followed: &'a mut Vec<String>,
    files: &'a mut Files<'b>,
    /// Each file named by includes and extends is read and parsed once (fifty services may
    /// extend one common file).
    read_before: std::collections::HashMap<PathBuf, Result<Yaml, String>>,
}

impl Cx<'_, '_> {
    /// Counts the nodes of `y`, built once more for the project.
    fn charge(&mut self, y: &Yaml) -> Result<(), ComposeError> {
        if self.files.charge_nodes(nodes(y)) {
            Ok(())
        } else {
            Err(ComposeError::Shape {
                path: self.file.to_path_buf(),
                what: format!(
                    "more than {MAX_PROJECT_NODES} nodes with extends and includes merged"
                ),
            })
        }
    }

    /// One compose file named by an include or extends: Ok(Err(why)) when it cannot be
    /// followed (missing, not YAML: a TODO), Err when init must stop (a file the reader may
    /// not read, a budget exceeded).
    /// `what` says which include or extends named it, for the error.
    fn read(&mut self, path: &Path, what: String) -> Result<Result<Yaml, String>, ComposeError> {
        if let Some(known) = self.read_before.get(path) {
            let known = known.clone();
            if let Ok(doc) = &known {
                self.charge(doc)?;
            }
            return Ok(known);
        }
        let via = |source: ComposeError| ComposeError::Via {
            path: self.file.to_path_buf(),
            what,
            source: Box::new(source),
        };
        let parsed = match self.files.read(path) {
            Ok(text) => match super::yaml::load_first(&text) {
                Ok(doc) => Ok(merge_keys(doc)),
                Err(e) if e.is_budget() => {
                    return Err(via(ComposeError::Yaml {
                        path: path.to_path_buf(),
                        source: e,
                    }))
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) if e.is_not_found() => Err("no such file".into()),
            Err(e) => return Err(via(e.into())),
        };
        if let Ok(doc) = &parsed {
            self.charge(doc)?;
        }
        self.read_before.insert(path.to_path_buf(), parsed.clone());
        Ok(parsed)
    }
}

/// How many nodes `y` holds (its depth is bounded by the YAML budget).
fn nodes(y: &Yaml) -> usize {
    match y {
        Yaml::Array(a) => 1 + a.iter().map(nodes).sum::<usize>(),
        Yaml::Hash(h) => 1 + h.iter().map(|(k, v)| nodes(k) + nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

fn resolve_in(doc: Yaml, dirs: &Dirs, depth: usize, cx: &mut Cx) -> Result<Yaml, ComposeError> {
    let Yaml::Hash(mut top) = doc else {
        return Ok(doc);
    };
    let services_key = Yaml::String("services".into());
    if let Some(Yaml::Hash(services)) = top.get(&services_key).cloned() {
        let mut out = Hash::new();
        for (name, svc) in &services {
            let label = name.as_str().unwrap_or("?");
            out.insert(
                name.clone(),
                extended(svc, &services, dirs, depth, label, cx)?,
            );
        }
        top.insert(services_key.clone(), Yaml::Hash(out));
    }
    if let Some(include) = top.remove(&Yaml::String("include".into())) {
        let items = match include {
            Yaml::Array(a) => a,
            other => vec![other],
        };
        for item in items {
            include_one(&mut top, &item, dirs, depth, cx)?;
        }
    }
    Ok(Yaml::Hash(top))
}

/// Adds the services and volumes of one `include` entry (a path, or a mapping with `path`
/// and maybe `project_directory`) that `top` does not define itself.
fn include_one(
    top: &mut Hash,
    item: &Yaml,
    dirs: &Dirs,
    depth: usize,
    cx: &mut Cx,
) -> Result<(), ComposeError> {
    let paths: Vec<String> = match item {
        Yaml::String(p) => vec![p.clone()],
        Yaml::Hash(_) => match &item["path"] {
            Yaml::String(p) => vec![p.clone()],
            Yaml::Array(a) => a
                .iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if paths.is_empty() {
        cx.not_followed
            .push("an `include` entry without a path".into());
        return Ok(());
    }
    for path in paths {
        if path.contains("://") || path.starts_with("git@") {
            cx.not_followed
                .push(format!("`include` of {path} (remote)"));
            continue;
        }
        if depth >= MAX_DEPTH {
            cx.not_followed.push(format!(
                "`include` of {path} (circular or deeper than {MAX_DEPTH})"
            ));
            continue;
        }
        let (disk_file, mut inc_dirs) = dirs.of(&path);
        if let Some(project_dir) = item["project_directory"].as_str() {
            inc_dirs = Dirs {
                disk: dirs.disk.join(project_dir),
                host: normalize(&dirs.host.join(project_dir)),
            };
        }
        let doc = match cx.read(&disk_file, format!("`include` of {path}"))? {
            Ok(doc) => doc,
            Err(why) => {
                cx.not_followed.push(format!("`include` of {path} ({why})"));
                continue;
            }
        };
        let Yaml::Hash(inc) = resolve_in(doc, &inc_dirs, depth + 1, cx)? else {
            continue;
        };
        for key in ["services", "volumes"] {
            let key = Yaml::String(key.into());
            let Some(Yaml::Hash(theirs)) = inc.get(&key) else {
                continue;
            };
            let ours = top
                .entry(key.clone())
                .or_insert_with(|| Yaml::Hash(Hash::new()));
            let Yaml::Hash(ours) = ours else { continue };
            for (name, value) in theirs {
                let value = if key.as_str() == Some("services") {
                    rebased(value.clone(), &inc_dirs)
                } else {
                    value.clone()
                };
                ours.entry(name.clone()).or_insert(value);
            }
        }
    }
    Ok(())
}

/// Service `svc` with its `extends` (if any) merged in.
fn extended(
    svc: &Yaml,
    services: &Hash,
    dirs: &Dirs,
    depth: usize,
    label: &str,
    cx: &mut Cx,
) -> Result<Yaml, ComposeError> {
    let ext = &svc["extends"];
    if ext.is_badvalue() {
        return Ok(svc.clone());
    }
    let (base_name, base_file) = match ext {
        Yaml::String(s) => (Some(s.clone()), None),
        _ => (
            ext["service"].as_str().map(String::from),
            ext["file"].as_str().map(String::from),
        ),
    };
    let skip = |cx: &mut Cx, why: String| {
        cx.not_followed
            .push(format!("`extends` of service {label} ({why})"));
        Ok(without_extends(svc))
    };
    let Some(base_name) = base_name else {
        return skip(cx, "no `service` named".into());
    };
    if depth >= MAX_DEPTH {
        return skip(cx, format!("circular or deeper than {MAX_DEPTH}"));
    }
    let base = match base_file {
        None => match services.get(&Yaml::String(base_name.clone())) {
            Some(base) => {
                // Counted before it is copied.
                cx.charge(base)?;
                extended(base, services, dirs, depth + 1, &base_name, cx)?
            }
            None => return skip(cx, format!("no service {base_name} in this file")),
        },
        Some(f) => {
            let (disk_file, base_dirs) = dirs.of(&f);
            let doc = match cx.read(&disk_file, format!("`extends` of service {label}"))? {
                Ok(doc) => doc,
                Err(why) => return skip(cx, format!("{f}: {why}")),
            };
            let Yaml::Hash(base_services) = &doc["services"] else {
                return skip(cx, format!("{f} has no services"));
            };
            let Some(base) = base_services.get(&Yaml::String(base_name.clone())) else {
                return skip(cx, format!("no service {base_name} in {f}"));
            };
            cx.charge(base)?;
            let base = extended(base, base_services, &base_dirs, depth + 1, &base_name, cx)?;
            rebased(base, &base_dirs)
        }
    };
    Ok(merged(base, svc))
}

/// Whether a bind source is relative to the compose file's directory.
fn relative(source: &str) -> bool {
    source == "." || source.starts_with("./") || source.starts_with("../")
}

/// Service `svc` of a file in `dirs` with its relative bind sources made absolute host paths
/// and its env files absolute paths on this machine, so it reads the same in another file.
fn rebased(svc: Yaml, dirs: &Dirs) -> Yaml {
    let Yaml::Hash(mut h) = svc else {
        return svc;
    };
    let volumes = Yaml::String("volumes".into());
    if let Some(Yaml::Array(vols)) = h.get(&volumes).cloned() {
        let vols = vols
            .into_iter()
            .map(|v| match v {
                Yaml::String(s) => {
                    let mut parts = split_outside_braces(&s);
                    if parts.len() > 1 && relative(&parts[0]) {
                        parts[0] = normalize(&dirs.host.join(&parts[0])).display().to_string();
                    }
                    Yaml::String(parts.join(":"))
                }
                Yaml::Hash(mut m) => {
                    let source = Yaml::String("source".into());
                    if m.get(&Yaml::String("type".into())).and_then(Yaml::as_str) == Some("bind") {
                        if let Some(Yaml::String(s)) = m.get(&source).cloned() {
                            if relative(&s) {
                                let abs = normalize(&dirs.host.join(s)).display().to_string();
                                m.insert(source, Yaml::String(abs));
                            }
                        }
                    }
                    Yaml::Hash(m)
                }
                other => other,
            })
            .collect();
        h.insert(volumes, Yaml::Array(vols));
    }
    let env_file = Yaml::String("env_file".into());
    let absolute = |p: &str| {
        if Path::new(p).is_absolute() {
            p.to_string()
        } else {
            dirs.disk.join(p).display().to_string()
        }
    };
    match h.get(&env_file).cloned() {
        Some(Yaml::String(p)) => {
            h.insert(env_file, Yaml::String(absolute(&p)));
        }
        Some(Yaml::Array(a)) => {
            let a = a
                .into_iter()
                .map(|e| match e {
                    Yaml::String(p) => Yaml::String(absolute(&p)),
                    Yaml::Hash(mut m) => {
                        let path = Yaml::String("path".into());
                        if let Some(Yaml::String(p)) = m.get(&path).cloned() {
                            m.insert(path, Yaml::String(absolute(&p)));
                        }
                        Yaml::Hash(m)
                    }
                    other => other,
                })
                .collect();
            h.insert(env_file, Yaml::Array(a));
        }
        _ => {}
    }
    Yaml::Hash(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load(file: &Path, host_dir: &str) -> (Yaml, Vec<String>) {
        let text = std::fs::read_to_string(file).unwrap();
        let doc = merge_keys(crate::init::yaml::load_first(&text).unwrap());
        let mut not_followed = Vec::new();
        let rights = crate::init::read::Rights::new(Path::new("/nonexistent"));
        let mut files = Files::per_file(&rights);
        let doc = resolve(
            doc,
            file,
            Path::new(host_dir),
            &mut not_followed,
            &mut files,
        )
        .unwrap();
        (doc, not_followed)
    }

    fn strs(v: &Yaml) -> Vec<String> {
        v.as_vec()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn extends_in_the_same_file_merges_environment_and_volumes_by_target() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "compose.yaml",
            "services:\n  base:\n    image: postgres:16\n    user: \"999\"\n    environment:\n      - A=1\n      - B=2\n    volumes:\n      - ./db:/var/lib/db\n      - ./logs:/logs\n  db:\n    extends: base\n    environment:\n      B: three\n    volumes:\n      - /srv/db:/var/lib/db\n",
        );
        let (doc, not_followed) = load(&f, "/opt/app");
        assert!(not_followed.is_empty(), "{not_followed:?}");
        let db = &doc["services"]["db"];
        assert_eq!(db["image"].as_str(), Some("postgres:16"));
        assert_eq!(db["user"].as_str(), Some("999"));
        assert_eq!(db["environment"]["A"].as_str(), Some("1"));
        assert_eq!(db["environment"]["B"].as_str(), Some("three"));
        assert_eq!(
            strs(&db["volumes"]),
            ["./logs:/logs", "/srv/db:/var/lib/db"]
        );
        assert!(db["extends"].is_badvalue());
    }

    #[test]
    fn extends_of_another_file_takes_its_paths_from_that_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "common/services.yaml",
            "services:\n  web:\n    image: nginx\n    env_file: web.env\n    volumes:\n      - ./html:/usr/share/nginx/html:ro\n      - cache:/cache\n",
        );
        let f = write(
            dir.path(),
            "app/compose.yaml",
            "services:\n  front:\n    extends:\n      file: ../common/services.yaml\n      service: web\n",
        );
        let (doc, not_followed) = load(&f, "/opt/app");
        assert!(not_followed.is_empty(), "{not_followed:?}");
        let front = &doc["services"]["front"];
        assert_eq!(
            strs(&front["volumes"]),
            ["/opt/common/html:/usr/share/nginx/html:ro", "cache:/cache"]
        );
        assert_eq!(
            front["env_file"].as_str().map(String::from),
            Some(
                dir.path()
                    .join("app/../common/web.env")
                    .display()
                    .to_string()
            )
        );
    }

    #[test]
    fn include_adds_services_and_volumes_rebased_and_keeps_the_including_files_own() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "db/compose.yaml",
            "services:\n  db:\n    image: redis\n    volumes:\n      - ./data:/data\n  web:\n    image: theirs\nvolumes:\n  shared: {}\n",
        );
        write(
            dir.path(),
            "cache/compose.yaml",
            "services:\n  cache:\n    image: valkey\n    volumes:\n      - ./cache:/data\n",
        );
        let f = write(
            dir.path(),
            "compose.yaml",
            "include:\n  - db/compose.yaml\n  - path: cache/compose.yaml\n    project_directory: srv\nservices:\n  web:\n    image: ours\n",
        );
        let (doc, not_followed) = load(&f, "/opt/app");
        assert!(not_followed.is_empty(), "{not_followed:?}");
        assert_eq!(doc["services"]["web"]["image"].as_str(), Some("ours"));
        assert_eq!(
            strs(&doc["services"]["db"]["volumes"]),
            ["/opt/app/db/data:/data"]
        );
        assert_eq!(
            strs(&doc["services"]["cache"]["volumes"]),
            ["/opt/app/srv/cache:/data"]
        );
        assert!(doc["volumes"]["shared"].as_hash().is_some());
        assert!(doc["include"].is_badvalue());
    }

    #[test]
    fn what_cannot_be_followed_is_named_and_the_service_kept() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "compose.yaml",
            "include:\n  - missing.yaml\n  - oci://registry/x:1\nservices:\n  a:\n    extends: b\n    image: a\n  b:\n    extends: a\n  c:\n    extends:\n      file: gone.yaml\n      service: x\n    image: c\n",
        );
        let (doc, not_followed) = load(&f, "/opt/app");
        assert_eq!(doc["services"]["c"]["image"].as_str(), Some("c"));
        let text = not_followed.join("\n");
        assert!(text.contains("`include` of missing.yaml ("), "{text}");
        assert!(
            text.contains("`include` of oci://registry/x:1 (remote)"),
            "{text}"
        );
        assert!(
            text.contains("`extends` of service c (gone.yaml: "),
            "{text}"
        );
        assert!(text.contains("circular or deeper than 8"), "{text}");
    }
}
