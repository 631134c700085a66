//! Cross-stack reachability: a stack that reached another stack's container over a shared
//! podman network reaches it, after the split into users, through the host's loopback. The
//! policy's `reaches` names each path (`stack:service:port`); this module parses it, gives
//! each reached port a host port (recorded, never handed out twice), and renders the compose
//! override isolate writes (root-owned, outside the admin's compose files) and the stack's
//! compose unit adds with one more `-f`: the target publishes its port on 127.0.0.1, the
//! reaching services get host-loopback access and the target's name.
pub mod apply;
pub mod audit;
pub mod error;
pub mod legacy;
pub mod legacy_run;
pub mod plan;

pub use crate::policy::reach::Reach;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The containers.conf drop-in of a reaching stack, below its user's home.
pub fn conf_path(home: &Path) -> PathBuf {
    home.join(".config/containers/containers.conf.d/isolate-reaches.conf")
}

pub use crate::layout::{
    reach_override_path as override_path, REACH_OVERRIDE_FILE as OVERRIDE_FILE,
};

/// The host ports given to reached targets, kept for ever (a port once given is never given
/// to another target, even after its `reaches` entry is gone).
pub fn ports_record_path() -> PathBuf {
    Path::new(crate::layout::STATE_DIR).join("reach-ports.json")
}

/// Where a target's port is published when its own port is taken: from here up.
pub const FIRST_SPARE_PORT: u16 = 47_000;

/// Host port per target (`stack:service:port`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRecord {
    pub ports: BTreeMap<String, u16>,
}

/// How a rootless container reaches the host's loopback, by podman's user-mode network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Networking {
    /// podman 4 (Debian 12): 10.0.2.2 is the host's loopback with `allow_host_loopback`.
    Slirp4netns,
    /// podman 5 (Debian 13): pasta maps a chosen address to the host's loopback.
    Pasta,
}

/// The address pasta is told to map to the host's loopback (link-local, next to the
/// 169.254.1.2 podman 5.3+ maps to the host's own address).
pub const PASTA_LOOPBACK: &str = "169.254.1.3";

impl Networking {
    /// By podman's major version: pasta is podman 5's default, slirp4netns podman 4's.
    pub fn for_podman(major: Option<u32>) -> Networking {
        match major {
            Some(m) if m >= 5 => Networking::Pasta,
            _ => Networking::Slirp4netns,
        }
    }

    /// The containers.conf drop-in that gives every container of the stack user the host's
    /// loopback: the user-mode network of a container of its own and the one podman runs for
    /// its bridge networks (the rootless network namespace) both read it. A drop-in, not a
    /// `network_mode`, so the services keep their `networks` (compose refuses both together).
    pub fn containers_conf(self) -> String {
        let head =
            "# Written by isolate: this stack reaches other stacks through the host's loopback\n\
                    # (`reaches` in the policy). apply rewrites it; do not edit.\n";
        match self {
            Networking::Slirp4netns => {
                format!("{head}[engine]\nnetwork_cmd_options = [\"allow_host_loopback=true\"]\n")
            }
            Networking::Pasta => format!(
                "{head}[network]\npasta_options = [\"--map-host-loopback={PASTA_LOOPBACK}\"]\n"
            ),
        }
    }

    /// The address a container uses for the host's 127.0.0.1.
    pub fn host_loopback(self) -> &'static str {
        match self {
            Networking::Slirp4netns => "10.0.2.2",
            Networking::Pasta => PASTA_LOOPBACK,
        }
    }
}

/// Every target the policy's `reaches` name, with the stacks that reach it.
pub fn targets(policy: &crate::policy::Policy) -> BTreeMap<String, (Reach, Vec<String>)> {
    let mut out: BTreeMap<String, (Reach, Vec<String>)> = BTreeMap::new();
    for s in policy.stacks.values() {
        for r in &s.reaches {
            out.entry(r.value.to_string())
                .or_insert_with(|| (r.value.clone(), Vec::new()))
                .1
                .push(s.name.clone());
        }
    }
    out
}

