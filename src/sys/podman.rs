// The stack's podman API socket: `GET /_ping` and "which containers run?" over HTTP on a unix socket.
// A tiny HTTP/1.1 client (Connection: close, Content-Length or chunked bodies) with a hard deadline.
use crate::error::{Error, Result};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a stack user's socket-activated podman API listens.
pub fn socket_path(root: &Path, uid: u32) -> PathBuf {
    root.join(format!("run/user/{uid}/podman/podman.sock"))
}

/// Ok when `GET /_ping` answers 200 with body `OK` within `timeout`.
/// The first request after boot starts `podman system service` (socket activation): allow seconds.
pub fn ping(socket: &Path, timeout: Duration) -> Result<()> {
    let response = get(socket, "/_ping", timeout)?;
    if response.status == 200 && response.body == b"OK" {
        Ok(())
    } else {
        Err(unexpected(socket, "/_ping", &response))
    }
}

/// Names of the containers that are running, from `GET /v4.0.0/libpod/containers/json`.
pub fn running_containers(socket: &Path, timeout: Duration) -> Result<Vec<String>> {
    const PATH: &str = "/v4.0.0/libpod/containers/json";
    #[derive(Deserialize)]
    struct Container {
        #[serde(rename = "Names", default)]
        names: Vec<String>,
        #[serde(rename = "State", default)]
        state: String,
    }
    let response = get(socket, PATH, timeout)?;
    if response.status != 200 {
        return Err(unexpected(socket, PATH, &response));
    }
    let containers: Vec<Container> = serde_json::from_slice(&response.body).map_err(|e| {
        Error::Failed(format!(
            "podman socket {}: GET {PATH}: answer is not a container list: {e}",
            socket.display()
        ))
    })?;
    Ok(containers
        .into_iter()
        .filter(|c| c.state == "running")
        .flat_map(|c| c.names)
        .collect())
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
            return Err(Error::Failed(format!(
                "podman socket {}: GET {LIST}: odd container id {:?}",
                socket.display(),
                container.id
            )));
        }
        let inspect = format!("/v4.0.0/libpod/containers/{}/json", container.id);
        let inspected: Inspected = match get_json(socket, &inspect, timeout) {
            Ok(inspected) => inspected,
            // Gone between the list and the inspect: it no longer runs.
            Err(Error::Failed(m)) if m.contains("status 404") => continue,
            Err(e) => return Err(e),
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
) -> Result<T> {
    let response = get(socket, path, timeout)?;
    if response.status != 200 {
        return Err(unexpected(socket, path, &response));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        Error::Failed(format!(
            "podman socket {}: GET {path}: answer is not what libpod sends: {e}",
            socket.display()
        ))
    })
}

/// A running process whose mount namespace has (part of) a data path mounted: a container that
/// would see its files change owner under it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MountHolder {
    /// The lowest pid in that mount namespace (one per namespace).
    pub pid: u32,
    pub uid: u32,
    pub comm: String,
    /// Where the namespace has it mounted.
    pub mount_point: PathBuf,
}

/// Processes of any user and any engine (podman CLI without an API socket included) whose
/// mount namespace bind-mounts `path` or a directory inside it, found in /proc/*/mountinfo.
/// Namespaces that merely copy the host's tree (services with PrivateTmp=) mount the whole
/// filesystem, not the data path, so they do not count; when the data path is itself a whole
/// filesystem, only namespaces in another user namespace (rootless containers) count.
/// Only meaningful for the live host (`path` is a real absolute path, not under --root).
pub fn mount_holders(path: &Path) -> Result<Vec<MountHolder>> {
    mount_holders_in(Path::new("/proc"), path)
}

