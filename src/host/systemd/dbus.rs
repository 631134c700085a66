//! The D-Bus side of systemd: ROOT/run/dbus/system_bus_socket for logind and the system
//! manager, ROOT/run/user/UID/systemd/private (peer to peer, through the sender relay) for a
//! user's own manager.
use super::error::{dbus, SystemdError};
use super::rt::{sleep, within};
use super::{relay, UnitFacts, UserFacts, BUS_CALL_TIMEOUT, LAST_LOOK, POLL_INTERVAL};
use crate::error::{Error, Result};
use crate::host::unix::connect_unix;
use crate::layout::Root;
use crate::model::RefusalKind;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zbus::proxy::CacheProperties;
use zbus_systemd::{login1, systemd1};

/// Talks to ROOT/run/dbus/system_bus_socket and ROOT/run/user/UID/systemd/private.
#[derive(Clone, Debug)]
pub struct DbusSystemd {
    root: Root,
    call_timeout: Duration,
}

impl DbusSystemd {
    /// The root this manager connection works on (its journal is read there too).
    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn new(root: &Root) -> Self {
        DbusSystemd {
            root: root.clone(),
            call_timeout: BUS_CALL_TIMEOUT,
        }
    }

    fn system_bus_socket(&self) -> PathBuf {
        self.root.system_bus_socket()
    }

    fn user_manager_socket(&self, uid: u32) -> PathBuf {
        self.root.user_manager_socket(uid)
    }

    pub(super) async fn system_bus(&self) -> Result<zbus::Connection> {
        let path = self.system_bus_socket();
        let stream = connect_unix(&path, self.call_timeout)
            .map_err(|e| Error::io(format!("system bus {}", path.display()), e))?;
        let build = zbus::connection::Builder::unix_stream(stream)
            .method_timeout(self.call_timeout)
            .build();
        within(self.call_timeout, build)
            .await
            .map_err(|e| dbus(format!("system bus {}", path.display()), e))
    }

    pub(super) async fn user_manager(&self, uid: u32) -> Result<zbus::Connection> {
        let path = self.user_manager_socket(uid);
        let stream = connect_unix(&path, self.call_timeout)
            .map_err(|e| Error::io(format!("manager of uid {uid} at {}", path.display()), e))?;
        let stream = relay::start(stream, self.call_timeout)
            .map_err(|e| Error::io(format!("manager of uid {uid} at {}", path.display()), e))?;
        let build = zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .method_timeout(self.call_timeout)
            .build();
        within(self.call_timeout, build)
            .await
            .map_err(|e| dbus(format!("manager of uid {uid} at {}", path.display()), e))
    }

