//! How compose merges: a service over another (`extends`, and a service of a later `-f` file
//! over the earlier one's: environment by variable, volumes by container path, env files
//! appended, anything else replaced), and compose files as `-f a -f b` merges them (a
//! project directory's `compose.yaml` and its `compose.override.yaml`): a top-level volume,
//! network, secret or config of the later file replaces the earlier one's, and any other
//! top-level key of the later file wins.
use super::compose::split_outside_braces;
use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

/// `over` (a later `-f` file, its extends resolved) merged over `base`.
pub fn merged_files(base: Yaml, over: Yaml) -> Yaml {
    let (Yaml::Hash(mut out), Yaml::Hash(over)) = (base, over) else {
        return Yaml::Null;
    };
    for (k, v) in over {
        let by_entry = matches!(
            k.as_str(),
            Some("services" | "volumes" | "networks" | "secrets" | "configs")
        );
        match (out.get(&k).cloned(), v) {
            (Some(Yaml::Hash(mut ours)), Yaml::Hash(theirs)) if by_entry => {
                let services = k.as_str() == Some("services");
                for (name, entry) in theirs {
                    let entry = match (ours.get(&name).cloned(), services) {
                        (Some(base @ Yaml::Hash(_)), true) => merged(base, &entry),
                        _ => entry,
                    };
                    // In place: a service keeps its position (compose's order of services).
                    match ours.get_mut(&name) {
                        Some(slot) => *slot = entry,
                        None => {
                            ours.insert(name, entry);
                        }
                    }
                }
                out.insert(k, Yaml::Hash(ours));
            }
            (_, v) => {
                out.insert(k, v);
            }
        }
    }
    Yaml::Hash(out)
}

pub(super) fn without_extends(svc: &Yaml) -> Yaml {
    match svc {
        Yaml::Hash(h) => {
            let mut h = h.clone();
            h.remove(&Yaml::String("extends".into()));
            Yaml::Hash(h)
        }
        other => other.clone(),
    }
}

/// `local` over `base`, as compose merges an extended service: `environment` by variable,
/// `volumes` by container path, `env_file` appended, anything else replaced.
pub(super) fn merged(base: Yaml, local: &Yaml) -> Yaml {
    let (Yaml::Hash(mut out), Yaml::Hash(local)) = (base, local) else {
        return without_extends(local);
    };
    for (k, v) in local {
        match k.as_str() {
            Some("extends") => {}
            Some("environment") => {
                let mut env = environment(out.get(k));
                env.extend(environment(Some(v)));
                out.insert(k.clone(), Yaml::Hash(env));
            }
            Some("volumes") => {
                let theirs: Vec<Yaml> = match out.get(k) {
                    Some(Yaml::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                let ours: Vec<Yaml> = match v {
                    Yaml::Array(a) => a.clone(),
                    _ => Vec::new(),
                };
                let targets: std::collections::HashSet<Option<String>> =
                    ours.iter().map(target).collect();
                let mut vols: Vec<Yaml> = theirs
                    .into_iter()
                    .filter(|t| target(t).is_none() || !targets.contains(&target(t)))
                    .collect();
                vols.extend(ours);
                out.insert(k.clone(), Yaml::Array(vols));
            }
            Some("env_file") => {
                let mut files = list(out.get(k));
                files.extend(list(Some(v)));
                out.insert(k.clone(), Yaml::Array(files));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out.remove(&Yaml::String("extends".into()));
    Yaml::Hash(out)
}

/// A service's `environment`, list (`K=V`, `K`) or mapping, as a mapping.
fn environment(env: Option<&Yaml>) -> Hash {
    match env {
        Some(Yaml::Hash(h)) => h.clone(),
        Some(Yaml::Array(a)) => a
            .iter()
            .filter_map(Yaml::as_str)
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (Yaml::String(k.into()), Yaml::String(v.into())),
                None => (Yaml::String(e.into()), Yaml::Null),
            })
            .collect(),
        _ => Hash::new(),
    }
}

fn list(v: Option<&Yaml>) -> Vec<Yaml> {
    match v {
        Some(Yaml::Array(a)) => a.clone(),
        Some(Yaml::BadValue) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

/// The container path of one `volumes` entry.
fn target(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => {
            let parts = split_outside_braces(s);
            match parts.as_slice() {
                [t] => Some(t.clone()),
                [_, t, ..] => Some(t.clone()),
                [] => None,
            }
        }
        Yaml::Hash(_) => v["target"].as_str().map(String::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Yaml {
        crate::init::yaml::load_first(s).unwrap()
    }

    #[test]
    fn an_override_merges_services_by_key_and_volumes_by_target() {
        let base = doc("name: app\nservices:\n  web:\n    image: web:1\n    environment:\n      A: '1'\n    volumes:\n      - ./data:/data\n      - ./logs:/logs\n  db:\n    image: postgres:16\nvolumes:\n  db: {}\n");
        let over = doc("services:\n  web:\n    image: web:2\n    environment:\n      - B=2\n    volumes:\n      - /srv/web:/data\n  cache:\n    image: redis\nvolumes:\n  cache: {}\n");
        let m = merged_files(base, over);
        let web = &m["services"]["web"];
        assert_eq!(web["image"].as_str(), Some("web:2"));
        assert_eq!(web["environment"]["A"].as_str(), Some("1"));
        assert_eq!(web["environment"]["B"].as_str(), Some("2"));
        let vols: Vec<&str> = web["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(vols, ["./logs:/logs", "/srv/web:/data"]);
        assert_eq!(m["services"]["db"]["image"].as_str(), Some("postgres:16"));
        assert_eq!(m["services"]["cache"]["image"].as_str(), Some("redis"));
        assert!(m["volumes"]["db"].as_hash().is_some());
        assert!(m["volumes"]["cache"].as_hash().is_some());
        assert_eq!(m["name"].as_str(), Some("app"));
    }
}
