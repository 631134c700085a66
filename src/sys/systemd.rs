// logind linger and the stack user's systemd manager, over D-Bus (zbus): no systemctl.
// The `Systemd` trait is what plan/apply see; `DbusSystemd` is the real one, `RecordingSystemd` the test fake.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use zbus::proxy::CacheProperties;
use zbus_systemd::{login1, systemd1};

/// The unit that gives each stack its podman API socket.
pub const PODMAN_SOCKET_UNIT: &str = "podman.socket";

/// How long one connection (connect + authentication) or one method call may take.
pub const BUS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The least time one look of a wait gets, even at its deadline: a wait may overrun its
/// timeout by this much (or, while connecting, by one BUS_CALL_TIMEOUT).
const LAST_LOOK: Duration = Duration::from_millis(500);

/// One unit in a user's manager, as `systemctl --user show` would report it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitFacts {
    /// `enabled`, `disabled`, `static`, ... (empty when the manager has no such unit file).
    pub unit_file_state: String,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub active_state: String,
}

/// What observation needs to know about one stack user's systemd side. Read-only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// ROOT/var/lib/systemd/linger/USER exists.
    pub linger: bool,
    /// ActiveState of `user@UID.service` in the system manager; `inactive` when no such unit is
    /// loaded; None when there is no system bus to ask (ROOT/run/dbus/system_bus_socket missing).
    pub manager_state: Option<String>,
    /// The asked-for unit in the user's own manager; None while that manager's private socket
    /// does not exist (or refuses connections), i.e. the user manager is not running.
    pub unit: Option<UnitFacts>,
}

/// The systemd effects isolate needs. `uid` is always the stack user's uid.
pub trait Systemd {
    /// Ok when the system bus answers and logind is on it; `Error::Refused` otherwise (no systemd here).
    fn probe(&self) -> Result<()>;
    /// Read-only facts about `user` (uid `uid`) and `unit` in its user manager.
    fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts>;
    /// logind `SetUserLinger(uid, true, false)`: the user's manager starts now and at every boot.
    fn enable_linger(&self, uid: u32) -> Result<()>;
    /// logind `SetUserLinger(uid, false, false)`: the undo of `enable_linger`.
    fn disable_linger(&self, uid: u32) -> Result<()>;
    /// Waits until `user@UID.service` is active and its private socket accepts a connection.
    fn wait_user_manager(&self, uid: u32, timeout: Duration) -> Result<()>;
    /// In the user's manager: EnableUnitFiles, Reload (when something changed), StartUnit, then
    /// waits until the unit is active.
    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()>;
    /// In the user's manager: StartUnit only (nothing enabled, gone at the next boot), then
    /// waits until the unit is active. For a socket isolate needs once, e.g. the legacy user's.
    fn start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()>;
}

/// The real thing: talks to ROOT/run/dbus/system_bus_socket and ROOT/run/user/UID/systemd/private.
#[derive(Clone, Debug)]
pub struct DbusSystemd {
    root: PathBuf,
    call_timeout: Duration,
}

impl DbusSystemd {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DbusSystemd {
            root: root.into(),
            call_timeout: BUS_CALL_TIMEOUT,
        }
    }

    pub fn system_bus_socket(&self) -> PathBuf {
        self.root.join("run/dbus/system_bus_socket")
    }

    pub fn linger_file(&self, user: &str) -> PathBuf {
        self.root.join("var/lib/systemd/linger").join(user)
    }

    /// The user manager's private socket; it accepts uid 0 (systemd checks `uid == 0 || uid == geteuid()`).
    pub fn user_manager_socket(&self, uid: u32) -> PathBuf {
        self.root.join(format!("run/user/{uid}/systemd/private"))
    }

    async fn system_bus(&self) -> Result<zbus::Connection> {
        let path = self.system_bus_socket();
        let stream = connect_unix(&path, self.call_timeout)
            .map_err(|e| Error::Failed(format!("system bus {}: {e}", path.display())))?;
        let build = zbus::connection::Builder::unix_stream(stream)
            .method_timeout(self.call_timeout)
            .build();
        within(self.call_timeout, build)
            .await
            .map_err(|e| Error::Failed(format!("system bus {}: {e}", path.display())))
    }

    async fn user_manager(&self, uid: u32) -> Result<zbus::Connection> {
        let path = self.user_manager_socket(uid);
        let stream = connect_unix(&path, self.call_timeout).map_err(|e| {
            Error::Failed(format!("manager of uid {uid} at {}: {e}", path.display()))
        })?;
        let stream = sender_relay::start(stream, self.call_timeout).map_err(|e| {
            Error::Failed(format!("manager of uid {uid} at {}: {e}", path.display()))
        })?;
        let build = zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .method_timeout(self.call_timeout)
            .build();
        within(self.call_timeout, build)
            .await
            .map_err(|e| Error::Failed(format!("manager of uid {uid} at {}: {e}", path.display())))
    }

    async fn set_linger(&self, uid: u32, enable: bool) -> Result<()> {
        let conn = self.system_bus().await?;
        let call = async {
            let logind = login1::ManagerProxy::new(&conn).await?;
            logind.set_user_linger(uid, enable, false).await
        };
        within(self.call_timeout, call).await.map_err(|e| {
            Error::Failed(format!(
                "logind SetUserLinger(uid {uid}, {enable}) on {}: {e}",
                self.system_bus_socket().display()
            ))
        })
    }
}

