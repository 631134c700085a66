//! The parts of a compose file that decide a policy: per service its image, user, environment
//! and mounts (short and long syntax, `:ro`, podman's `:U`), and the top-level named volumes
//! (driver options that put them on NFS/CIFS). Parsed with yaml-rust2 (pure Rust, no unsafe
//! C port); `<<` merge keys and anchors are resolved, `extends` and `include` followed.
use super::interpolate::{self, Vars};
pub(super) use super::mounts::split_outside_braces;
use super::mounts::{mount, MountError};
use super::read::{Files, ReadError};
use super::yaml::YamlError;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use yaml_rust2::Yaml;

/// Why a compose project could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{}: {source}", path.display())]
    Yaml {
        path: PathBuf,
        #[source]
        source: YamlError,
    },
    #[error("{}: {what}", path.display())]
    Shape { path: PathBuf, what: String },
    /// A file an `include` or `extends` of `path` names could not be read.
    #[error("{}: {what}: {source}", path.display())]
    Via {
        path: PathBuf,
        what: String,
        #[source]
        source: Box<ComposeError>,
    },
    #[error("{}: {source}", path.display())]
    Interpolate {
        path: PathBuf,
        #[source]
        source: interpolate::InterpolateError,
    },
    #[error("{}: {message}", path.display())]
    EnvFile { path: PathBuf, message: String },
}

/// Where a mount comes from, after interpolation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A host path (relative paths resolved against the project directory).
    Bind(PathBuf),
    /// A named volume of the project.
    Named(String),
    /// tmpfs, anonymous volumes: nothing on the host to own.
    Ephemeral,
    /// Could not be decided: the text as written and why.
    Unknown { text: String, why: String },
    /// A placeholder the upstream file ships (`/path/to/movies`): the text as written and
    /// which kind. No container can start with it.
    Placeholder { text: String, why: &'static str },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: Source,
    /// The source as written in the compose file (before interpolation).
    pub written: String,
    pub target: String,
    pub read_only: bool,
    /// podman's `:U`: chown the source to the container user at every start.
    pub chown: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    pub user: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// Networking, for what connects projects (`connect`): `container_name`, the networks it
    /// joins (keys), `network_mode`, `depends_on` names, and container ports from `ports`
    /// and `expose`.
    pub container_name: Option<String>,
    pub networks: Vec<String>,
    pub network_mode: Option<String>,
    pub depends_on: Vec<String>,
    pub ports: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedVolume {
    pub name: String,
    /// `name:`: the volume's name in the engine when it is not `PROJECT_KEY`.
    pub engine_name: Option<String>,
    pub external: bool,
    /// `driver_opts.type` (nfs, nfs4, cifs, ...) and `driver_opts.device`.
    pub fs_type: Option<String>,
    pub device: Option<String>,
}

/// An env file a service names (`env_file:`), as compose resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileUse {
    /// On this machine while loading; `init` turns it into the path the host names.
    pub path: PathBuf,
    /// The services that name it, in file order.
    pub services: Vec<String>,
    /// Whether it was there to read (compose fails without it, unless `required: false`).
    pub found: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// The compose project name (`name:`, COMPOSE_PROJECT_NAME, or the directory's name).
    pub name: String,
    /// Where `name` came from, for the draft's comment.
    pub name_source: String,
    /// The first compose file as the host names it (under --root: without the root).
    pub file: PathBuf,
    /// Every compose file read, in `-f` order (the first, then its overrides), as the host
    /// names them.
    pub files: Vec<PathBuf>,
    /// The services' env files, in file order.
    pub env_files: Vec<EnvFileUse>,
    /// The `.env` the compose files were interpolated from, as the host names it (set by
    /// `init`, which reads it).
    pub dot_env: Option<PathBuf>,
    pub services: Vec<Service>,
    pub volumes: BTreeMap<String, NamedVolume>,
    /// Variables used without a value and without a default.
    pub unresolved: Vec<String>,
    /// `include`s and `extends` init could not follow (and why), for a TODO.
    pub not_followed: Vec<String>,
    /// Top-level networks declared `external`: key -> name in the engine.
    pub external_networks: BTreeMap<String, String>,
}

