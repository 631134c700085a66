//! The `reaches` key of a stack (`stack:service:port`) and the checks on it that need only the
//! policy. What it makes on the host is src/reach.
use super::{Policy, Problem};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One `reaches` entry: the stack reaches `service` of `stack` on container port `port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reach {
    pub stack: String,
    pub service: String,
    pub port: u16,
}

impl Reach {
    /// `stack:service:port`, the port 1..=65535.
    pub fn parse(s: &str) -> Result<Reach, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [stack, service, port] = parts.as_slice() else {
            return Err(format!(
                "{s:?}: expected `stack:service:port` (the stack reached, its compose service, the container port)"
            ));
        };
        if stack.is_empty() || service.is_empty() {
            return Err(format!(
                "{s:?}: the stack and the service must not be empty"
            ));
        }
        if !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "{s:?}: service {service:?} is not a compose service name (letters, digits, `-`, `_`, `.`)"
            ));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                return Err(format!(
                    "{s:?}: port {port:?} is not a TCP port (1 to 65535)"
                ))
            }
        };
        Ok(Reach {
            stack: stack.to_string(),
            service: service.to_string(),
            port,
        })
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.stack, self.service, self.port)
    }
}

/// Problems of the `reaches` entries, at their place in the policy file.
pub fn policy_problems(p: &Policy) -> Vec<Problem> {
    let mut out = Vec::new();
    for s in p.stacks.values() {
        for r in &s.reaches {
            let span = r.span.clone();
            let t = &r.value;
            if t.stack == s.name {
                out.push(Problem::new(
                    span,
                    format!(
                        "`reaches` entry {t}: stack `{}` reaches its own services over its own network; no entry is needed",
                        s.name
                    ),
                ));
                continue;
            }
            if !p.stacks.contains_key(&t.stack) {
                out.push(Problem::new(
                    span,
                    format!(
                        "`reaches` entry {t}: there is no stack `{}` in the policy (stacks: {})",
                        t.stack,
                        p.stacks.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    out
}

/// Whether the stack's compose runs with the override: it reaches or is reached.
pub fn takes_part(p: &Policy, stack: &str) -> bool {
    p.stacks.values().any(|s| {
        s.reaches
            .iter()
            .any(|r| s.name == stack || r.value.stack == stack)
    })
}
