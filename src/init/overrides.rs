//! Compose files merged as `-f a -f b` merges them (a project directory's `compose.yaml`
//! and its `compose.override.yaml`): a service of both files is merged like an `extends`
//! (environment by variable, volumes by container path, env files appended, anything else
//! replaced), a top-level volume, network, secret or config of the later file replaces the
//! earlier one's, and any other top-level key of the later file wins.
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
                        (Some(base @ Yaml::Hash(_)), true) => super::extends::merged(base, &entry),
                        _ => entry,
                    };
                    ours.insert(name, entry);
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