/// `ActiveState` of `unit`, or `inactive` when the manager has not loaded it (NoSuchUnit).
async fn unit_active_state(conn: &zbus::Connection, unit: &str) -> zbus::Result<String> {
    let manager = manager_proxy(conn).await?;
    let path = match manager.get_unit(unit.to_string()).await {
        Ok(path) => path,
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            return Ok("inactive".to_string())
        }
        Err(e) => return Err(e),
    };
    unit_proxy(conn, path).await?.active_state().await
}

/// Uncached: property caching asks the bus for the name's owner, which a private socket
/// (peer-to-peer, no bus) cannot answer.
async fn manager_proxy<'a>(conn: &zbus::Connection) -> zbus::Result<systemd1::ManagerProxy<'a>> {
    systemd1::ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

async fn unit_proxy<'a>(
    conn: &zbus::Connection,
    path: zbus::OwnedObjectPath,
) -> zbus::Result<systemd1::UnitProxy<'a>> {
    systemd1::UnitProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// LoadUnit (so a unit that is not loaded still answers) and read both states.
async fn unit_facts(conn: &zbus::Connection, unit: &str) -> zbus::Result<UnitFacts> {
    let manager = manager_proxy(conn).await?;
    let path = manager.load_unit(unit.to_string()).await?;
    let proxy = unit_proxy(conn, path).await?;
    Ok(UnitFacts {
        unit_file_state: proxy.unit_file_state().await?,
        active_state: proxy.active_state().await?,
    })
}

fn user_service(uid: u32) -> String {
    format!("user@{uid}.service")
}

fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

impl Systemd for DbusSystemd {
    fn probe(&self) -> Result<()> {
        let path = self.system_bus_socket();
        if !path.exists() {
            return Err(Error::Refused(format!(
                "no systemd here: {} does not exist (pass --no-systemd to skip linger and the podman socket)",
                path.display()
            )));
        }
        zbus::block_on(async {
            let conn = self.system_bus().await?;
            let call = async {
                let logind = login1::ManagerProxy::new(&conn).await?;
                logind.list_users().await
            };
            within(self.call_timeout, call)
                .await
                .map_err(|e| Error::Failed(format!("logind on {}: {e}", path.display())))
        })
        .map(|_| ())
        .map_err(|e| {
            Error::Refused(format!(
                "no systemd here: {e} (pass --no-systemd to skip linger and the podman socket)"
            ))
        })
    }

    fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts> {
        let linger = self.linger_file(user).exists();
        zbus::block_on(async {
            let manager_state = if self.system_bus_socket().exists() {
                let conn = self.system_bus().await?;
                let service = user_service(uid);
                let state = within(self.call_timeout, unit_active_state(&conn, &service))
                    .await
                    .map_err(|e| Error::Failed(format!("system manager: {service}: {e}")))?;
                Some(state)
            } else {
                None
            };
            let private = self.user_manager_socket(uid);
            let unit = match connect_unix(&private, self.call_timeout) {
                Err(e) if absent(&e) => None,
                Err(e) => {
                    return Err(Error::Failed(format!(
                        "manager of uid {uid} at {}: {e}",
                        private.display()
                    )))
                }
                Ok(_) => {
                    let conn = self.user_manager(uid).await?;
                    let facts = within(self.call_timeout, unit_facts(&conn, unit))
                        .await
                        .map_err(|e| Error::Failed(format!("manager of uid {uid}: {unit}: {e}")))?;
                    Some(facts)
                }
            };
            Ok(UserFacts {
                linger,
                manager_state,
                unit,
            })
        })
    }

