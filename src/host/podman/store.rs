//! A user's podman store over the libpod API: images, named volumes and the containers of a
//! compose project, and copying an image from one user's store to another's by streaming the
//! export of one socket into the load of the other (never held whole in memory).
use super::http::{get, request, HttpError, Response};
use crate::error::{Error, Result};
use crate::host::unix::connect_unix;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a store answered with something isolate cannot use, or a copy broke off. The socket
/// and the request are kept; the cause is the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The answer's JSON is not the object asked for (`what`: "an image", "a container list").
    #[error("podman socket {}: GET {path}: answer is not {what}: {source}", socket.display())]
    NotA {
        socket: PathBuf,
        path: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("podman socket {}: {what}: answer is not what libpod sends: {source}", socket.display())]
    Json {
        socket: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A step of streaming an image from one store into another failed.
    #[error("podman socket {}: {what}: {source}", socket.display())]
    Copy {
        socket: PathBuf,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::host(e)
    }
}

fn unexpected(socket: &Path, method: &'static str, path: &str, response: &Response) -> Error {
    HttpError::status(socket, path, response).of(method).into()
}

/// Percent-encodes `s` for a URL path segment or query value (libpod's image routes take
/// names with `/` and `:` as they are).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The image's ID in the store behind `socket`, or None when the store has no such image.
pub fn image_id(socket: &Path, name: &str, timeout: Duration) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Inspected {
        #[serde(rename = "Id")]
        id: String,
    }
    let path = format!("/v4.0.0/libpod/images/{}/json", encode(name, true));
    let response = get(socket, &path, timeout)?;
    match response.status {
        200 => {
            let i: Inspected =
                serde_json::from_slice(&response.body).map_err(|source| StoreError::NotA {
                    socket: socket.to_path_buf(),
                    path: path.clone(),
                    what: "an image",
                    source,
                })?;
            Ok(Some(i.id))
        }
        404 => Ok(None),
        _ => Err(unexpected(socket, "GET", &path, &response)),
    }
}

/// A container (running or not) of a compose project.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProjectContainer {
    pub name: String,
    /// The image as the container names it.
    pub image: String,
    pub image_id: String,
    pub state: String,
    /// Named volumes it mounts.
    pub volumes: Vec<String>,
}

/// The labels podman-compose and docker compose put on a project's containers and volumes.
pub const PROJECT_LABELS: [&str; 2] = ["io.podman.compose.project", "com.docker.compose.project"];

