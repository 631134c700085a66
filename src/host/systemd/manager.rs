//! Units in either manager, the system one (root's quadlets) or a user's: the few calls that
//! moving quadlet units needs (reload so the generator runs again, start and wait, stop and
//! wait, read a unit's state). Quadlet units are generated, so nothing here enables a unit.
use super::dbus::{manager_proxy, unit_proxy, DbusSystemd, FailedFor};
use super::error::{dbus, SystemdError};
use super::rt::{sleep, within};
use super::POLL_INTERVAL;
use crate::error::Result;
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// Which systemd manager a unit lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "manager", content = "uid", rename_all = "snake_case")]
pub enum Manager {
    /// The system manager (root's units).
    System,
    /// The user manager of this uid.
    User(u32),
}

impl Manager {
    /// The system manager for uid 0, else that user's.
    pub fn of_uid(uid: u32) -> Manager {
        if uid == 0 {
            Manager::System
        } else {
            Manager::User(uid)
        }
    }

    /// The uid errors name (0: the system manager).
    fn uid(self) -> u32 {
        match self {
            Manager::System => 0,
            Manager::User(u) => u,
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::System => write!(f, "the system manager"),
            Manager::User(uid) => write!(f, "the manager of uid {uid}"),
        }
    }
}

fn is_no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
}

impl DbusSystemd {
    async fn connect(&self, m: Manager) -> Result<zbus::Connection> {
        match m {
            Manager::System => self.system_bus().await,
            Manager::User(uid) => self.user_manager(uid).await,
        }
    }

    /// `daemon-reload` of `m`: generators (quadlet's) run again. The reply comes once done.
    pub fn reload_manager(&self, m: Manager) -> Result<()> {
        zbus::block_on(async {
            let conn = self.connect(m).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| dbus(format!("{m}: proxy"), e))?;
            within(BUS_TIMEOUT, manager.reload())
                .await
                .map_err(|e| dbus(format!("{m}: Reload"), e))
        })
    }

    /// `ActiveState` of `unit` in `m` (`inactive` when not loaded).
    pub fn unit_state(&self, m: Manager, unit: &str) -> Result<String> {
        zbus::block_on(async {
            let conn = self.connect(m).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| dbus(format!("{m}: proxy"), e))?;
            let path = match manager.get_unit(unit.to_string()).await {
                Ok(p) => p,
                Err(e) if is_no_such_unit(&e) => return Ok("inactive".to_string()),
                Err(e) => return Err(dbus(format!("{m}: GetUnit {unit}"), e)),
            };
            let proxy = unit_proxy(&conn, path)
                .await
                .map_err(|e| dbus(format!("{m}: proxy for {unit}"), e))?;
            proxy
                .active_state()
                .await
                .map_err(|e| dbus(format!("{m}: ActiveState of {unit}"), e))
        })
    }

    /// StopUnit in `m`, then waits until `unit` is inactive or failed. A unit not loaded is
    /// stopped already.
    pub fn stop_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let failed = |what: &str, e: zbus::Error| dbus(format!("{m}: {what} {unit}"), e);
        zbus::block_on(async {
            let conn = self.connect(m).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
            match manager
                .stop_unit(unit.to_string(), "replace".to_string())
                .await
            {
                Ok(_) => {}
                Err(e) if is_no_such_unit(&e) => return Ok(()),
                Err(e) => return Err(failed("StopUnit", e)),
            }
            loop {
                let path = match manager.get_unit(unit.to_string()).await {
                    Ok(p) => p,
                    Err(e) if is_no_such_unit(&e) => return Ok(()),
                    Err(e) => return Err(failed("GetUnit", e)),
                };
                let state = unit_proxy(&conn, path)
                    .await
                    .map_err(|e| failed("proxy for", e))?
                    .active_state()
                    .await
                    .map_err(|e| failed("ActiveState of", e))?;
                if state == "inactive" || state == "failed" {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(SystemdError::StopTimeout {
                        uid: m.uid(),
                        unit: unit.to_string(),
                        timeout,
                        state,
                    }
                    .into());
                }
                sleep(POLL_INTERVAL).await;
            }
        })
    }

    /// StartUnit in `m`, then waits until `unit` is active.
    pub fn start_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let failed = |what: &str, e: zbus::Error| dbus(format!("{m}: {what} {unit}"), e);
        zbus::block_on(async {
            let conn = self.connect(m).await?;
            let manager = manager_proxy(&conn)
                .await
                .map_err(|e| failed("proxy for", e))?;
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
                        return Err(SystemdError::UnitFailed {
                            uid: m.uid(),
                            unit: unit.to_string(),
                        }
                        .into())
                    }
                    _ if Instant::now() >= deadline => {
                        return Err(SystemdError::StartTimeout {
                            uid: m.uid(),
                            unit: unit.to_string(),
                            timeout,
                            state,
                        }
                        .into())
                    }
                    _ => sleep(POLL_INTERVAL).await,
                }
            }
        })
    }
}

/// How long a reload may take (generators run during it).
const BUS_TIMEOUT: Duration = Duration::from_secs(60);