    fn enable_linger(&self, uid: u32) -> Result<()> {
        zbus::block_on(self.set_linger(uid, true))
    }

    fn disable_linger(&self, uid: u32) -> Result<()> {
        zbus::block_on(self.set_linger(uid, false))
    }

    fn wait_user_manager(&self, uid: u32, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let service = user_service(uid);
        let private = self.user_manager_socket(uid);
        zbus::block_on(async {
            let conn = self.system_bus().await?;
            let mut last_private = String::from("(not tried: the service is not active yet)");
            let mut failed_for = FailedFor::default();
            loop {
                // The last look gets a moment too, so a timeout reports a state, not "no answer".
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(LAST_LOOK);
                let last_state = match within(
                    left.min(self.call_timeout),
                    unit_active_state(&conn, &service),
                )
                .await
                {
                    Ok(state) => state,
                    Err(e) => format!("(could not ask: {e})"),
                };
                if failed_for.still_failed(&last_state) {
                    return Err(Error::Failed(format!(
                        "{service} failed while waiting for uid {uid}'s manager (see journalctl -u {service})"
                    )));
                }
                if last_state == "active" {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(LAST_LOOK);
                    let ping = async {
                        let conn = self.user_manager(uid).await?;
                        let manager = manager_proxy(&conn)
                            .await
                            .map_err(|e| Error::Failed(e.to_string()))?;
                        within(left, manager.version())
                            .await
                            .map_err(|e| Error::Failed(e.to_string()))
                    };
                    match ping.await {
                        Ok(_) => return Ok(()),
                        Err(e) => last_private = e.to_string(),
                    }
                }
                if Instant::now() >= deadline {
                    return Err(Error::Failed(format!(
                        "timed out after {timeout:?} waiting for {service} to be active and {} to answer: \
                         last ActiveState {last_state:?}, private socket: {last_private}",
                        private.display()
                    )));
                }
                sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
        })
    }

    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        self.unit_up(uid, unit, timeout, true)
    }

    fn start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        self.unit_up(uid, unit, timeout, false)
    }
}

impl DbusSystemd {
    /// (EnableUnitFiles, Reload when something changed,) StartUnit, then wait until active.
    fn unit_up(&self, uid: u32, unit: &str, timeout: Duration, enable: bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let failed = |what: &str, e: zbus::Error| {
            Error::Failed(format!("manager of uid {uid}: {what} {unit}: {e}"))
        };
        zbus::block_on(async {
            let conn = self.user_manager(uid).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
            let changes = if enable {
                manager
                    .enable_unit_files(vec![unit.to_string()], false, false)
                    .await
                    .map_err(|e| failed("EnableUnitFiles", e))?
                    .1
            } else {
                Vec::new()
            };
            if !changes.is_empty() {
                manager
                    .reload()
                    .await
                    .map_err(|e| failed("Reload after enabling", e))?;
            }
            manager
                .start_unit(unit.to_string(), "replace".to_string())
                .await
                .map_err(|e| failed("StartUnit", e))?;
            let path = manager
                .load_unit(unit.to_string())
                .await
                .map_err(|e| failed("LoadUnit", e))?;
            let proxy = unit_proxy(&conn, path)
                .await
                .map_err(|e| failed("proxy for", e))?;
            let mut failed_for = FailedFor::default();
            loop {
                let state = proxy
                    .active_state()
                    .await
                    .map_err(|e| failed("ActiveState of", e))?;
                match state.as_str() {
                    "active" => return Ok(()),
                    _ if failed_for.still_failed(&state) => {
                        return Err(Error::Failed(format!(
                            "manager of uid {uid}: {unit} failed to start (see journalctl --user-unit {unit} _UID={uid})"
                        )))
                    }
                    _ if Instant::now() >= deadline => {
                        return Err(Error::Failed(format!(
                            "manager of uid {uid}: timed out after {timeout:?} waiting for {unit} to be active: ActiveState {state:?}"
                        )))
                    }
                    _ => {
                        sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())))
                            .await
                    }
                }
            }
        })
    }
}

