//! systemd as isolate needs it: logind linger and each stack user's own manager, over D-Bus
//! (zbus, no systemctl). `SystemdPort` is the port, `DbusSystemd` the real one, `fake` the
//! recording one; consumers reach it through `host::session::Session`.
mod dbus;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
mod manager;
pub mod port;
mod relay;
mod rt;

pub use dbus::DbusSystemd;
pub use error::SystemdError;
pub use manager::Manager;
pub use port::SystemdPort;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The unit that gives each stack its podman API socket.
pub const PODMAN_SOCKET_UNIT: &str = "podman.socket";

/// How long one connection (connect + authentication) or one method call may take.
pub const BUS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the waits look again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The least time one look of a wait gets, even at its deadline: a wait may overrun its
/// timeout by this much (or, while connecting, by one BUS_CALL_TIMEOUT).
pub(crate) const LAST_LOOK: Duration = Duration::from_millis(500);

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
