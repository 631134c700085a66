//! Audit of `reaches`: each declared path, tried with a TCP connect from the reaching stack's
//! network namespace. Root enters only the namespace (setns of one thread, CLONE_NEWNET), never
//! the container's filesystem or its programs: the connect is made by isolate itself, to the
//! address the override gives the target's name, and the socket is closed at once.
use super::{allocate_ports, targets, Networking, PortRecord};
use crate::layout::Root;
use crate::policy::Policy;
use crate::state::State;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One declared path and whether it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReachCheck {
    /// The reaching stack.
    pub stack: String,
    /// `stack:service:port`.
    pub reach: String,
    pub host_port: Option<u16>,
    /// None: not tried (why in `detail`).
    pub answers: Option<bool>,
    pub detail: String,
}

/// The network side of the check, behind a trait so tests answer it.
pub trait NetProbe {
    /// One pid per network namespace that processes of the given uids are in, other than
    /// the caller's own namespace.
    fn namespaces(&self, owned_by: &dyn Fn(u32) -> bool) -> Vec<u32>;
    /// A TCP connect to `addr` from the network namespace of `pid`.
    fn connect_in(&self, pid: u32, addr: SocketAddr) -> Result<(), String>;
}

/// The real probe: /proc and setns(2) in a thread of its own.
pub struct ProcNet {
    pub root: std::path::PathBuf,
    pub timeout: Duration,
}

impl NetProbe for ProcNet {
    fn namespaces(&self, owned_by: &dyn Fn(u32) -> bool) -> Vec<u32> {
        use std::os::unix::fs::MetadataExt;
        let proc_dir = self.root.join("proc");
        let own = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
        let mut seen = std::collections::BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&proc_dir) else {
            return Vec::new();
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if !owned_by(m.uid()) {
                continue;
            }
            let Ok(ns) = std::fs::metadata(e.path().join("ns/net")) else {
                continue;
            };
            if Some(ns.ino()) == own {
                continue;
            }
            seen.entry(ns.ino()).or_insert(pid);
        }
        seen.into_values().collect()
    }

    fn connect_in(&self, pid: u32, addr: SocketAddr) -> Result<(), String> {
        let ns = self.root.join(format!("proc/{pid}/ns/net"));
        let timeout = self.timeout;
        std::thread::spawn(move || -> Result<(), String> {
            let f = std::fs::File::open(&ns).map_err(|e| format!("{}: {e}", ns.display()))?;
            // Only this thread changes namespace; it ends after the connect.
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| format!("setns into the network namespace of pid {pid}: {e}"))?;
            std::net::TcpStream::connect_timeout(&addr, timeout)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?
    }
}