/// A unit that failed before keeps reading `failed` until the start job just queued for it
/// runs, so `failed` only ends a wait once it has lasted this long.
const FAILED_GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct FailedFor(Option<Instant>);

impl FailedFor {
    /// True once `state` has been `failed` at every look for FAILED_GRACE.
    fn still_failed(&mut self, state: &str) -> bool {
        if state != "failed" {
            self.0 = None;
            return false;
        }
        let since = *self.0.get_or_insert_with(Instant::now);
        since.elapsed() >= FAILED_GRACE
    }
}

/// Connects a unix stream socket without blocking past `timeout`: a full listen backlog makes a
/// blocking connect(2) wait forever, so connect non-blocking and retry on EAGAIN.
pub fn connect_unix(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let deadline = Instant::now() + timeout;
    let addr = SocketAddrUnix::new(path)?;
    loop {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(rustix::io::Errno::AGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(rustix::io::Errno::AGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {timeout:?} (listen backlog full)"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// systemd stamps every message on a private socket with the sender `org.freedesktop.systemd1`
/// (sd_bus_set_sender), and zbus 6 drops any message whose sender is not a unique name (the
/// connection's reader errors out). This relay authenticates to the manager itself, plays the
/// server side of the handshake towards zbus over a socketpair, and rewrites that sender in
/// place to a unique name of the same length; every other byte passes unchanged.
mod sender_relay {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Returns the stream to hand to zbus (p2p, EXTERNAL auth as usual).
    pub fn start(manager: UnixStream, timeout: Duration) -> io::Result<UnixStream> {
        manager.set_read_timeout(Some(timeout))?;
        manager.set_write_timeout(Some(timeout))?;
        let uid_hex: String = rustix::process::geteuid()
            .as_raw()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        (&manager).write_all(format!("\0AUTH EXTERNAL {uid_hex}\r\nBEGIN\r\n").as_bytes())?;
        let mut from_manager = BufReader::new(manager.try_clone()?);
        let mut line = String::new();
        from_manager.read_line(&mut line)?;
        let Some(guid) = line.strip_prefix("OK ").map(|g| g.trim_end().to_string()) else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("authentication refused: {:?}", line.trim_end()),
            ));
        };
        manager.set_read_timeout(None)?;
        manager.set_write_timeout(None)?;

        let (for_zbus, relay) = UnixStream::pair()?;
        let to_manager = manager.try_clone()?;
        std::thread::spawn(move || {
            let result = (|| -> io::Result<()> {
                let mut from_zbus = BufReader::new(relay.try_clone()?);
                serve_handshake(&mut from_zbus, &relay, &guid)?;
                let relay_out = relay.try_clone()?;
                let forward = std::thread::spawn(move || {
                    let mut to_manager = to_manager;
                    let _ = io::copy(&mut from_zbus, &mut to_manager);
                    let _ = to_manager.shutdown(Shutdown::Both);
                });
                let back = relay_messages(&mut from_manager, relay_out);
                let _ = relay.shutdown(Shutdown::Both);
                let _ = forward.join();
                back
            })();
            let _ = result;
        });
        Ok(for_zbus)
    }

    /// The server half of the SASL exchange, as far as a zbus client takes it.
    fn serve_handshake(
        from_zbus: &mut BufReader<UnixStream>,
        mut to_zbus: &UnixStream,
        guid: &str,
    ) -> io::Result<()> {
        let mut nul = [0u8; 1];
        from_zbus.read_exact(&mut nul)?;
        loop {
            let mut line = String::new();
            if from_zbus.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let command = line.trim_end();
            if command.starts_with("AUTH") {
                to_zbus.write_all(format!("OK {guid}\r\n").as_bytes())?;
            } else if command == "BEGIN" {
                return Ok(());
            } else {
                // NEGOTIATE_UNIX_FD included: no descriptors cross this relay.
                to_zbus.write_all(b"ERROR\r\n")?;
            }
        }
    }

    fn relay_messages(from_manager: &mut impl Read, mut to_zbus: UnixStream) -> io::Result<()> {
        loop {
            let mut message = vec![0u8; 16];
            from_manager.read_exact(&mut message)?;
            let total = message_len(&message)?;
            message.resize(total, 0);
            from_manager.read_exact(&mut message[16..])?;
            patch_sender(&mut message);
            to_zbus.write_all(&message)?;
        }
    }

    fn u32_at(message: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = message.get(at..at + 4)?.try_into().ok()?;
        Some(match message[0] {
            b'B' => u32::from_be_bytes(bytes),
            _ => u32::from_le_bytes(bytes),
        })
    }

    fn align8(n: usize) -> usize {
        n.div_ceil(8) * 8
    }

    /// Whole length of the message whose 16-byte fixed header is at the start of `header`.
    pub(super) fn message_len(header: &[u8]) -> io::Result<usize> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if !matches!(header.first(), Some(b'l' | b'B')) {
            return Err(bad("not a D-Bus message"));
        }
        let body = u32_at(header, 4).ok_or_else(|| bad("short header"))? as usize;
        let fields = u32_at(header, 12).ok_or_else(|| bad("short header"))? as usize;
        let total = align8(16 + fields) + body;
        if total > 128 * 1024 * 1024 {
            return Err(bad("message larger than D-Bus allows"));
        }
        Ok(total)
    }

    /// Rewrites a SENDER header field that is not a unique name to `:1.000...` of the same length.
    pub(super) fn patch_sender(message: &mut [u8]) {
        let Some(fields_len) = u32_at(message, 12) else {
            return;
        };
        let end = (16 + fields_len as usize).min(message.len());
        let mut at = 16;
        while at + 4 <= end {
            let code = message[at];
            let sig_len = message[at + 1] as usize;
            let sig_start = at + 2;
            let Some(sig) = message.get(sig_start..sig_start + sig_len) else {
                return;
            };
            let sig = sig.to_vec();
            let mut value = sig_start + sig_len + 1;
            let value_end = match sig.as_slice() {
                b"s" | b"o" => {
                    value = value.div_ceil(4) * 4;
                    let Some(len) = u32_at(message, value) else {
                        return;
                    };
                    let (start, stop) = (value + 4, value + 4 + len as usize);
                    if code == 7 && stop <= end && len >= 4 && message[start] != b':' {
                        message[start..start + 3].copy_from_slice(b":1.");
                        message[start + 3..stop].fill(b'0');
                    }
                    stop + 1
                }
                b"g" => {
                    let len = message.get(value).copied().unwrap_or(0) as usize;
                    value + 1 + len + 1
                }
                b"u" => value.div_ceil(4) * 4 + 4,
                _ => return,
            };
            at = align8(value_end);
        }
    }
}

