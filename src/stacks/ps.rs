//! `isolate ps`: every recorded stack's containers, asked of each stack's own podman socket
//! (the Docker-compatible list, stopped containers included): stack, container, image, state,
//! health, ports. A stack whose socket does not answer is a line saying why, never the end of
//! the listing.
use crate::host::podman::http::{self, HttpError, HttpErrorKind};
use crate::layout::Root;
use crate::model::escape;
use crate::render::Render;
use crate::state::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One container as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub state: String,
    /// `healthy`, `unhealthy` or `starting` for a container with a health check.
    pub health: Option<String>,
    /// `127.0.0.1:8080->80/tcp`, or `80/tcp` for an exposed port not published.
    pub ports: Vec<String>,
    /// The compose project and service it runs for (compose labels), when it has them.
    pub project: Option<String>,
    pub service: Option<String>,
}

/// One stack's answer: its containers, or why its socket gave none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackContainers {
    pub stack: String,
    pub user: String,
    pub uid: u32,
    #[serde(serialize_with = "escape::json_path")]
    pub socket: PathBuf,
    pub containers: Vec<Container>,
    /// Set when the socket did not answer: the stack's containers are unknown, not none.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub stacks: Vec<StackContainers>,
}

/// What lists the containers behind a socket (the real one speaks HTTP; tests fake it).
pub trait Lister {
    fn list(&self, socket: &Path) -> Result<Vec<Container>, HttpError>;
}

/// The podman API socket, with a deadline per request.
pub struct Socket {
    pub timeout: Duration,
}

const LIST: &str = "/containers/json?all=true";

impl Lister for Socket {
    fn list(&self, socket: &Path) -> Result<Vec<Container>, HttpError> {
        let response = http::get(socket, LIST, self.timeout)?;
        if response.status != 200 {
            return Err(HttpError::status(socket, LIST, &response));
        }
        parse(&response.body).map_err(|e| HttpError::new(socket, LIST, HttpErrorKind::Json(e)))
    }
}

/// The Docker-compatible container list as podman (4 and 5) answers it.
pub fn parse(body: &[u8]) -> Result<Vec<Container>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Listed {
        #[serde(rename = "Names", default)]
        names: Vec<String>,
        #[serde(rename = "Image", default)]
        image: String,
        #[serde(rename = "State", default)]
        state: String,
        #[serde(rename = "Status", default)]
        status: String,
        #[serde(rename = "Ports", default)]
        ports: Option<Vec<Port>>,
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize)]
    struct Port {
        #[serde(rename = "IP", default)]
        ip: Option<String>,
        #[serde(rename = "PrivatePort", default)]
        private: u16,
        #[serde(rename = "PublicPort", default)]
        public: Option<u16>,
        #[serde(rename = "Type", default)]
        kind: String,
    }
    let listed: Vec<Listed> = serde_json::from_slice(body)?;
    let mut out: Vec<Container> = listed
        .into_iter()
        .map(|c| {
            let label = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| c.labels.as_ref().and_then(|l| l.get(*k)).cloned())
            };
            Container {
                name: c
                    .names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.clone(),
                state: c.state.clone(),
                health: health_of(&c.status),
                ports: c
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| match p.public.filter(|&n| n != 0) {
                        Some(public) => format!(
                            "{}{public}->{}/{}",
                            p.ip.as_deref()
                                .filter(|ip| !ip.is_empty())
                                .map(|ip| format!("{ip}:"))
                                .unwrap_or_default(),
                            p.private,
                            p.kind
                        ),
                        None => format!("{}/{}", p.private, p.kind),
                    })
                    .collect(),
                project: label(&["com.docker.compose.project", "io.podman.compose.project"]),
                service: label(&["com.docker.compose.service"]),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The health a Docker-style status carries: "Up 2 minutes (healthy)".
fn health_of(status: &str) -> Option<String> {
    if status.contains("(unhealthy)") {
        Some("unhealthy".into())
    } else if status.contains("(healthy)") {
        Some("healthy".into())
    } else if status.contains("(health: starting)") || status.contains("(starting)") {
        Some("starting".into())
    } else {
        None
    }
}

/// Every recorded stack's containers (only `selected` when not empty; an unknown name is a
/// usage error before any socket is asked).
pub fn gather(
    root: &Root,
    state: &State,
    selected: &[String],
    lister: &dyn Lister,
) -> crate::error::Result<Listing> {
    if let Some(unknown) = selected.iter().find(|s| !state.stacks.contains_key(*s)) {
        return Err(crate::error::Error::Usage(format!(
            "stack `{unknown}` has no user yet: run `isolate apply --stack {unknown}` first"
        )));
    }
    let mut stacks = Vec::new();
    for (name, rec) in &state.stacks {
        if !selected.is_empty() && !selected.contains(name) {
            continue;
        }
        let a = &rec.allocation;
        let socket = root.podman_socket(a.uid);
        let (containers, error) = match lister.list(&socket) {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e.kind.to_string())),
        };
        stacks.push(StackContainers {
            stack: name.clone(),
            user: a.user.clone(),
            uid: a.uid,
            socket,
            containers,
            error,
        });
    }
    Ok(Listing { stacks })
}

