//! The systemd adapter's own errors: a D-Bus call that failed (zbus's error kept as the
//! source) or a wait that ended without the state asked for. The core error wraps them.
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// A call to logind or a systemd manager over D-Bus failed.
    #[error("{context}: {source}")]
    Dbus {
        context: String,
        #[source]
        source: zbus::Error,
    },
    #[error(
        "{service} failed while waiting for uid {uid}'s manager (see journalctl -u {service})"
    )]
    ManagerFailed { service: String, uid: u32 },
    #[error(
        "timed out after {timeout:?} waiting for {service} to be active and {private} to answer: \
         last ActiveState {last_state:?}, private socket: {last_private}"
    )]
    ManagerTimeout {
        timeout: Duration,
        service: String,
        /// The manager's private socket, as displayed.
        private: String,
        last_state: String,
        last_private: String,
    },
    #[error("manager of uid {uid}: timed out after {timeout:?} waiting for {unit} to stop: ActiveState {state:?}")]
    StopTimeout {
        uid: u32,
        unit: String,
        timeout: Duration,
        state: String,
    },
    #[error("manager of uid {uid}: {unit} failed to start (see journalctl --user-unit {unit} _UID={uid})")]
    UnitFailed { uid: u32, unit: String },
    #[error("manager of uid {uid}: timed out after {timeout:?} waiting for {unit} to be active: ActiveState {state:?}")]
    StartTimeout {
        uid: u32,
        unit: String,
        timeout: Duration,
        state: String,
    },
}

impl From<SystemdError> for crate::error::Error {
    fn from(e: SystemdError) -> Self {
        crate::error::Error::host(e)
    }
}

/// A failed D-Bus call, as the core error.
pub fn dbus(context: impl Into<String>, source: zbus::Error) -> crate::error::Error {
    SystemdError::Dbus {
        context: context.into(),
        source,
    }
    .into()
}
