//! What connects compose projects, for `reaches` in the draft: an env value naming another
//! project's service or container with a port (`http://immich-server:2283`), services of
//! several projects on one external network, `network_mode: container:`/`service:` and
//! `depends_on` naming another project's container. Pure; every finding says why.
use super::compose::{Project, Service};
use std::collections::BTreeMap;

/// A path the draft declares: `from` (project, service) reaches `to` (project, service) on
/// `port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub from_project: String,
    pub from_service: String,
    pub to_project: String,
    pub to_service: String,
    pub port: u16,
    pub why: String,
}

/// What the draft can only comment on: (project the note belongs to, text).
pub type Note = (String, String);

/// Hosts named in a value with a port: `scheme://host:port`, `host:port`, and
/// `scheme://host` (80 for http/ws, 443 for https/wss).
fn hosts_with_ports(value: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    let is_host = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let chars: Vec<(usize, char)> = value.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if !is_host(c) || (i > 0 && is_host(chars[i - 1].1)) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && is_host(chars[j].1) {
            j += 1;
        }
        let end = chars.get(j).map_or(value.len(), |c| c.0);
        let host = &value[start..end];
        let before = &value[..start];
        let scheme = before.strip_suffix("://").map(|b| {
            b.rsplit(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        });
        let rest = &value[end..];
        if let Some(p) = rest.strip_prefix(':') {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(port) = digits.parse::<u16>() {
                if port > 0 {
                    out.push((host.to_string(), port));
                }
            }
        } else if let Some(s) = scheme {
            let port = match s.as_str() {
                "http" | "ws" => Some(80),
                "https" | "wss" => Some(443),
                _ => None,
            };
            if let Some(port) = port {
                out.push((host.to_string(), port));
            }
        }
        i = j;
    }
    out
}

/// Finds the connections between projects and the notes on those it cannot declare.
pub fn find(projects: &[Project]) -> (Vec<Connection>, Vec<Note>) {
    // Names another project's container answers to: its container_name (any network) and
    // its service name (on a network they share; counted when the name is unique).
    let mut by_name: BTreeMap<&str, Vec<(&Project, &Service)>> = BTreeMap::new();
    for p in projects {
        for s in &p.services {
            by_name.entry(s.name.as_str()).or_default().push((p, s));
            if let Some(c) = &s.container_name {
                if c != &s.name {
                    by_name.entry(c.as_str()).or_default().push((p, s));
                }
            }
        }
    }
    let lookup = |me: &Project, name: &str| -> Option<(&Project, &Service)> {
        let found: Vec<&(&Project, &Service)> = by_name
            .get(name)
            .map(|v| v.iter().filter(|(p, _)| p.name != me.name).collect())
            .unwrap_or_default();
        match found.as_slice() {
            [one] => Some(**one),
            _ => None,
        }
    };
    let mut conns: Vec<Connection> = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    for p in projects {
        for s in &p.services {
            for (key, value) in &s.environment {
                for (host, port) in hosts_with_ports(value) {
                    if let Some((tp, ts)) = lookup(p, &host) {
                        let c = Connection {
                            from_project: p.name.clone(),
                            from_service: s.name.clone(),
                            to_project: tp.name.clone(),
                            to_service: ts.name.clone(),
                            port,
                            why: format!(
                                "{}'s env {key}={value} names {} of project {}",
                                s.name,
                                if host == ts.name {
                                    format!("service {host}")
                                } else {
                                    format!("container {host} (service {})", ts.name)
                                },
                                tp.name
                            ),
                        };
                        if !conns.iter().any(|o| {
                            (&o.from_project, &o.to_project, &o.to_service, o.port)
                                == (&c.from_project, &c.to_project, &c.to_service, c.port)
                        }) {
                            conns.push(c);
                        }
                    }
                }
            }
            if let Some(mode) = &s.network_mode {
                let other = mode
                    .strip_prefix("container:")
                    .or_else(|| mode.strip_prefix("service:"));
                if let Some((tp, ts)) = other.and_then(|o| lookup(p, o)) {
                    notes.push((
                        p.name.clone(),
                        format!(
                            "TODO: service {} shares the network namespace of {} of project {} (network_mode: {mode}); two users' containers cannot share one: make them one stack, or let it reach that service by name with a `reaches` entry",
                            s.name, ts.name, tp.name
                        ),
                    ));
                }
            }
            for d in &s.depends_on {
                if p.services.iter().any(|o| &o.name == d) {
                    continue;
                }
                if let Some((tp, ts)) = lookup(p, d) {
                    notes.push((
                        p.name.clone(),
                        format!(
                            "TODO: service {} depends_on {d}, service {} of project {}: compose cannot order across stacks; declare the path in `reaches` if it connects to it",
                            s.name, ts.name, tp.name
                        ),
                    ));
                }
            }
        }
    }
    // External networks several projects join, with no path found in their env values.
    let mut joined: BTreeMap<&str, Vec<(&Project, &Service)>> = BTreeMap::new();
    for p in projects {
        for s in &p.services {
            for n in &s.networks {
                if let Some(name) = p.external_networks.get(n) {
                    joined.entry(name.as_str()).or_default().push((p, s));
                }
            }
        }
    }
    for (net, members) in &joined {
        let mut projects_on: Vec<&str> = members.iter().map(|(p, _)| p.name.as_str()).collect();
        projects_on.sort();
        projects_on.dedup();
        if projects_on.len() < 2 {
            continue;
        }
        for (p, s) in members {
            let found = conns
                .iter()
                .any(|c| c.from_project == p.name || c.to_project == p.name);
            if found {
                continue;
            }
            let others: Vec<String> = members
                .iter()
                .filter(|(o, _)| o.name != p.name)
                .map(|(o, os)| {
                    let ports = os
                        .ports
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(",");
                    if ports.is_empty() {
                        format!("{}:{}", o.name, os.name)
                    } else {
                        format!("{}:{} (ports {ports})", o.name, os.name)
                    }
                })
                .collect();
            notes.push((
                p.name.clone(),
                format!(
                    "TODO: service {} joins the external network {net} with {}; init found no env value naming one of them: if it connects to one, add `reaches = [\"STACK:SERVICE:PORT\"]`",
                    s.name,
                    others.join(", ")
                ),
            ));
        }
    }
    notes.dedup();
    (conns, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_in_values() {
        assert_eq!(
            hosts_with_ports("http://immich-server:2283/api"),
            vec![("immich-server".to_string(), 2283)]
        );
        assert_eq!(
            hosts_with_ports("db:5432,cache:6379"),
            vec![("db".to_string(), 5432), ("cache".to_string(), 6379)]
        );
        assert_eq!(
            hosts_with_ports("https://backend/x"),
            vec![("backend".to_string(), 443)]
        );
        assert!(hosts_with_ports("no host here").is_empty());
        assert!(hosts_with_ports("/srv/data:/data").is_empty());
    }
}