/// The file names compose looks for, in its order.
pub const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The files podman-compose reads from a project directory when no `-f` is given: every one
/// of these that exists, in this order, merged (podman-compose's `COMPOSE_DEFAULT_LS`). An
/// override file is read with the file before it, never alone.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "compose.override.yaml",
    "compose.override.yml",
    "podman-compose.yaml",
    "podman-compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
    "container-compose.yml",
    "container-compose.yaml",
    "container-compose.override.yml",
    "container-compose.override.yaml",
];

/// A project name as podman-compose makes one from a directory name or
/// COMPOSE_PROJECT_NAME: lower-cased, every character but `a-z`, `0-9`, `-` and `_` dropped.
pub fn normalize_project_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect()
}

/// Removes `.` and `..` and duplicate or trailing slashes, without touching the filesystem.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves `<<: *anchor` merge keys (YAML 1.1, which compose files use) everywhere.
pub(super) fn merge_keys(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let mut merged: Vec<Yaml> = Vec::new();
            for (k, v) in h {
                if k.as_str() == Some("<<") {
                    match v {
                        Yaml::Array(items) => merged.extend(items),
                        other => merged.push(other),
                    }
                } else {
                    out.insert(k, merge_keys(v));
                }
            }
            for m in merged {
                if let Yaml::Hash(mh) = merge_keys(m) {
                    for (k, v) in mh {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

/// Reads one compose project from `compose` (on this machine: the first file, then the
/// files merged over it, as `-f a -f b`); `host_files` and `host_dir` are those files and
/// the first one's directory as the host under --root names them (relative paths of every
/// file resolve against `host_dir`, as compose resolves them against the project
/// directory). Every file is read through `files`: with the rights of the user who owns the
/// project, within its budgets.
pub fn load(
    compose: &[PathBuf],
    host_files: &[PathBuf],
    host_dir: &Path,
    vars: &Vars,
    files: &mut Files<'_>,
) -> Result<Project, ComposeError> {
    let file = compose
        .first()
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("compose.yaml"));
    let mut not_followed = Vec::new();
    let mut doc: Option<Yaml> = None;
    for f in compose {
        let text = files.read(f)?;
        let one = super::yaml::load_first(&text).map_err(|e| ComposeError::Yaml {
            path: f.to_path_buf(),
            source: e,
        })?;
        let one = merge_keys(one);
        let one = super::extends::resolve(one, f, host_dir, &mut not_followed, files)?;
        doc = Some(match doc {
            None => one,
            Some(base) => super::merge::merged_files(base, one),
        });
    }
    let doc = doc.unwrap_or(Yaml::Null);
    let shape = |what: String| ComposeError::Shape {
        path: file.to_path_buf(),
        what,
    };
    let mut unresolved = Vec::new();
    let mut interp = |s: &str| -> Result<(String, Vec<String>), ComposeError> {
        let r = interpolate::interpolate(s, vars).map_err(|e| ComposeError::Interpolate {
            path: file.to_path_buf(),
            source: e,
        })?;
        unresolved.extend(r.unresolved.iter().cloned());
        Ok((r.value, r.unresolved))
    };

    let dir_name = host_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (name, name_source) = match (scalar(&doc["name"]), vars.get("COMPOSE_PROJECT_NAME")) {
        (Some(n), _) => (interp(&n)?.0, "its `name:` key".to_string()),
        (None, Some(n)) => (
            normalize_project_name(n),
            format!(
                "COMPOSE_PROJECT_NAME, as podman-compose normalises it (a podman-compose that takes it from the shell only would name it {:?}: `podman ps -a --format '{{{{.Labels}}}}'` shows which)",
                normalize_project_name(&dir_name)
            ),
        ),
        (None, None) => (
            normalize_project_name(&dir_name),
            format!(
                "its directory's name {:?}, as podman-compose normalises it (no `name:` key)",
                dir_name
            ),
        ),
    };
    let mut env_uses: Vec<EnvFileUse> = Vec::new();

    let mut services = Vec::new();
    match &doc["services"] {
        Yaml::Hash(h) => {
            for (k, v) in h {
                let sname =
                    scalar(k).ok_or_else(|| shape("a service name is not a string".into()))?;
                let mut environment = BTreeMap::new();
                // env_file first: `environment` wins over it, as in compose.
                let env_files: Vec<String> = match &v["env_file"] {
                    Yaml::Array(a) => a
                        .iter()
                        .filter_map(|e| scalar(e).or_else(|| scalar(&e["path"])))
                        .collect(),
                    other => scalar(other).into_iter().collect(),
                };
                for ef in env_files {
                    let (ef, _) = interp(&ef)?;
                    let disk = file.parent().unwrap_or(Path::new(".")).join(&ef);
                    let read = files.read(&disk);
                    let found = !matches!(&read, Err(e) if e.is_not_found());
                    match env_uses.iter_mut().find(|u| u.path == disk) {
                        Some(u) => u.services.push(sname.clone()),
                        None => env_uses.push(EnvFileUse {
                            path: disk.clone(),
                            services: vec![sname.clone()],
                            found,
                        }),
                    }
                    let t = match read {
                        Ok(t) => t,
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut fv = Vars::new();
                    interpolate::parse_env_file(&t, &mut fv).map_err(|m| {
                        ComposeError::EnvFile {
                            path: disk.clone(),
                            message: m,
                        }
                    })?;
                    environment.extend(fv);
                }
                match &v["environment"] {
                    Yaml::Array(a) => {
                        for e in a.iter().filter_map(scalar) {
                            let (e, _) = interp(&e)?;
                            if let Some((k, val)) = e.split_once('=') {
                                environment.insert(k.to_string(), val.to_string());
                            }
                        }
                    }
                    Yaml::Hash(m) => {
                        for (k, val) in m {
                            if let (Some(k), Some(val)) = (scalar(k), scalar(val)) {
                                environment.insert(k, interp(&val)?.0);
                            }
                        }
                    }
                    _ => {}
                }
                let image = match scalar(&v["image"]) {
                    Some(i) => Some(interp(&i)?.0),
                    None => None,
                };
                let user = match scalar(&v["user"]) {
                    Some(u) => {
                        let (val, missing) = interp(&u)?;
                        missing.is_empty().then_some(val)
                    }
                    None => None,
                };
                let mut mounts = Vec::new();
                if let Yaml::Array(vols) = &v["volumes"] {
                    for vol in vols {
                        let m = mount(vol, host_dir, &mut interp).map_err(|e| match e {
                            MountError::Shape(w) => shape(format!("service `{sname}`: {w}")),
                            MountError::Interpolate(e) => e,
                        })?;
                        mounts.push(m);
                    }
                }
                let names = |y: &Yaml| -> Vec<String> {
                    match y {
                        Yaml::Array(a) => a.iter().filter_map(scalar).collect(),
                        Yaml::Hash(h) => h.keys().filter_map(scalar).collect(),
                        _ => Vec::new(),
                    }
                };
                let container_name = match scalar(&v["container_name"]) {
                    Some(n) => Some(interp(&n)?.0),
                    None => None,
                };
                let network_mode = match scalar(&v["network_mode"]) {
                    Some(n) => Some(interp(&n)?.0),
                    None => None,
                };
                let mut ports = Vec::new();
                for key in ["ports", "expose"] {
                    if let Yaml::Array(a) = &v[key] {
                        for p in a {
                            let text = match scalar(&p["target"]) {
                                Some(t) => t,
                                None => match scalar(p) {
                                    Some(t) => interp(&t)?.0,
                                    None => continue,
                                },
                            };
                            if let Some(port) = container_port(&text) {
                                if !ports.contains(&port) {
                                    ports.push(port);
                                }
                            }
                        }
                    }
                }
                services.push(Service {
                    name: sname,
                    image,
                    user,
                    environment,
                    mounts,
                    container_name,
                    networks: names(&v["networks"]),
                    network_mode,
                    depends_on: names(&v["depends_on"]),
                    ports,
                });
            }
        }
        Yaml::BadValue | Yaml::Null => {}
        _ => return Err(shape("`services` is not a mapping".into())),
    }

    let mut volumes = BTreeMap::new();
    if let Yaml::Hash(h) = &doc["volumes"] {
        for (k, v) in h {
            let Some(n) = scalar(k) else { continue };
            let external =
                matches!(v["external"], Yaml::Boolean(true)) || v["external"].as_hash().is_some();
            let fs_type = match scalar(&v["driver_opts"]["type"]) {
                Some(t) => Some(interp(&t)?.0),
                None => None,
            };
            let device = match scalar(&v["driver_opts"]["device"]) {
                Some(d) => Some(interp(&d)?.0),
                None => None,
            };
            let engine_name = match scalar(&v["name"]) {
                Some(e) => Some(interp(&e)?.0),
                None => None,
            };
            volumes.insert(
                n.clone(),
                NamedVolume {
                    name: n,
                    engine_name,
                    external,
                    fs_type,
                    device,
                },
            );
        }
    }
    let mut external_networks = BTreeMap::new();
    if let Yaml::Hash(h) = &doc["networks"] {
        for (k, v) in h {
            let Some(key) = scalar(k) else { continue };
            let name = match &v["external"] {
                Yaml::Boolean(true) => scalar(&v["name"]).unwrap_or_else(|| key.clone()),
                Yaml::Hash(_) => scalar(&v["external"]["name"])
                    .or_else(|| scalar(&v["name"]))
                    .unwrap_or_else(|| key.clone()),
                _ => continue,
            };
            external_networks.insert(key, interp(&name)?.0);
        }
    }
    unresolved.sort();
    unresolved.dedup();
    Ok(Project {
        external_networks,
        name,
        name_source,
        file: host_files.first().cloned().unwrap_or_default(),
        files: host_files.to_vec(),
        env_files: env_uses,
        dot_env: None,
        services,
        volumes,
        unresolved,
        not_followed,
    })
}

/// The container port of a `ports`/`expose` entry: `8080`, `80:8080`, `127.0.0.1:80:8080/tcp`
/// (the last number before a protocol; a range gives its first port).
fn container_port(s: &str) -> Option<u16> {
    let s = s.split('/').next()?;
    let last = s.rsplit(':').next()?;
    last.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_split_outside_variable_defaults() {
        assert_eq!(
            split_outside_braces("${MEDIA_ROOT:-/mnt/data}/tv:/tv:ro"),
            ["${MEDIA_ROOT:-/mnt/data}/tv", "/tv", "ro"]
        );
        assert_eq!(split_outside_braces("/cache"), ["/cache"]);
    }

    #[test]
    fn what_init_does_not_follow_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("compose.yaml");
        std::fs::write(
            &f,
            "include:\n  - other.yaml\nservices:\n  web:\n    extends:\n      file: base.yaml\n      service: web\n    volumes:\n      - ~/x:/x\n      - type: tmpfs\n        target: /t\n",
        )
        .unwrap();
        let rights = super::super::read::Rights::new(Path::new("/nonexistent"));
        let p = load(
            &[f],
            &[PathBuf::from("/opt/p/compose.yaml")],
            Path::new("/opt/p"),
            &Vars::new(),
            &mut Files::per_file(&rights),
        )
        .unwrap();
        assert_eq!(p.name, "p");
        assert_eq!(p.not_followed.len(), 2, "{:?}", p.not_followed);
        assert!(p.not_followed[0].starts_with("`extends` of service web (base.yaml: "));
        assert!(p.not_followed[1].starts_with("`include` of other.yaml ("));
        assert!(
            matches!(&p.services[0].mounts[0].source, Source::Unknown { why, .. } if why.contains('~'))
        );
        assert_eq!(p.services[0].mounts[1].source, Source::Ephemeral);
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize(Path::new("/a/./b//c/../d/")), Path::new("/a/b/d"));
    }
}