/// The host port of each target: the recorded one; else the container port itself when no
/// other target holds it (the reaching side then needs no change of port); else the first
/// spare port from FIRST_SPARE_PORT up that nothing recorded holds. Deterministic: targets in
/// name order. Returns the ports and the new entries to record.
pub fn allocate_ports<'a>(
    record: &PortRecord,
    targets: impl IntoIterator<Item = &'a str>,
) -> (BTreeMap<String, u16>, BTreeMap<String, u16>) {
    let mut taken: BTreeSet<u16> = record.ports.values().copied().collect();
    let mut all = BTreeMap::new();
    let mut new = BTreeMap::new();
    let mut wanted: Vec<&str> = targets.into_iter().collect();
    wanted.sort();
    wanted.dedup();
    for t in wanted {
        if let Some(p) = record.ports.get(t) {
            all.insert(t.to_string(), *p);
            continue;
        }
        let own = t
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let port = if own != 0 && !taken.contains(&own) {
            own
        } else {
            (FIRST_SPARE_PORT..=u16::MAX)
                .find(|p| !taken.contains(p))
                .unwrap_or(0)
        };
        taken.insert(port);
        all.insert(t.to_string(), port);
        new.insert(t.to_string(), port);
    }
    (all, new)
}

/// What the override of one stack is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverrideInput {
    pub stack: String,
    /// This stack's services reached by others: (service, container port, host port, who).
    pub published: Vec<(String, u16, u16, Vec<String>)>,
    /// What this stack reaches: (target, host port).
    pub reaches: Vec<(Reach, u16)>,
    /// The services that get the targets' names (those that joined an external network, else
    /// every service without a `network_mode` of its own).
    pub reaching_services: Vec<String>,
    /// External networks the stack's compose files join: made the stack's own.
    pub external_networks: Vec<(String, String)>,
}

fn yaml_str(s: &str) -> String {
    // JSON strings are YAML double-quoted scalars.
    serde_json::to_string(s).unwrap_or_default()
}