fn mount_holders_in(proc_root: &Path, path: &Path) -> Result<Vec<MountHolder>> {
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::io(format!("{what} {}", p.display()), e);
    let own = proc_root.join("self/mountinfo");
    let own_text = std::fs::read_to_string(&own).map_err(|e| io("reading", &own, e))?;
    let (device, fs_path) = locate(&parse_mountinfo(&own_text), path).ok_or_else(|| {
        Error::Failed(format!(
            "{} is on no mount of this namespace",
            path.display()
        ))
    })?;
    let ns_of =
        |pid: &str, kind: &str| std::fs::read_link(proc_root.join(pid).join("ns").join(kind)).ok();
    let (own_mnt, own_user) = (ns_of("self", "mnt"), ns_of("self", "user"));
    let entries = std::fs::read_dir(proc_root).map_err(|e| io("listing", proc_root, e))?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut seen = std::collections::HashSet::new();
    let mut holders = Vec::new();
    for pid in pids {
        let pid_text = pid.to_string();
        // Processes come and go while we look: whatever vanished holds nothing.
        let Some(mnt) = ns_of(&pid_text, "mnt") else {
            continue;
        };
        if Some(&mnt) == own_mnt.as_ref() || !seen.insert(mnt) {
            continue;
        }
        let foreign_user_ns = ns_of(&pid_text, "user") != own_user;
        if fs_path == Path::new("/") && !foreign_user_ns {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(proc_root.join(&pid_text).join("mountinfo")) else {
            continue;
        };
        let Some(mount) = parse_mountinfo(&text)
            .into_iter()
            .find(|m| m.device == device && m.root.starts_with(&fs_path))
        else {
            continue;
        };
        let status =
            std::fs::read_to_string(proc_root.join(&pid_text).join("status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        let comm =
            std::fs::read_to_string(proc_root.join(&pid_text).join("comm")).unwrap_or_default();
        holders.push(MountHolder {
            pid,
            uid,
            comm: comm.trim_end().to_string(),
            mount_point: mount.mount_point,
        });
    }
    Ok(holders)
}

/// One line of /proc/PID/mountinfo, the fields that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MountEntry {
    /// `major:minor`
    device: String,
    /// The directory of the filesystem that is mounted (a bind mount's source, fs-relative).
    root: PathBuf,
    mount_point: PathBuf,
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let device = fields.nth(2)?.to_string();
            let root = unescape_mountinfo(fields.next()?);
            let mount_point = unescape_mountinfo(fields.next()?);
            Some(MountEntry {
                device,
                root,
                mount_point,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The device and filesystem-relative path of absolute `path`, from the mount (the last of the
/// longest mount points, as later mounts cover earlier ones) that contains it.
fn locate(mounts: &[MountEntry], path: &Path) -> Option<(String, PathBuf)> {
    let mount = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))?
        .1;
    let inside = path.strip_prefix(&mount.mount_point).ok()?;
    Some((mount.device.clone(), mount.root.join(inside)))
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn unexpected(socket: &Path, path: &str, response: &Response) -> Error {
    let body = String::from_utf8_lossy(&response.body);
    let body: String = body.chars().take(200).collect();
    Error::Failed(format!(
        "podman socket {}: GET {path}: unexpected answer: status {}, body {body:?}",
        socket.display(),
        response.status
    ))
}

/// One GET, one connection; everything (connect, write, read) ends by `timeout`.
pub(crate) fn get(socket: &Path, path: &str, timeout: Duration) -> Result<Response> {
    request(socket, "GET", path, None, timeout)
}

/// One request (with a JSON body when given), one connection; everything ends by `timeout`.
pub(crate) fn request(
    socket: &Path,
    method: &str,
    path: &str,
    json_body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response> {
    let fail = |what: String| {
        Error::Failed(format!(
            "podman socket {}: {method} {path}: {what}",
            socket.display()
        ))
    };
    let deadline = Instant::now() + timeout;
    let mut stream = super::systemd::connect_unix(socket, timeout).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such socket (is podman.socket started?)".into(),
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (nothing listens on it)".into()
            }
            _ => format!("cannot connect: {e}"),
        })
    })?;
    let io_fail = |e: std::io::Error| {
        fail(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no complete answer within {timeout:?}")
            }
            _ => e.to_string(),
        })
    };
    let left = |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        // A zero timeout means "block forever" to set_*_timeout.
        Some(left.max(Duration::from_millis(1)))
    };
    stream.set_write_timeout(left(deadline)).map_err(io_fail)?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n").into_bytes();
    if let Some(body) = json_body {
        request.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(json_body.unwrap_or_default());
    stream.write_all(&request).map_err(io_fail)?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(fail(format!("no complete answer within {timeout:?}")));
        }
        stream.set_read_timeout(left(deadline)).map_err(io_fail)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                // Stop as soon as the answer is complete: a server may keep the connection open.
                if let Ok(Some(response)) = parse_response(&raw, false) {
                    return Ok(response);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_fail(e)),
        }
    }
    match parse_response(&raw, true) {
        Ok(Some(response)) => Ok(response),
        Ok(None) if raw.is_empty() => Err(fail("connection closed without an answer".into())),
        Ok(None) => Err(fail("connection closed in the middle of the answer".into())),
        Err(what) => Err(fail(what)),
    }
}

/// Ok(None) while more bytes are needed; Err for an answer that is not HTTP we understand.
/// Without Content-Length or chunking the body runs to the end of the stream (`eof`).
pub(crate) fn parse_response(
    raw: &[u8],
    eof: bool,
) -> std::result::Result<Option<Response>, String> {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "answer head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(status) if version.starts_with("HTTP/1.") => status,
        _ => return Err(format!("not an HTTP answer: {status_line:?}")),
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = &raw[head_end + 4..];
    if chunked {
        return Ok(decode_chunked(body)?.map(|body| Response { status, body }));
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(Some(Response {
            status,
            body: body[..len].to_vec(),
        })),
        Some(_) => Ok(None),
        // No length: the body ends with the connection, unless it has none by definition.
        None if status == 204 || status == 304 || (100..200).contains(&status) => {
            Ok(Some(Response {
                status,
                body: Vec::new(),
            }))
        }
        None if eof => Ok(Some(Response {
            status,
            body: body.to_vec(),
        })),
        None => Ok(None),
    }
}

