//! The libpod API of a user's podman socket: `GET /_ping` and which running containers mount
//! what (here), images, volumes and copies (`store`). Requests go through the small HTTP client
//! in `http`; `PodmanPort` (port.rs) is the port, `fake` the recording one.
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod http;
pub mod port;
pub mod rootful;
pub mod store;

pub use port::{ApiSockets, PodmanPort};
pub use rootful::{store_anchor, volumes_below};

use crate::error::Result;
use http::{HttpError, HttpErrorKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where podman keeps a rootless user's named volumes, below the user's home, when the user's
/// `storage.conf` (graphroot) and `containers.conf` (volume_path) do not move it.
pub const STORE_BELOW_HOME: &str = ".local/share/containers/storage/volumes";

/// Volume `name`'s data directory in the store anchored at `home` (a user's home, or root's
/// store: [`store_anchor`]).
pub fn volume_data_path(home: &Path, name: &str) -> PathBuf {
    home.join(volumes_below(home)).join(name).join("_data")
}

/// Ok when `GET /_ping` answers 200 with body `OK` within `timeout`.
/// The first request after boot starts `podman system service` (socket activation): allow seconds.
pub fn ping(socket: &Path, timeout: Duration) -> Result<()> {
    let response = http::get(socket, "/_ping", timeout)?;
    if response.status == 200 && response.body == b"OK" {
        Ok(())
    } else {
        Err(HttpError::status(socket, "/_ping", &response).into())
    }
}

/// A running container and the host paths it mounts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContainerMounts {
    pub name: String,
    /// `Source` of each mount (bind mounts: host paths; volumes: their host directory).
    pub sources: Vec<PathBuf>,
}

/// Running containers with the host paths they mount: the list, then one inspect per container.
/// `timeout` bounds each request.
pub fn running_container_mounts(socket: &Path, timeout: Duration) -> Result<Vec<ContainerMounts>> {
    const LIST: &str = "/v4.0.0/libpod/containers/json";
    #[derive(Deserialize)]
    struct Listed {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Names", default)]
        names: Vec<String>,
        #[serde(rename = "State", default)]
        state: String,
    }
    #[derive(Deserialize)]
    struct Inspected {
        #[serde(rename = "Mounts", default)]
        mounts: Vec<Mount>,
    }
    #[derive(Deserialize)]
    struct Mount {
        #[serde(rename = "Source", default)]
        source: String,
    }
    let listed: Vec<Listed> = get_json(socket, LIST, timeout)?;
    let mut out = Vec::new();
    for container in listed.into_iter().filter(|c| c.state == "running") {
        if !container.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(HttpError::new(
                socket,
                LIST,
                HttpErrorKind::Malformed(format!("odd container id {:?}", container.id)),
            )
            .into());
        }
        let inspect = format!("/v4.0.0/libpod/containers/{}/json", container.id);
        let inspected: Inspected = match get_json(socket, &inspect, timeout) {
            Ok(inspected) => inspected,
            // Gone between the list and the inspect: it no longer runs.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        out.push(ContainerMounts {
            name: container
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| container.id.clone()),
            sources: inspected
                .mounts
                .into_iter()
                .filter(|m| !m.source.is_empty())
                .map(|m| PathBuf::from(m.source))
                .collect(),
        });
    }
    Ok(out)
}