/// The compose override text (YAML), every decision a comment.
pub fn render_override(input: &OverrideInput, net: Networking) -> String {
    let mut o = format!(
        "# Written by isolate for stack {}: its cross-stack paths (`reaches` in the policy), made\n\
         # true without editing the compose files. apply rewrites it; do not edit.\n",
        input.stack
    );
    // service -> lines under it
    let mut services: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (svc, port, host, who) in &input.published {
        services.entry(svc.as_str()).or_default().push(format!(
            "    # reached by {} on the host's loopback\n    ports:\n      - {}",
            who.join(", "),
            yaml_str(&format!("127.0.0.1:{host}:{port}"))
        ));
    }
    if !input.reaches.is_empty() {
        let names: Vec<String> = input
            .reaches
            .iter()
            .map(|(r, host)| {
                let mut line = format!(
                    "      - {}  # {}",
                    yaml_str(&format!("{}:{}", r.service, net.host_loopback())),
                    r
                );
                if *host != r.port {
                    line.push_str(&format!(
                        "; published on host port {host}: use {}:{host}",
                        r.service
                    ));
                }
                line
            })
            .collect();
        for svc in &input.reaching_services {
            services.entry(svc.as_str()).or_default().push(format!(
                "    # the host's loopback is {} in this stack's containers ({})\n    extra_hosts:\n{}",
                net.host_loopback(),
                match net {
                    Networking::Slirp4netns => "slirp4netns allow_host_loopback",
                    Networking::Pasta => "pasta --map-host-loopback",
                },
                names.join("\n")
            ));
        }
    }
    o.push_str("services:\n");
    if services.is_empty() {
        o.push_str("  {}\n");
    }
    // `services:` must not be followed by nothing.
    for (svc, parts) in &services {
        o.push_str(&format!("  {}:\n", yaml_str(svc)));
        for p in parts {
            o.push_str(p);
            o.push('\n');
        }
    }
    if !input.external_networks.is_empty() {
        o.push_str(
            "# External networks were shared with another user's stacks; this stack's user has its\n\
             # own store, so compose makes each here under the same name.\nnetworks:\n",
        );
        for (key, name) in &input.external_networks {
            o.push_str(&format!(
                "  {}:\n    external: false\n    name: {}\n",
                yaml_str(key),
                yaml_str(name)
            ));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_parse_and_refuse_bad_ports() {
        assert_eq!(
            Reach::parse("immich:immich-server:2283").unwrap(),
            Reach {
                stack: "immich".into(),
                service: "immich-server".into(),
                port: 2283
            }
        );
        assert!(Reach::parse("immich:server:0")
            .unwrap_err()
            .contains("not a TCP port"));
        assert!(Reach::parse("immich:server:70000")
            .unwrap_err()
            .contains("not a TCP port"));
        assert!(Reach::parse("immich:server")
            .unwrap_err()
            .contains("expected"));
        assert!(Reach::parse("immich:a b:80")
            .unwrap_err()
            .contains("service"));
    }

    #[test]
    fn ports_are_the_own_port_first_then_spare_and_never_reused() {
        let mut rec = PortRecord::default();
        let (all, new) = allocate_ports(&rec, ["b:web:8080", "a:api:8080"]);
        assert_eq!(all["a:api:8080"], 8080);
        assert_eq!(all["b:web:8080"], FIRST_SPARE_PORT);
        assert_eq!(new.len(), 2);
        rec.ports = all;
        // a's entry goes away from the policy: its port stays recorded and is not given again.
        let (all, new) = allocate_ports(&rec, ["b:web:8080", "c:x:8080"]);
        assert_eq!(all["b:web:8080"], FIRST_SPARE_PORT);
        assert_eq!(all["c:x:8080"], FIRST_SPARE_PORT + 1);
        assert_eq!(new.len(), 1);
    }

    #[test]
    fn the_override_publishes_on_loopback_and_names_the_target() {
        let r = Reach::parse("backend:backend:8080").unwrap();
        let target = OverrideInput {
            stack: "backend".into(),
            published: vec![("backend".into(), 8080, 8080, vec!["proxy".into()])],
            external_networks: vec![("shared".into(), "shared".into())],
            ..Default::default()
        };
        let t = render_override(&target, Networking::Slirp4netns);
        assert!(t.contains("  \"backend\":\n"), "{t}");
        assert!(t.contains("      - \"127.0.0.1:8080:8080\"\n"), "{t}");
        assert!(t.contains("  \"shared\":\n    external: false\n    name: \"shared\"\n"));
        let reacher = OverrideInput {
            stack: "proxy".into(),
            reaches: vec![(r, 8080)],
            reaching_services: vec!["proxy".into()],
            ..Default::default()
        };
        let t = render_override(&reacher, Networking::Slirp4netns);
        assert!(!t.contains("network_mode"), "{t}");
        assert!(
            t.contains("    extra_hosts:\n      - \"backend:10.0.2.2\""),
            "{t}"
        );
        let t = render_override(&reacher, Networking::Pasta);
        assert!(t.contains("- \"backend:169.254.1.3\""), "{t}");
        assert!(Networking::Pasta
            .containers_conf()
            .ends_with("[network]\npasta_options = [\"--map-host-loopback=169.254.1.3\"]\n"));
        assert!(Networking::Slirp4netns
            .containers_conf()
            .ends_with("[engine]\nnetwork_cmd_options = [\"allow_host_loopback=true\"]\n"));
        for text in [render_override(&target, Networking::Pasta), t] {
            let y = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
            assert!(y[0]["services"].as_hash().is_some(), "{text}");
        }
    }
}