/// Awaits `fut`, or fails with a timed-out error once `timeout` has passed.
async fn within<T, E, F>(timeout: Duration, fut: F) -> std::result::Result<T, E>
where
    F: Future<Output = std::result::Result<T, E>>,
    E: From<zbus::Error>,
{
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(timeout));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        timer.as_mut().poll(cx).map(|()| {
            Err(E::from(zbus::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            ))))
        })
    })
    .await
}

/// A sleep that does not block the thread `zbus::block_on` drives connections on: a helper
/// thread wakes the task once the time is up.
async fn sleep(duration: Duration) {
    let deadline = Instant::now() + duration;
    let fired = Arc::new(AtomicBool::new(false));
    let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let mut spawned = false;
    std::future::poll_fn(|cx| {
        if fired.load(Ordering::Acquire) || Instant::now() >= deadline {
            return Poll::Ready(());
        }
        *waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if !spawned {
            spawned = true;
            let (fired, waker) = (fired.clone(), waker.clone());
            std::thread::spawn(move || {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                fired.store(true, Ordering::Release);
                if let Some(w) = waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    w.wake();
                }
            });
        }
        Poll::Pending
    })
    .await
}

/// One call made on the fake, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemdCall {
    Probe,
    UserFacts {
        uid: u32,
        user: String,
        unit: String,
    },
    EnableLinger {
        uid: u32,
    },
    DisableLinger {
        uid: u32,
    },
    WaitUserManager {
        uid: u32,
    },
    EnableAndStartUserUnit {
        uid: u32,
        unit: String,
    },
    StartUserUnit {
        uid: u32,
        unit: String,
    },
}