fn get_json<T: serde::de::DeserializeOwned>(
    socket: &Path,
    path: &str,
    timeout: Duration,
) -> std::result::Result<T, HttpError> {
    let response = http::get(socket, path, timeout)?;
    if response.status != 200 {
        return Err(HttpError::status(socket, path, &response));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| HttpError::new(socket, path, HttpErrorKind::Json(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::find;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    /// Serves one connection with `answer` after reading the request head; returns the request.
    fn serve_once(
        answer: impl Into<Vec<u8>>,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<String>) {
        let answer: Vec<u8> = answer.into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("podman.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while find(&request, b"\r\n\r\n").is_none() {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            // Write in two pieces so the client has to assemble the answer.
            let (a, b) = answer.split_at(answer.len() / 2);
            let (a, b) = (a.to_vec(), b.to_vec());
            conn.write_all(&a).unwrap();
            conn.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            conn.write_all(&b).unwrap();
            String::from_utf8(request).unwrap()
        });
        (dir, path, server)
    }

    const SECS: Duration = Duration::from_secs(5);

    #[test]
    fn ping_accepts_ok_and_sends_a_plain_request() {
        let (_dir, path, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nOK",
        );
        ping(&path, SECS).unwrap();
        let request = server.join().unwrap();
        assert_eq!(
            request,
            "GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn ping_reads_a_body_that_ends_with_the_connection() {
        let (_dir, path, _server) = serve_once(b"HTTP/1.1 200 OK\r\n\r\nOK");
        ping(&path, SECS).unwrap();
    }

    #[test]
    fn ping_rejects_another_status_and_says_what_came() {
        let (_dir, path, _server) =
            serve_once(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops");
        let err = ping(&path, SECS).unwrap_err().to_string();
        assert!(err.contains("podman.sock"), "{err}");
        assert!(err.contains("status 500"), "{err}");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn ping_rejects_a_body_other_than_ok() {
        let (_dir, path, _server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nNOK");
        assert!(ping(&path, SECS).is_err());
    }

    #[test]
    fn ping_rejects_garbage() {
        let (_dir, path, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let err = ping(&path, SECS).unwrap_err().to_string();
        assert!(err.contains("not an HTTP answer"), "{err}");
    }

    #[test]
    fn ping_names_a_missing_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("podman.sock");
        let err = ping(&path, SECS).unwrap_err();
        assert!(matches!(&err, crate::error::Error::Host(e) if e.is::<http::HttpError>()));
        let err = err.to_string();
        assert!(err.contains("no such socket"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn ping_says_connection_refused_for_a_dead_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("podman.sock");
        drop(UnixListener::bind(&path).unwrap());
        let err = ping(&path, SECS).unwrap_err().to_string();
        assert!(err.contains("connection refused"), "{err}");
    }

    #[test]
    fn ping_gives_up_on_a_server_that_never_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("podman.sock");
        let _listener = UnixListener::bind(&path).unwrap();
        let err = ping(&path, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no complete answer within"), "{err}");
    }

    #[test]
    fn ping_says_when_the_connection_closes_without_an_answer() {
        let (_dir, path, _server) = serve_once(b"");
        let err = ping(&path, SECS).unwrap_err().to_string();
        assert!(err.contains("closed without an answer"), "{err}");
    }

    #[test]
    fn get_decodes_a_chunked_body() {
        let json = r#"[{"Names":["web"],"State":"running"},{"Names":["old"],"State":"exited"},{"Names":["db"],"State":"running"}]"#;
        let mut answer = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        for piece in [&json[..20], &json[20..77], &json[77..]] {
            answer.push_str(&format!("{:x}\r\n{piece}\r\n", piece.len()));
        }
        answer.push_str("0\r\n\r\n");
        let (_dir, path, server) = serve_once(answer);
        let response = http::get(&path, "/v4.0.0/libpod/containers/json", SECS).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, json.as_bytes())
        );
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /v4.0.0/libpod/containers/json HTTP/1.1\r\n"));
    }

    /// Serves `answers` in order, one connection each; returns the request lines.
    fn serve_many(
        answers: Vec<String>,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        std::thread::JoinHandle<Vec<String>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("podman.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while find(&request, b"\r\n\r\n").is_none() {
                    let n = conn.read(&mut buf).unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8(request).unwrap();
                requests.push(text.lines().next().unwrap().to_string());
                conn.write_all(answer.as_bytes()).unwrap();
            }
            requests
        });
        (dir, path, server)
    }

    fn json_answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn running_container_mounts_inspects_each_running_container() {
        let (_dir, path, server) = serve_many(vec![
            json_answer(
                "200 OK",
                r#"[{"Id":"abc123","Names":["app"],"State":"running"},{"Id":"def456","Names":["gone"],"State":"running"},{"Id":"0ld","Names":["old"],"State":"exited"}]"#,
            ),
            json_answer(
                "200 OK",
                r#"{"Id":"abc123","Mounts":[{"Type":"bind","Source":"/srv/app","Destination":"/data"},{"Type":"volume","Source":"/var/lib/v","Destination":"/v"}]}"#,
            ),
            json_answer("404 Not Found", r#"{"cause":"no such container"}"#),
        ]);
        let found = running_container_mounts(&path, SECS).unwrap();
        assert_eq!(
            found,
            vec![ContainerMounts {
                name: "app".into(),
                sources: vec!["/srv/app".into(), "/var/lib/v".into()]
            }]
        );
        assert_eq!(
            server.join().unwrap(),
            vec![
                "GET /v4.0.0/libpod/containers/json HTTP/1.1",
                "GET /v4.0.0/libpod/containers/abc123/json HTTP/1.1",
                "GET /v4.0.0/libpod/containers/def456/json HTTP/1.1",
            ]
        );
    }

    #[test]
    fn running_container_mounts_of_an_idle_stack_is_empty() {
        let (_dir, path, _server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[]\n");
        assert!(running_container_mounts(&path, SECS).unwrap().is_empty());
    }

    #[test]
    fn running_container_mounts_rejects_a_non_list() {
        let (_dir, path, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"cause\":\"x\"}\n ");
        let err = running_container_mounts(&path, SECS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("answer is not what libpod sends"), "{err}");
    }
}