/// Ok(None) until the terminating zero-size chunk has arrived.
pub(crate) fn decode_chunked(mut data: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn socket_path_is_under_the_users_runtime_dir() {
        assert_eq!(
            socket_path(Path::new("/"), 801),
            PathBuf::from("/run/user/801/podman/podman.sock")
        );
    }

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
        assert!(matches!(err, Error::Failed(_)));
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
    fn running_containers_decodes_chunked_json_and_keeps_running_ones() {
        let json = r#"[{"Names":["web"],"State":"running"},{"Names":["old"],"State":"exited"},{"Names":["db"],"State":"running"}]"#;
        let mut answer = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        for piece in [&json[..20], &json[20..77], &json[77..]] {
            answer.push_str(&format!("{:x}\r\n{piece}\r\n", piece.len()));
        }
        answer.push_str("0\r\n\r\n");
        let (_dir, path, server) = serve_once(answer);
        assert_eq!(running_containers(&path, SECS).unwrap(), vec!["web", "db"]);
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

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
40 22 254:16 / /srv/big rw,relatime shared:9 - ext4 /dev/vdb rw
41 22 254:0 /srv/with\\040space /mnt/sp rw shared:10 - ext4 /dev/vda rw
";

    #[test]
    fn locate_finds_the_covering_mount_and_the_path_inside_its_filesystem() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            locate(&mounts, Path::new("/srv/app")),
            Some(("254:0".into(), PathBuf::from("/srv/app")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/srv/big/photos")),
            Some(("254:16".into(), PathBuf::from("/photos")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/srv/big")),
            Some(("254:16".into(), PathBuf::from("/")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/mnt/sp/x")),
            Some(("254:0".into(), PathBuf::from("/srv/with space/x")))
        );
    }

    /// A fake /proc: `self` plus processes, each with its namespaces and mountinfo.
    fn fake_proc(procs: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, mnt, user, mountinfo) in procs {
            let p = dir.path().join(pid);
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::os::unix::fs::symlink(format!("mnt:[{mnt}]"), p.join("ns/mnt")).unwrap();
            std::os::unix::fs::symlink(format!("user:[{user}]"), p.join("ns/user")).unwrap();
            std::fs::write(p.join("mountinfo"), mountinfo).unwrap();
            std::fs::write(p.join("status"), "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n").unwrap();
            std::fs::write(p.join("comm"), format!("proc{pid}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn mount_holders_sees_bind_mounts_of_the_data_and_ignores_copies_of_the_host_tree() {
        let container = "\
900 800 0:55 / / rw - overlay overlay rw
901 900 254:0 /srv/app /data rw - ext4 /dev/vda rw
";
        let sub_container = "900 800 254:0 /srv/app/media /media rw - ext4 /dev/vda rw\n";
        let other_data = "900 800 254:0 /srv/other /data rw - ext4 /dev/vda rw\n";
        let proc = fake_proc(&[
            ("self", "1", "1", MOUNTINFO),
            ("1", "1", "1", MOUNTINFO),
            // A service with PrivateTmp=: a copy of the host's tree.
            ("300", "2", "1", MOUNTINFO),
            ("400", "3", "9", container),
            ("401", "3", "9", container),
            ("500", "4", "9", sub_container),
            ("600", "5", "9", other_data),
        ]);
        let holders = mount_holders_in(proc.path(), Path::new("/srv/app")).unwrap();
        let seen: Vec<(u32, &str)> = holders
            .iter()
            .map(|h| (h.pid, h.mount_point.to_str().unwrap()))
            .collect();
        assert_eq!(seen, vec![(400, "/data"), (500, "/media")]);
        assert_eq!(holders[0].uid, 1000);
        assert_eq!(holders[0].comm, "proc400");
    }

    #[test]
    fn a_whole_filesystem_counts_only_in_another_user_namespace() {
        let copy = MOUNTINFO;
        let rootless = "900 800 254:16 / /data rw - ext4 /dev/vdb rw\n";
        let proc = fake_proc(&[
            ("self", "1", "1", MOUNTINFO),
            ("300", "2", "1", copy),
            ("400", "3", "9", rootless),
        ]);
        let holders = mount_holders_in(proc.path(), Path::new("/srv/big")).unwrap();
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].pid, 400);
    }

    #[test]
    fn running_containers_of_an_idle_stack_is_empty() {
        let (_dir, path, _server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[]\n");
        assert!(running_containers(&path, SECS).unwrap().is_empty());
    }

    #[test]
    fn running_containers_rejects_a_non_list() {
        let (_dir, path, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"cause\":\"x\"}\n ");
        let err = running_containers(&path, SECS).unwrap_err().to_string();
        assert!(err.contains("not a container list"), "{err}");
    }
}