impl SystemdCall {
    /// The method name, for matching injected failures.
    pub fn method(&self) -> &'static str {
        match self {
            SystemdCall::Probe => "probe",
            SystemdCall::UserFacts { .. } => "user_facts",
            SystemdCall::EnableLinger { .. } => "enable_linger",
            SystemdCall::DisableLinger { .. } => "disable_linger",
            SystemdCall::WaitUserManager { .. } => "wait_user_manager",
            SystemdCall::EnableAndStartUserUnit { .. } => "enable_and_start_user_unit",
            SystemdCall::StartUserUnit { .. } => "start_user_unit",
        }
    }

    fn uid(&self) -> Option<u32> {
        match self {
            SystemdCall::Probe => None,
            SystemdCall::UserFacts { uid, .. }
            | SystemdCall::EnableLinger { uid }
            | SystemdCall::DisableLinger { uid }
            | SystemdCall::WaitUserManager { uid }
            | SystemdCall::EnableAndStartUserUnit { uid, .. }
            | SystemdCall::StartUserUnit { uid, .. } => Some(*uid),
        }
    }
}

/// Test fake: records every call, keeps its own linger/unit state so effects show up in
/// `user_facts`, and fails the calls it was told to fail.
#[derive(Debug, Default)]
pub struct RecordingSystemd {
    inner: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<SystemdCall>,
    /// (method, uid or None for any uid) -> error text; the call returns Error::Failed(text)
    /// (Error::Refused for `probe`).
    failures: Vec<(&'static str, Option<u32>, String)>,
    linger: HashMap<u32, bool>,
    started_units: HashMap<u32, Vec<String>>,
}

impl RecordingSystemd {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call of `method` (e.g. "enable_linger") for `uid` (None: any uid) fail.
    pub fn fail(&self, method: &'static str, uid: Option<u32>, message: impl Into<String>) {
        self.state().failures.push((method, uid, message.into()));
    }

    /// Marks `uid` as already lingering with `units` enabled and active, as a host where an
    /// earlier apply ran.
    pub fn preset(&self, uid: u32, units: &[&str]) {
        let mut state = self.state();
        state.linger.insert(uid, true);
        state
            .started_units
            .insert(uid, units.iter().map(|u| u.to_string()).collect());
    }

    pub fn calls(&self) -> Vec<SystemdCall> {
        self.state().calls.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, call: SystemdCall) -> Result<()> {
        let mut state = self.state();
        let failure = state
            .failures
            .iter()
            .find(|(method, uid, _)| {
                *method == call.method() && (uid.is_none() || *uid == call.uid())
            })
            .map(|(_, _, message)| message.clone());
        let is_probe = call == SystemdCall::Probe;
        state.calls.push(call);
        match failure {
            Some(message) if is_probe => Err(Error::Refused(message)),
            Some(message) => Err(Error::Failed(message)),
            None => Ok(()),
        }
    }
}

impl Systemd for RecordingSystemd {
    fn probe(&self) -> Result<()> {
        self.record(SystemdCall::Probe)
    }

    fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts> {
        self.record(SystemdCall::UserFacts {
            uid,
            user: user.to_string(),
            unit: unit.to_string(),
        })?;
        let state = self.state();
        let linger = state.linger.get(&uid).copied().unwrap_or(false);
        let started = state
            .started_units
            .get(&uid)
            .is_some_and(|units| units.iter().any(|u| u == unit));
        Ok(UserFacts {
            linger,
            manager_state: Some(if linger { "active" } else { "inactive" }.to_string()),
            unit: linger.then(|| UnitFacts {
                unit_file_state: if started { "enabled" } else { "disabled" }.to_string(),
                active_state: if started { "active" } else { "inactive" }.to_string(),
            }),
        })
    }

    fn enable_linger(&self, uid: u32) -> Result<()> {
        self.record(SystemdCall::EnableLinger { uid })?;
        self.state().linger.insert(uid, true);
        Ok(())
    }

    fn disable_linger(&self, uid: u32) -> Result<()> {
        self.record(SystemdCall::DisableLinger { uid })?;
        let mut state = self.state();
        state.linger.insert(uid, false);
        state.started_units.remove(&uid);
        Ok(())
    }