impl Render for Listing {
    fn text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let header = ["STACK", "CONTAINER", "IMAGE", "STATE", "HEALTH", "PORTS"];
        let mut rows: Vec<[String; 6]> = Vec::new();
        let mut notes: Vec<(usize, String)> = Vec::new();
        for s in &self.stacks {
            if let Some(e) = &s.error {
                notes.push((
                    rows.len(),
                    format!(
                        "{}: no answer from {} ({e})",
                        s.stack,
                        escape::path(&s.socket)
                    ),
                ));
                continue;
            }
            if s.containers.is_empty() {
                notes.push((rows.len(), format!("{}: no containers", s.stack)));
            }
            for c in &s.containers {
                rows.push([
                    s.stack.clone(),
                    escape::text(&c.name).into_owned(),
                    escape::text(&c.image).into_owned(),
                    escape::text(&c.state).into_owned(),
                    c.health.clone().unwrap_or_else(|| "-".into()),
                    if c.ports.is_empty() {
                        "-".into()
                    } else {
                        escape::text(&c.ports.join(", ")).into_owned()
                    },
                ]);
            }
        }
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    l.push_str(&format!("{c:<w$}  ", w = width[i]));
                }
            }
            l
        };
        writeln!(out, "{}", line(&header.map(String::from)))?;
        let mut notes = notes.into_iter().peekable();
        for (i, r) in rows.iter().enumerate() {
            while let Some((_, n)) = notes.next_if(|(at, _)| *at == i) {
                writeln!(out, "{}", escape::lines(&n))?;
            }
            writeln!(out, "{}", line(r))?;
        }
        for (_, n) in notes {
            writeln!(out, "{}", escape::lines(&n))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::tests::state_with;
    use std::cell::RefCell;

    /// A podman 4.3 answer (trimmed): a compose container with a published port and a health
    /// check, and a plain one.
    const PODMAN_LIST: &str = r#"[
      {"Id":"1","Names":["/app_web_1"],"Image":"localhost/app:1","State":"running",
       "Status":"Up 2 minutes (healthy)",
       "Ports":[{"IP":"127.0.0.1","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}],
       "Labels":{"com.docker.compose.project":"app","com.docker.compose.service":"web"}},
      {"Id":"2","Names":["/one-off"],"Image":"localhost/busybox:latest","State":"exited",
       "Status":"Exited (0) 5 seconds ago","Ports":null,"Labels":null}
    ]"#;

    #[test]
    fn podmans_list_becomes_name_image_state_health_ports() {
        let got = parse(PODMAN_LIST.as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![
                Container {
                    name: "app_web_1".into(),
                    image: "localhost/app:1".into(),
                    state: "running".into(),
                    health: Some("healthy".into()),
                    ports: vec!["127.0.0.1:8080->80/tcp".into()],
                    project: Some("app".into()),
                    service: Some("web".into()),
                },
                Container {
                    name: "one-off".into(),
                    image: "localhost/busybox:latest".into(),
                    state: "exited".into(),
                    health: None,
                    ports: vec![],
                    project: None,
                    service: None,
                },
            ]
        );
    }

    struct Fake {
        asked: RefCell<Vec<PathBuf>>,
    }
    impl Lister for Fake {
        fn list(&self, socket: &Path) -> Result<Vec<Container>, HttpError> {
            self.asked.borrow_mut().push(socket.to_path_buf());
            if socket.starts_with("/run/user/70001") {
                Err(HttpError::new(socket, LIST, HttpErrorKind::Refused))
            } else {
                parse(PODMAN_LIST.as_bytes())
                    .map_err(|e| HttpError::new(socket, LIST, HttpErrorKind::Json(e)))
            }
        }
    }

    #[test]
    fn a_stack_whose_socket_is_down_is_a_line_and_the_others_are_listed() {
        let mut state = state_with("app", "stk-app", 70_000);
        state
            .stacks
            .extend(state_with("db", "stk-db", 70_001).stacks);
        state
            .stacks
            .extend(state_with("web", "stk-web", 70_002).stacks);
        let fake = Fake {
            asked: RefCell::new(vec![]),
        };
        let got = gather(&Root::new("/"), &state, &[], &fake).unwrap();
        assert_eq!(fake.asked.borrow().len(), 3, "every stack's own socket");
        assert_eq!(
            got.stacks[1].error.as_deref(),
            Some("connection refused (nothing listens on it)")
        );
        let mut text = Vec::new();
        got.text(&mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "STACK  CONTAINER  IMAGE                     STATE    HEALTH   PORTS\n\
             app    app_web_1  localhost/app:1           running  healthy  127.0.0.1:8080->80/tcp\n\
             app    one-off    localhost/busybox:latest  exited   -        -\n\
             db: no answer from /run/user/70001/podman/podman.sock (connection refused (nothing listens on it))\n\
             web    app_web_1  localhost/app:1           running  healthy  127.0.0.1:8080->80/tcp\n\
             web    one-off    localhost/busybox:latest  exited   -        -\n"
        );
        let only = gather(&Root::new("/"), &state, &["web".into()], &fake).unwrap();
        assert_eq!(only.stacks.len(), 1);
        assert!(gather(&Root::new("/"), &state, &["nope".into()], &fake).is_err());
    }
}