    async fn set_linger(&self, uid: u32, enable: bool) -> Result<()> {
        let conn = self.system_bus().await?;
        let call = async {
            let logind = login1::ManagerProxy::new(&conn).await?;
            logind.set_user_linger(uid, enable, false).await
        };
        within(self.call_timeout, call).await.map_err(|e| {
            dbus(
                format!(
                    "logind SetUserLinger(uid {uid}, {enable}) on {}",
                    self.system_bus_socket().display()
                ),
                e,
            )
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
pub(super) async fn manager_proxy<'a>(
    conn: &zbus::Connection,
) -> zbus::Result<systemd1::ManagerProxy<'a>> {
    systemd1::ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

pub(super) async fn unit_proxy<'a>(
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

impl DbusSystemd {
    /// The systemd effects isolate needs. `uid` is always the stack user's uid.
    /// Ok when the system bus answers and logind is on it; `Error::Refused` otherwise (no systemd here).
    pub fn probe(&self) -> Result<()> {
        let path = self.system_bus_socket();
        if !path.exists() {
            return Err(Error::refused(RefusalKind::Systemd, format!(
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
                .map_err(|e| dbus(format!("logind on {}", path.display()), e))
        })
        .map(|_| ())
        .map_err(|e| {
            Error::refused(
                RefusalKind::Systemd,
                format!(
                    "no systemd here: {e} (pass --no-systemd to skip linger and the podman socket)"
                ),
            )
        })
    }

    /// Read-only facts about `user` (uid `uid`) and `unit` in its user manager.
    pub fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts> {
        let linger = self.root.linger_file(user).exists();
        zbus::block_on(async {
            let manager_state = if self.system_bus_socket().exists() {
                let conn = self.system_bus().await?;
                let service = user_service(uid);
                let state = within(self.call_timeout, unit_active_state(&conn, &service))
                    .await
                    .map_err(|e| dbus(format!("system manager: {service}"), e))?;
                Some(state)
            } else {
                None
            };
            let private = self.user_manager_socket(uid);
            let unit = match connect_unix(&private, self.call_timeout) {
                Err(e) if absent(&e) => None,
                Err(e) => {
                    return Err(Error::io(
                        format!("manager of uid {uid} at {}", private.display()),
                        e,
                    ))
                }
                Ok(_) => {
                    let conn = self.user_manager(uid).await?;
                    let facts = within(self.call_timeout, unit_facts(&conn, unit))
                        .await
                        .map_err(|e| dbus(format!("manager of uid {uid}: {unit}"), e))?;
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

    /// logind `SetUserLinger(uid, true, false)`: the user's manager starts now and at every boot.
    pub fn enable_linger(&self, uid: u32) -> Result<()> {
        zbus::block_on(self.set_linger(uid, true))
    }

    /// logind `SetUserLinger(uid, false, false)`: the undo of `enable_linger`.
    pub fn disable_linger(&self, uid: u32) -> Result<()> {
        zbus::block_on(self.set_linger(uid, false))
    }

    /// The system manager's Reload (`systemctl daemon-reload`): unit files and drop-ins below
    /// /etc/systemd/system are read again. A running slice's cgroup keeps its values (see
    /// [`Self::apply_slice_now`]). The reply comes once the reload is done.
    pub fn daemon_reload_system(&self) -> Result<()> {
        let path = self.system_bus_socket();
        let failed =
            |what: &str, e| dbus(format!("system manager on {}: {what}", path.display()), e);
        zbus::block_on(async {
            let conn = self.system_bus().await?;
            let manager = manager_proxy(&conn).await.map_err(|e| failed("proxy", e))?;
            within(self.call_timeout, manager.reload())
                .await
                .map_err(|e| failed("Reload", e))
        })
    }

    /// Puts a slice unit's resource settings on its running cgroup. A daemon-reload changes the
    /// unit but not the cgroup of a slice that already runs (seen with systemd 257: memory.max
    /// kept its old value until the slice started again); a runtime SetUnitProperties does.
    /// So: the settings the unit now has are read and set again at runtime (the same values),
    /// then the runtime drop-ins that call wrote below /run/systemd/system.control are removed
    /// (only those it made) and the manager reloads, so the unit goes on taking its settings
    /// from /etc alone.
    pub fn apply_slice_now(&self, slice: &str) -> Result<()> {
        let path = self.system_bus_socket();
        let failed = |what: &str, e| {
            dbus(
                format!("system manager on {}: {what} {slice}", path.display()),
                e,
            )
        };
        let control = self
            .root
            .at(&std::path::Path::new("/run/systemd/system.control").join(format!("{slice}.d")));
        let before = control_files(&control);
        zbus::block_on(async {
            let conn = self.system_bus().await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
            let unit = within(self.call_timeout, manager.load_unit(slice.to_string()))
                .await
                .map_err(|e| failed("LoadUnit", e))?;
            let props = systemd1::SliceProxy::builder(&conn)
                .path(unit)
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(|e| failed("proxy for", e))?;
            let mut settings = Vec::new();
            for (name, value) in [
                ("MemoryMax", props.memory_max().await),
                ("MemoryHigh", props.memory_high().await),
                ("MemorySwapMax", props.memory_swap_max().await),
                ("CPUWeight", props.cpu_weight().await),
                ("CPUQuotaPerSecUSec", props.cpu_quota_per_sec_u_sec().await),
                ("TasksMax", props.tasks_max().await),
                ("IOWeight", props.io_weight().await),
            ] {
                let value = value.map_err(|e| failed(&format!("read {name} of"), e))?;
                settings.push((name.to_string(), zbus::OwnedVariant::from(value)));
            }
            within(
                self.call_timeout,
                manager.set_unit_properties(slice.to_string(), true, settings),
            )
            .await
            .map_err(|e| failed("SetUnitProperties", e))?;
            // A runtime drop-in left here would outrank /etc: a later limit there would not act.
            let made: Vec<_> = control_files(&control)
                .difference(&before)
                .cloned()
                .collect();
            for file in &made {
                let file = control.join(file);
                std::fs::remove_file(&file).map_err(|e| {
                    Error::io(format!("remove the runtime drop-in {}", file.display()), e)
                })?;
            }
            if !made.is_empty() {
                // Someone else's runtime drop-in beside them keeps the directory.
                let _ = std::fs::remove_dir(&control);
                within(self.call_timeout, manager.reload())
                    .await
                    .map_err(|e| failed("Reload after", e))?;
            }
            Ok(())
        })
    }

    /// Waits until `user@UID.service` is active and its private socket accepts a connection.
    pub fn wait_user_manager(&self, uid: u32, timeout: Duration) -> Result<()> {
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
                    return Err(SystemdError::ManagerFailed {
                        service: service.clone(),
                        uid,
                    }
                    .into());
                }
                if last_state == "active" {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(LAST_LOOK);
                    let ping = async {
                        let conn = self.user_manager(uid).await?;
                        let manager = manager_proxy(&conn)
                            .await
                            .map_err(|e| dbus("manager proxy", e))?;
                        within(left, manager.version())
                            .await
                            .map_err(|e| dbus("Version", e))
                    };
                    match ping.await {
                        Ok(_) => return Ok(()),
                        Err(e) => last_private = e.to_string(),
                    }
                }
                if Instant::now() >= deadline {
                    return Err(SystemdError::ManagerTimeout {
                        timeout,
                        service: service.clone(),
                        private: private.display().to_string(),
                        last_state,
                        last_private,
                    }
                    .into());
                }
                sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
        })
    }

    /// In the user's manager: EnableUnitFiles, Reload (when something changed), StartUnit, then
    /// waits until the unit is active.
    pub fn enable_and_start_user_unit(
        &self,
        uid: u32,
        unit: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.user_unit_up(uid, unit, timeout, UnitUp::Enable)
    }

    /// In the user's manager: StartUnit only (nothing enabled, gone at the next boot), then
    /// waits until the unit is active. For a socket needed once, e.g. the legacy user's.
    pub fn start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        self.user_unit_up(uid, unit, timeout, UnitUp::Start)
    }

    /// In the user's manager, for a unit file just written or rewritten: Reload, EnableUnitFiles,
    /// Reload, (Re)StartUnit, then waits until the unit is active.
    pub fn reload_enable_and_restart_user_unit(
        &self,
        uid: u32,
        unit: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.user_unit_up(uid, unit, timeout, UnitUp::ReloadEnableRestart)
    }

    /// In the user's manager: StopUnit, waits (bounded by `timeout`) until the unit is inactive
    /// or failed, then DisableUnitFiles, Reload. A unit that is not loaded or not enabled is
    /// fine.
    pub fn stop_and_disable_user_unit(
        &self,
        uid: u32,
        unit: &str,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let failed =
            |what: &str, e: zbus::Error| dbus(format!("manager of uid {uid}: {what} {unit}"), e);
        zbus::block_on(async {
            let conn = self.user_manager(uid).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
            if let Err(e) = manager
                .stop_unit(unit.to_string(), "replace".to_string())
                .await
            {
                // NoSuchUnit: nothing runs.
                if !matches!(&e, zbus::Error::MethodError(name, _, _) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
                {
                    return Err(failed("StopUnit", e));
                }
            } else {
                let path = manager
                    .load_unit(unit.to_string())
                    .await
                    .map_err(|e| failed("LoadUnit", e))?;
                let proxy = unit_proxy(&conn, path)
                    .await
                    .map_err(|e| failed("proxy for", e))?;
                loop {
                    let state = proxy
                        .active_state()
                        .await
                        .map_err(|e| failed("ActiveState of", e))?;
                    if state == "inactive" || state == "failed" {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(SystemdError::StopTimeout {
                            uid,
                            unit: unit.to_string(),
                            timeout,
                            state,
                        }
                        .into());
                    }
                    sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())))
                        .await;
                }
            }
            manager
                .disable_unit_files(vec![unit.to_string()], false)
                .await
                .map_err(|e| failed("DisableUnitFiles", e))?;
            manager
                .reload()
                .await
                .map_err(|e| failed("Reload after disabling", e))
        })
    }

    fn user_unit_up(&self, uid: u32, unit: &str, timeout: Duration, how: UnitUp) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let failed =
            |what: &str, e: zbus::Error| dbus(format!("manager of uid {uid}: {what} {unit}"), e);
        zbus::block_on(async {
            let conn = self.user_manager(uid).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
            if how == UnitUp::ReloadEnableRestart {
                manager
                    .reload()
                    .await
                    .map_err(|e| failed("Reload before enabling", e))?;
            }
            if how != UnitUp::Start {
                let (_, changes) = manager
                    .enable_unit_files(
                        vec![unit.to_string()],
                        false,
                        how == UnitUp::ReloadEnableRestart,
                    )
                    .await
                    .map_err(|e| failed("EnableUnitFiles", e))?;
                if !changes.is_empty() {
                    manager
                        .reload()
                        .await
                        .map_err(|e| failed("Reload after enabling", e))?;
                }
            }
            if how == UnitUp::ReloadEnableRestart {
                manager
                    .restart_unit(unit.to_string(), "replace".to_string())
                    .await
                    .map_err(|e| failed("RestartUnit", e))?;
            } else {
                manager
                    .start_unit(unit.to_string(), "replace".to_string())
                    .await
                    .map_err(|e| failed("StartUnit", e))?;
            }
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
                        return Err(SystemdError::UnitFailed {
                            uid,
                            unit: unit.to_string(),
                        }
                        .into())
                    }
                    _ if Instant::now() >= deadline => {
                        return Err(SystemdError::StartTimeout {
                            uid,
                            unit: unit.to_string(),
                            timeout,
                            state,
                        }
                        .into())
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

/// What `user_unit_up` does before it waits for the unit to be active.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitUp {
    Start,
    Enable,
    ReloadEnableRestart,
}

/// A unit that failed before keeps reading `failed` until the start job just queued for it
/// runs, so `failed` only ends a wait once it has lasted this long.
const FAILED_GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
pub(super) struct FailedFor(Option<Instant>);

impl FailedFor {
    /// True once `state` has been `failed` at every look for FAILED_GRACE.
    pub(super) fn still_failed(&mut self, state: &str) -> bool {
        if state != "failed" {
            self.0 = None;
            return false;
        }
        let since = *self.0.get_or_insert_with(Instant::now);
        since.elapsed() >= FAILED_GRACE
    }
}

/// The names of the runtime drop-ins in `dir` (none when it does not exist).
fn control_files(dir: &std::path::Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::PODMAN_SOCKET_UNIT;

    #[test]
    fn probe_refuses_when_there_is_no_system_bus() {
        let root = tempfile::tempdir().unwrap();
        let err = DbusSystemd::new(&Root::new(root.path()))
            .probe()
            .unwrap_err();
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
        let err = DbusSystemd::new(&Root::new(root.path()))
            .probe()
            .unwrap_err();
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
            root: Root::new(root.path()),
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
        let systemd = DbusSystemd::new(&Root::new(root.path()));
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
}