    fn wait_user_manager(&self, uid: u32, _timeout: Duration) -> Result<()> {
        self.record(SystemdCall::WaitUserManager { uid })?;
        if self.state().linger.get(&uid).copied().unwrap_or(false) {
            Ok(())
        } else {
            Err(Error::Failed(format!(
                "fake: user@{uid}.service never starts without linger"
            )))
        }
    }

    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, _timeout: Duration) -> Result<()> {
        self.record(SystemdCall::EnableAndStartUserUnit {
            uid,
            unit: unit.to_string(),
        })?;
        let mut state = self.state();
        let units = state.started_units.entry(uid).or_default();
        if !units.iter().any(|u| u == unit) {
            units.push(unit.to_string());
        }
        Ok(())
    }

    fn start_user_unit(&self, uid: u32, unit: &str, _timeout: Duration) -> Result<()> {
        self.record(SystemdCall::StartUserUnit {
            uid,
            unit: unit.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_calls_and_reflects_effects_in_facts() {
        let fake = RecordingSystemd::new();
        fake.enable_linger(801).unwrap();
        fake.wait_user_manager(801, Duration::from_secs(1)).unwrap();
        fake.enable_and_start_user_unit(801, PODMAN_SOCKET_UNIT, Duration::from_secs(1))
            .unwrap();
        let facts = fake.user_facts(801, "stk-a", PODMAN_SOCKET_UNIT).unwrap();
        assert!(facts.linger);
        assert_eq!(facts.manager_state.as_deref(), Some("active"));
        assert_eq!(
            facts.unit,
            Some(UnitFacts {
                unit_file_state: "enabled".into(),
                active_state: "active".into()
            })
        );
        assert_eq!(
            fake.calls(),
            vec![
                SystemdCall::EnableLinger { uid: 801 },
                SystemdCall::WaitUserManager { uid: 801 },
                SystemdCall::EnableAndStartUserUnit {
                    uid: 801,
                    unit: PODMAN_SOCKET_UNIT.into()
                },
                SystemdCall::UserFacts {
                    uid: 801,
                    user: "stk-a".into(),
                    unit: PODMAN_SOCKET_UNIT.into()
                },
            ]
        );
    }

    #[test]
    fn fake_fails_only_the_told_call_and_still_records_it() {
        let fake = RecordingSystemd::new();
        fake.fail("enable_linger", Some(802), "logind said no");
        fake.enable_linger(801).unwrap();
        let err = fake.enable_linger(802).unwrap_err();
        assert!(matches!(err, Error::Failed(ref m) if m == "logind said no"));
        assert_eq!(err.exit_code(), crate::error::EXIT_FAILURE);
        assert_eq!(fake.calls().len(), 2);
        assert!(
            !fake
                .user_facts(802, "stk-b", "podman.socket")
                .unwrap()
                .linger
        );
    }

    #[test]
    fn fake_probe_failure_is_a_refusal() {
        let fake = RecordingSystemd::new();
        fake.fail("probe", None, "no systemd here");
        assert!(matches!(fake.probe(), Err(Error::Refused(_))));
    }

    #[test]
    fn probe_refuses_when_there_is_no_system_bus() {
        let root = tempfile::tempdir().unwrap();
        let err = DbusSystemd::new(root.path()).probe().unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("system_bus_socket"), "{err}");
    }

    #[test]
    fn probe_refuses_a_socket_nobody_listens_on() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run/dbus");
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.join("system_bus_socket"));
        drop(listener);
        let err = DbusSystemd::new(root.path()).probe().unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err:?}");
    }

    #[test]
    fn probe_gives_up_on_a_bus_that_never_answers() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run/dbus");
        std::fs::create_dir_all(&dir).unwrap();
        // Accepts (the kernel's backlog) but never speaks: the handshake must time out.
        let _listener =
            std::os::unix::net::UnixListener::bind(dir.join("system_bus_socket")).unwrap();
        let systemd = DbusSystemd {
            root: root.path().into(),
            call_timeout: Duration::from_millis(300),
        };
        let err = systemd.probe().unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err:?}");
    }

    #[test]
    fn facts_without_bus_or_manager_are_unknown_not_errors() {
        let root = tempfile::tempdir().unwrap();
        let linger = root.path().join("var/lib/systemd/linger");
        std::fs::create_dir_all(&linger).unwrap();
        std::fs::write(linger.join("stk-a"), "").unwrap();
        let systemd = DbusSystemd::new(root.path());
        let facts = systemd
            .user_facts(801, "stk-a", PODMAN_SOCKET_UNIT)
            .unwrap();
        assert_eq!(
            facts,
            UserFacts {
                linger: true,
                manager_state: None,
                unit: None
            }
        );
        assert!(
            !systemd
                .user_facts(802, "stk-b", PODMAN_SOCKET_UNIT)
                .unwrap()
                .linger
        );
    }

    /// A reply as systemd's private socket sends it: sender "org.freedesktop.systemd1".
    fn systemd_reply() -> Vec<u8> {
        let sender = "org.freedesktop.systemd1";
        let mut fields = Vec::new();
        // REPLY_SERIAL (5), "u", 1
        fields.extend_from_slice(&[5, 1, b'u', 0, 1, 0, 0, 0]);
        // SENDER (7), "s", string
        fields.extend_from_slice(&[7, 1, b's', 0]);
        fields.extend_from_slice(&(sender.len() as u32).to_le_bytes());
        fields.extend_from_slice(sender.as_bytes());
        fields.push(0);
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        // SIGNATURE (8), "g", "s"
        fields.extend_from_slice(&[8, 1, b'g', 0, 1, b's', 0]);
        let fields_len = fields.len();
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        let body = [2u8, 0, 0, 0, b'O', b'K', 0];
        let mut message = vec![b'l', 2, 1, 1];
        message.extend_from_slice(&(body.len() as u32).to_le_bytes());
        message.extend_from_slice(&7u32.to_le_bytes());
        message.extend_from_slice(&(fields_len as u32).to_le_bytes());
        message.extend_from_slice(&fields);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn relay_rewrites_only_a_well_known_sender() {
        let mut message = systemd_reply();
        assert_eq!(sender_relay::message_len(&message).unwrap(), message.len());
        let before = message.clone();
        sender_relay::patch_sender(&mut message);
        let text = String::from_utf8_lossy(&message).into_owned();
        assert!(text.contains(":1.000000000000000000000\0"), "{text:?}");
        assert!(!text.contains("org.freedesktop.systemd1"));
        assert_eq!(message.len(), before.len());
        let changed = before.iter().zip(&message).filter(|(a, b)| a != b).count();
        assert!(changed <= 24, "{changed} bytes changed");
        // A unique name is left alone.
        let mut again = message.clone();
        sender_relay::patch_sender(&mut again);
        assert_eq!(again, message);
    }

    #[test]
    fn relay_lets_zbus_talk_to_a_manager_that_stamps_its_sender() {
        use std::io::{BufRead, BufReader, Read, Write};
        // A fake user manager: accepts EXTERNAL, answers any one call with "OK" from
        // "org.freedesktop.systemd1", like systemd's private socket.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let manager = std::thread::spawn(move || {
            let mut reader = BufReader::new(theirs.try_clone().unwrap());
            let mut nul = [0u8; 1];
            reader.read_exact(&mut nul).unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("AUTH EXTERNAL "), "{line:?}");
            (&theirs)
                .write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                .unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "BEGIN\r\n");
            let mut head = vec![0u8; 16];
            reader.read_exact(&mut head).unwrap();
            let total = sender_relay::message_len(&head).unwrap();
            head.resize(total, 0);
            reader.read_exact(&mut head[16..]).unwrap();
            let mut reply = systemd_reply();
            let serial = u32::from_le_bytes(head[8..12].try_into().unwrap());
            reply[20..24].copy_from_slice(&serial.to_le_bytes());
            (&theirs).write_all(&reply).unwrap();
        });
        let stream = sender_relay::start(ours, Duration::from_secs(5)).unwrap();
        let answer: String = zbus::block_on(async {
            let conn = zbus::connection::Builder::unix_stream(stream)
                .p2p()
                .build()
                .await
                .unwrap();
            let reply = conn
                .call_method(
                    Some("org.freedesktop.systemd1"),
                    "/org/freedesktop/systemd1",
                    Some("org.freedesktop.DBus.Peer"),
                    "Ping",
                    &(),
                )
                .await
                .unwrap();
            reply.body().deserialize().unwrap()
        });
        assert_eq!(answer, "OK");
        manager.join().unwrap();
    }

    #[test]
    fn connect_unix_names_a_missing_socket() {
        let root = tempfile::tempdir().unwrap();
        let err = connect_unix(&root.path().join("nope"), Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