/// Every container of compose project `project` behind `socket`, by either project label.
pub fn project_containers(
    socket: &Path,
    project: &str,
    timeout: Duration,
) -> Result<Vec<ProjectContainer>> {
    #[derive(Deserialize)]
    struct Listed {
        #[serde(rename = "Names", default)]
        names: Vec<String>,
        #[serde(rename = "Image", default)]
        image: String,
        #[serde(rename = "ImageID", default)]
        image_id: String,
        #[serde(rename = "State", default)]
        state: String,
        #[serde(rename = "Mounts", default)]
        mounts: Vec<String>,
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let mut out: Vec<ProjectContainer> = Vec::new();
    for label in PROJECT_LABELS {
        let filters = format!("{{\"label\":[\"{label}={project}\"]}}");
        let path = format!(
            "/v4.0.0/libpod/containers/json?all=true&filters={}",
            encode(&filters, false)
        );
        let response = get(socket, &path, timeout)?;
        if response.status != 200 {
            return Err(unexpected(socket, "GET", &path, &response));
        }
        let listed: Vec<Listed> =
            serde_json::from_slice(&response.body).map_err(|source| StoreError::NotA {
                socket: socket.to_path_buf(),
                path: path.clone(),
                what: "a container list",
                source,
            })?;
        for c in listed {
            // The filter is the server's; the label is checked again here.
            let labelled = c
                .labels
                .as_ref()
                .is_some_and(|l| l.get(label).map(String::as_str) == Some(project));
            let name = c.names.first().cloned().unwrap_or_default();
            if !labelled || out.iter().any(|o| o.name == name) {
                continue;
            }
            out.push(ProjectContainer {
                name,
                image: c.image,
                image_id: c.image_id,
                state: c.state,
                volumes: c.mounts,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A named volume of a store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeInfo {
    #[serde(rename = "Name")]
    pub name: String,
    /// Its host directory (`.../volumes/NAME/_data`) as the store reports it: the store's
    /// user answers on her socket, so the hand-off only compares it with where it computes
    /// the volume to be (`handoff::volumes::data_path`), never uses it as a path.
    #[serde(rename = "Mountpoint", default)]
    pub mountpoint: std::path::PathBuf,
    #[serde(rename = "Driver", default)]
    pub driver: String,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

fn json_of<T: serde::de::DeserializeOwned>(socket: &Path, what: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| {
        StoreError::Json {
            socket: socket.to_path_buf(),
            what: what.to_string(),
            source,
        }
        .into()
    })
}

/// The volume `name`, or None when the store has none.
pub fn volume(socket: &Path, name: &str, timeout: Duration) -> Result<Option<VolumeInfo>> {
    let path = format!("/v4.0.0/libpod/volumes/{}/json", encode(name, false));
    let response = get(socket, &path, timeout)?;
    match response.status {
        200 => json_of(socket, &path, &response.body).map(Some),
        404 => Ok(None),
        _ => Err(unexpected(socket, "GET", &path, &response)),
    }
}

/// The volumes labelled as belonging to compose project `project` (either label).
pub fn project_volumes(socket: &Path, project: &str, timeout: Duration) -> Result<Vec<VolumeInfo>> {
    let mut out: Vec<VolumeInfo> = Vec::new();
    for label in PROJECT_LABELS {
        let filters = format!("{{\"label\":[\"{label}={project}\"]}}");
        let path = format!(
            "/v4.0.0/libpod/volumes/json?filters={}",
            encode(&filters, false)
        );
        let response = get(socket, &path, timeout)?;
        if response.status != 200 {
            return Err(unexpected(socket, "GET", &path, &response));
        }
        let listed: Vec<VolumeInfo> = json_of(socket, &path, &response.body)?;
        for v in listed {
            let labelled = v
                .labels
                .as_ref()
                .is_some_and(|l| l.get(label).map(String::as_str) == Some(project));
            if labelled && !out.iter().any(|o| o.name == v.name) {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Creates the local volume `name` with `labels`; an existing one is returned as it is.
pub fn create_volume(
    socket: &Path,
    name: &str,
    labels: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<VolumeInfo> {
    if let Some(v) = volume(socket, name, timeout)? {
        return Ok(v);
    }
    let path = "/v4.0.0/libpod/volumes/create";
    let body =
        serde_json::json!({"Name": name, "Label": labels, "Labels": labels, "Driver": "local"});
    let response = request(
        socket,
        "POST",
        path,
        Some(body.to_string().as_bytes()),
        timeout,
    )?;
    if response.status != 201 && response.status != 200 {
        return Err(unexpected(socket, "POST", path, &response));
    }
    json_of(socket, path, &response.body)
}

/// What a copy moved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub bytes: u64,
}

/// How a streamed HTTP body ends.
enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before the first chunk's size line.
    Chunked {
        left: Option<u64>,
        done: bool,
    },
    UntilEof,
}

/// Reads the body of an HTTP answer as a stream.
struct Body<R> {
    inner: R,
    framing: Framing,
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.framing {
            Framing::UntilEof => self.inner.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the answer ended early",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { left, done } => loop {
                if *done {
                    return Ok(0);
                }
                match left {
                    Some(0) => {
                        // The CRLF after a chunk's data, then the next size line.
                        let mut crlf = [0u8; 2];
                        self.inner.read_exact(&mut crlf)?;
                        *left = None;
                    }
                    Some(n) => {
                        let want = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                        let got = self.inner.read(&mut buf[..want])?;
                        if got == 0 {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the answer ended inside a chunk",
                            ));
                        }
                        *n -= got as u64;
                        return Ok(got);
                    }
                    None => {
                        let mut line = String::new();
                        self.inner.read_line(&mut line)?;
                        let size = line.trim_end().split(';').next().unwrap_or_default().trim();
                        let size = u64::from_str_radix(size, 16).map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("bad chunk size {size:?}"),
                            )
                        })?;
                        if size == 0 {
                            *done = true;
                        } else {
                            *left = Some(size);
                        }
                    }
                }
            },
        }
    }
}

/// Sends a request head; the body, if any, follows.
fn request_head(stream: &mut UnixStream, head: &str) -> std::io::Result<()> {
    stream.write_all(head.as_bytes())
}

/// Reads an answer's status line and headers; the body is left in `r`.
fn read_head<R: BufRead>(r: &mut R) -> std::result::Result<(u16, Framing), String> {
    let mut status_line = String::new();
    r.read_line(&mut status_line).map_err(|e| e.to_string())?;
    let mut parts = status_line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = match parts.next().and_then(|s| s.parse::<u16>().ok()) {
        Some(s) if version.starts_with("HTTP/1.") => s,
        _ => return Err(format!("not an HTTP answer: {:?}", status_line.trim_end())),
    };
    let mut framing = Framing::UntilEof;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the answer ended in its head".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            framing = Framing::Length(
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            framing = Framing::Chunked {
                left: None,
                done: false,
            };
        }
    }
    Ok((status, framing))
}

