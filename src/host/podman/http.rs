//! A tiny HTTP/1.1 client over a unix socket (Connection: close, Content-Length or chunked
//! bodies) with a hard deadline: enough for the libpod API, nothing more.
use crate::host::unix::connect_unix;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An answer: status and whole body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why one request on a podman socket did not give a usable answer. Callers match on the kind
/// (a 404 for a container that went away), never on the text.
#[derive(Debug, thiserror::Error)]
#[error("podman socket {}: {method} {path}: {kind}", socket.display())]
pub struct HttpError {
    pub socket: PathBuf,
    pub method: &'static str,
    pub path: String,
    #[source]
    pub kind: HttpErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpErrorKind {
    #[error("no such socket (is podman.socket started?)")]
    NoSocket,
    #[error("connection refused (nothing listens on it)")]
    Refused,
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("connection closed without an answer")]
    Closed,
    #[error("connection closed in the middle of the answer")]
    Truncated,
    #[error("{0}")]
    Malformed(String),
    #[error("unexpected answer: status {status}, body {body:?}")]
    Status { status: u16, body: String },
    #[error("answer is not what libpod sends: {0}")]
    Json(#[source] serde_json::Error),
}

/// The core error keeps a podman request's failure as its source.
impl From<HttpError> for crate::error::Error {
    fn from(e: HttpError) -> Self {
        crate::error::Error::host(e)
    }
}

impl HttpError {
    pub fn new(socket: &Path, path: &str, kind: HttpErrorKind) -> Self {
        HttpError {
            socket: socket.to_path_buf(),
            method: "GET",
            path: path.to_string(),
            kind,
        }
    }

    /// The same for a request other than GET.
    pub fn of(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    /// An answer with a status other than the one wanted (the body's start kept for the message).
    pub fn status(socket: &Path, path: &str, response: &Response) -> Self {
        let body = String::from_utf8_lossy(&response.body);
        Self::new(
            socket,
            path,
            HttpErrorKind::Status {
                status: response.status,
                body: body.chars().take(200).collect(),
            },
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, HttpErrorKind::Status { status: 404, .. })
    }
}

/// One GET, one connection; everything (connect, write, read) ends by `timeout`.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<Response, HttpError> {
    request(socket, "GET", path, None, timeout)
}

/// One request (with a JSON body when given), one connection; everything ends by `timeout`.
pub fn request(
    socket: &Path,
    method: &'static str,
    path: &str,
    json_body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let fail = |kind: HttpErrorKind| HttpError::new(socket, path, kind).of(method);
    let deadline = Instant::now() + timeout;
    let mut stream = connect_unix(socket, timeout).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => HttpErrorKind::NoSocket,
            std::io::ErrorKind::ConnectionRefused => HttpErrorKind::Refused,
            _ => HttpErrorKind::Connect(e),
        })
    })?;
    let io_fail = |e: std::io::Error| {
        fail(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                HttpErrorKind::Timeout(timeout)
            }
            _ => HttpErrorKind::Io(e),
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
            return Err(fail(HttpErrorKind::Timeout(timeout)));
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
        Ok(None) if raw.is_empty() => Err(fail(HttpErrorKind::Closed)),
        Ok(None) => Err(fail(HttpErrorKind::Truncated)),
        Err(what) => Err(fail(HttpErrorKind::Malformed(what))),
    }
}

/// Ok(None) while more bytes are needed; Err for an answer that is not HTTP we understand.
/// Without Content-Length or chunking the body runs to the end of the stream (`eof`).
fn parse_response(raw: &[u8], eof: bool) -> std::result::Result<Option<Response>, String> {
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