/// Every declared path of the applied stacks (of `selected`), tried.
pub fn check(
    root: &Root,
    policy: &Policy,
    state: &State,
    net: &dyn NetProbe,
    net_kind: Networking,
    selected: &dyn Fn(&str) -> bool,
) -> Vec<ReachCheck> {
    let record: PortRecord = std::fs::read(root.at(&super::ports_record_path()))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let all = targets(policy);
    let (ports, _) = allocate_ports(&record, all.keys().map(String::as_str));
    let mut out = Vec::new();
    for s in policy.stacks.values().filter(|s| selected(&s.name)) {
        for r in &s.reaches {
            let key = r.value.to_string();
            let recorded = record.ports.get(&key).copied();
            let mut c = ReachCheck {
                stack: s.name.clone(),
                reach: key.clone(),
                host_port: recorded.or(ports.get(&key).copied()),
                answers: None,
                detail: String::new(),
            };
            let Some(port) = recorded else {
                c.detail = "not applied yet (no host port recorded)".into();
                out.push(c);
                continue;
            };
            let Some(a) = state.stacks.get(&s.name).map(|r| &r.allocation) else {
                c.detail = format!("stack `{}` is not applied", s.name);
                out.push(c);
                continue;
            };
            let (uid, sub) = (a.uid, a.subids);
            let owned = move |u: u32| u == uid || (u >= sub.start && u - sub.start < sub.count);
            let pids = net.namespaces(&owned);
            if pids.is_empty() {
                c.detail = format!("no running container of {} to try from", a.user);
                out.push(c);
                continue;
            }
            // The address the override gives the target's name: the host's loopback as this
            // podman's user-mode network shows it (only that one: slirp4netns forwards other
            // addresses out, so another could answer for something else).
            let ip: IpAddr = net_kind.host_loopback().parse().expect("an address");
            let mut errors = Vec::new();
            let mut answered = None;
            for pid in &pids {
                match net.connect_in(*pid, SocketAddr::new(ip, port)) {
                    Ok(()) => {
                        answered = Some((*pid, ip));
                        break;
                    }
                    Err(e) => errors.push(format!("pid {pid} -> {ip}:{port}: {e}")),
                }
            }
            match answered {
                Some((pid, ip)) => {
                    c.answers = Some(true);
                    c.detail = format!(
                        "TCP connect to {ip}:{port} ({} from the container) from the network namespace of pid {pid}",
                        r.value.service
                    );
                }
                None => {
                    c.answers = Some(false);
                    c.detail = errors.join("; ");
                }
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Fake {
        pids: Vec<u32>,
        open: Option<SocketAddr>,
        tried: RefCell<Vec<(u32, SocketAddr)>>,
    }
    impl NetProbe for Fake {
        fn namespaces(&self, owned_by: &dyn Fn(u32) -> bool) -> Vec<u32> {
            assert!(owned_by(1802) && owned_by(300_000) && !owned_by(1801));
            self.pids.clone()
        }
        fn connect_in(&self, pid: u32, addr: SocketAddr) -> Result<(), String> {
            self.tried.borrow_mut().push((pid, addr));
            if Some(addr) == self.open {
                Ok(())
            } else {
                Err("Connection refused".into())
            }
        }
    }

    fn setup() -> (tempfile::TempDir, Root, Policy, State) {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let policy = Policy::parse(
            std::path::Path::new("p.toml"),
            "[stacks.proxy]\ndata = []\nreaches = [\"backend:backend:8080\"]\n[stacks.backend]\ndata = []\n",
        )
        .unwrap();
        let mut state = State::default();
        state.stacks.insert(
            "proxy".into(),
            serde_json::from_value(serde_json::json!({
                "allocation": {"user": "stk-proxy", "uid": 1802, "gid": 1802,
                               "subids": {"start": 300000, "count": 65536}}
            }))
            .unwrap(),
        );
        (d, root, policy, state)
    }

    #[test]
    fn a_path_answers_or_says_why_not() {
        let (_d, root, policy, state) = setup();
        let fake = Fake {
            pids: vec![42],
            open: None,
            tried: RefCell::new(vec![]),
        };
        let all = |_: &str| true;
        let c = check(&root, &policy, &state, &fake, Networking::Slirp4netns, &all);
        assert_eq!(c[0].answers, None);
        assert!(c[0].detail.contains("not applied yet"), "{c:?}");
        let rec = root.at(&super::super::ports_record_path());
        std::fs::create_dir_all(rec.parent().unwrap()).unwrap();
        std::fs::write(&rec, r#"{"ports":{"backend:backend:8080":8080}}"#).unwrap();
        let c = check(&root, &policy, &state, &fake, Networking::Slirp4netns, &all);
        assert_eq!(c[0].answers, Some(false), "{c:?}");
        assert!(
            c[0].detail.contains("10.0.2.2:8080: Connection refused"),
            "{c:?}"
        );
        let fake = Fake {
            pids: vec![42],
            open: Some("10.0.2.2:8080".parse().unwrap()),
            tried: RefCell::new(vec![]),
        };
        let c = check(&root, &policy, &state, &fake, Networking::Slirp4netns, &all);
        assert_eq!(c[0].answers, Some(true), "{c:?}");
        assert_eq!(
            fake.tried.borrow().as_slice(),
            &[(42, "10.0.2.2:8080".parse().unwrap())]
        );
    }
}