/// Copies image `name` from the store behind `from` into the store behind `to`: libpod's
/// export (docker-archive) streamed, chunk by chunk, into libpod's load. `idle` bounds each
/// read and write (a stalled side fails instead of hanging).
pub fn copy_image(from: &Path, to: &Path, name: &str, idle: Duration) -> Result<Copied> {
    let export = format!(
        "/v4.0.0/libpod/images/{}/get?format=docker-archive",
        encode(name, true)
    );
    let load = "/v4.0.0/libpod/images/load";
    let fail = |socket: &Path, what: &str, e: &dyn std::fmt::Display| -> Error {
        StoreError::Copy {
            socket: socket.to_path_buf(),
            what: what.to_string(),
            source: e.to_string().into(),
        }
        .into()
    };
    let open = |socket: &Path| -> Result<UnixStream> {
        let s = connect_unix(socket, idle).map_err(|e| fail(socket, "connect", &e))?;
        s.set_read_timeout(Some(idle))
            .and_then(|_| s.set_write_timeout(Some(idle)))
            .map_err(|e| fail(socket, "timeouts", &e))?;
        Ok(s)
    };

    let mut src = open(from)?;
    request_head(
        &mut src,
        &format!("GET {export} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"),
    )
    .map_err(|e| fail(from, &format!("GET {export}"), &e))?;
    let mut src = BufReader::with_capacity(64 * 1024, src);
    let (status, framing) =
        read_head(&mut src).map_err(|e| fail(from, &format!("GET {export}"), &e))?;
    let mut body = Body {
        inner: src,
        framing,
    };
    if status != 200 {
        let mut text = Vec::new();
        let _ = body.by_ref().take(4096).read_to_end(&mut text);
        let text: String = String::from_utf8_lossy(&text).chars().take(200).collect();
        return Err(fail(
            from,
            &format!("GET {export}"),
            &format!("status {status}, body {text:?}"),
        ));
    }

    let mut dst = open(to)?;
    request_head(
        &mut dst,
        &format!(
            "POST {load} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ),
    )
    .map_err(|e| fail(to, &format!("POST {load}"), &e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(from, &format!("reading GET {export}"), &e)),
        };
        bytes += n as u64;
        let sent = dst
            .write_all(format!("{n:x}\r\n").as_bytes())
            .and_then(|_| dst.write_all(&buf[..n]))
            .and_then(|_| dst.write_all(b"\r\n"));
        sent.map_err(|e| fail(to, &format!("POST {load}"), &e))?;
    }
    dst.write_all(b"0\r\n\r\n")
        .map_err(|e| fail(to, &format!("POST {load}"), &e))?;
    let mut dst = BufReader::new(dst);
    let (status, framing) =
        read_head(&mut dst).map_err(|e| fail(to, &format!("POST {load}"), &e))?;
    let mut answer = Vec::new();
    Body {
        inner: dst,
        framing,
    }
    .take(1 << 20)
    .read_to_end(&mut answer)
    .map_err(|e| fail(to, &format!("POST {load}"), &e))?;
    if status != 200 {
        let text: String = String::from_utf8_lossy(&answer).chars().take(300).collect();
        return Err(fail(
            to,
            &format!("POST {load}"),
            &format!("status {status}, body {text:?}"),
        ));
    }
    Ok(Copied { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn names_are_encoded_for_paths_and_queries() {
        assert_eq!(encode("localhost/app:1.0", true), "localhost/app:1.0");
        assert_eq!(
            encode("{\"label\":[\"a=b c\"]}", false),
            "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D".replace("%3A", ":")
        );
    }

    /// One fake libpod per socket: answers one connection with `answer`, returns the request.
    fn serve(
        dir: &Path,
        name: &str,
        answer: Vec<u8>,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<u8>>) {
        let path = dir.join(name);
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 65536];
            // Read until the request is complete: a GET head, or a chunked body's last chunk.
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if (text.starts_with("GET") && text.contains("\r\n\r\n"))
                    || req.ends_with(b"0\r\n\r\n")
                {
                    break;
                }
            }
            s.write_all(&answer).unwrap();
            req
        });
        (path, handle)
    }

    #[test]
    fn copy_streams_a_chunked_export_into_a_chunked_load() {
        let dir = tempfile::tempdir().unwrap();
        let tar: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut export = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in tar.chunks(70_000) {
            export.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            export.extend_from_slice(part);
            export.extend_from_slice(b"\r\n");
        }
        export.extend_from_slice(b"0\r\n\r\n");
        let (from, exported) = serve(dir.path(), "from.sock", export);
        let (to, loaded) = serve(
            dir.path(),
            "to.sock",
            b"HTTP/1.1 200 OK\r\nContent-Length: 34\r\n\r\n{\"Names\":[\"localhost/app:latest\"]}"
                .to_vec(),
        );
        let copied =
            copy_image(&from, &to, "localhost/app:latest", Duration::from_secs(5)).unwrap();
        assert_eq!(copied.bytes, tar.len() as u64);
        let get = String::from_utf8(exported.join().unwrap()).unwrap();
        assert!(get.starts_with("GET /v4.0.0/libpod/images/localhost/app:latest/get?format=docker-archive HTTP/1.1\r\n"), "{get}");
        // The load request's chunked body decodes to exactly the exported bytes.
        let post = loaded.join().unwrap();
        let head_end = crate::host::podman::http::find(&post, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&post[..head_end]);
        assert!(
            head.starts_with("POST /v4.0.0/libpod/images/load HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        let body = crate::host::podman::http::decode_chunked(&post[head_end + 4..])
            .unwrap()
            .unwrap();
        assert_eq!(body, tar);
    }

    #[test]
    fn a_missing_image_is_the_export_status_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"cause\":\"no such image\"}";
        let (from, _) = serve(
            dir.path(),
            "from.sock",
            format!(
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        );
        let to = dir.path().join("to.sock");
        let e = copy_image(&from, &to, "localhost/none", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("status 404"), "{e}");
    }
}
