//! The recording fake of the systemd port: every call is kept as a typed `SystemdCall`, the
//! facts it answers are set per uid, and any call can be made to fail.
use super::port::SystemdPort;
use super::{Manager, UnitFacts, UserFacts};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One call made to the fake, as made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemdCall {
    EnableLinger(u32),
    WaitUserManager(u32),
    EnableAndStart {
        uid: u32,
        unit: String,
    },
    Start {
        uid: u32,
        unit: String,
    },
    ReloadEnableRestart {
        uid: u32,
        unit: String,
    },
    StopAndDisable {
        uid: u32,
        unit: String,
    },
    /// The system manager's daemon-reload.
    DaemonReloadSystem,
    /// A slice's settings put on its running cgroup.
    ApplySliceNow {
        slice: String,
    },
    /// daemon-reload of a manager.
    Reload(Manager),
    StopIn {
        manager: Manager,
        unit: String,
    },
    StartIn {
        manager: Manager,
        unit: String,
    },
}

impl SystemdCall {
    /// (uid, unit, up) of a call that starts or stops a unit.
    fn unit_change(&self) -> Option<(u32, &str, bool)> {
        match self {
            SystemdCall::EnableAndStart { uid, unit }
            | SystemdCall::Start { uid, unit }
            | SystemdCall::ReloadEnableRestart { uid, unit } => Some((*uid, unit, true)),
            SystemdCall::StopAndDisable { uid, unit } => Some((*uid, unit, false)),
            _ => None,
        }
    }
}

/// The error an injected failure returns: the call and the text it was given.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Injected {
    pub call: SystemdCall,
    pub text: String,
}

/// Answers `user_facts` from `facts` (default: no linger, no system bus, the unit unknown to
/// a manager that answers) with the unit's state following the units started and stopped.
#[derive(Default)]
pub struct FakeSystemd {
    pub calls: Mutex<Vec<SystemdCall>>,
    pub facts: BTreeMap<u32, UserFacts>,
    /// Calls that fail with the text given (recorded first, then refused).
    pub fail: Vec<(SystemdCall, String)>,
    /// Units active before any call (`unit_state`); starts and stops made since follow.
    pub active: std::collections::BTreeSet<(Manager, String)>,
}

impl FakeSystemd {
    /// Units started (uid, unit, true) and stopped (false), in order.
    pub fn units(&self) -> Vec<(u32, String, bool)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter_map(|c| c.unit_change().map(|(u, n, up)| (u, n.to_string(), up)))
            .collect()
    }

    fn record(&self, call: SystemdCall) -> Result<()> {
        self.calls.lock().unwrap().push(call.clone());
        if let Some((_, text)) = self.fail.iter().find(|(c, _)| *c == call) {
            return Err(Error::host(Injected {
                call,
                text: text.clone(),
            }));
        }
        Ok(())
    }
}

impl SystemdPort for FakeSystemd {
    fn user_facts(&self, uid: u32, _user: &str, unit: &str) -> Result<UserFacts> {
        let mut facts = self.facts.get(&uid).cloned().unwrap_or(UserFacts {
            unit: Some(UnitFacts::default()),
            ..UserFacts::default()
        });
        let calls = self.calls.lock().unwrap();
        let last = calls
            .iter()
            .rev()
            .filter_map(SystemdCall::unit_change)
            .find(|(u, n, _)| *u == uid && *n == unit);
        if let Some((_, _, up)) = last {
            facts.unit = Some(UnitFacts {
                unit_file_state: if up { "enabled" } else { "disabled" }.into(),
                active_state: if up { "active" } else { "inactive" }.into(),
            });
        }
        Ok(facts)
    }
    fn enable_linger(&self, uid: u32) -> Result<()> {
        self.record(SystemdCall::EnableLinger(uid))
    }
    fn wait_user_manager(&self, uid: u32, _timeout: Duration) -> Result<()> {
        self.record(SystemdCall::WaitUserManager(uid))
    }
    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::EnableAndStart {
            uid,
            unit: unit.into(),
        })
    }
    fn start_user_unit(&self, uid: u32, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::Start {
            uid,
            unit: unit.into(),
        })
    }
    fn reload_enable_and_restart_user_unit(&self, uid: u32, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::ReloadEnableRestart {
            uid,
            unit: unit.into(),
        })
    }
    fn stop_and_disable_user_unit(&self, uid: u32, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::StopAndDisable {
            uid,
            unit: unit.into(),
        })
    }
    fn daemon_reload_system(&self) -> Result<()> {
        self.record(SystemdCall::DaemonReloadSystem)
    }
    fn apply_slice_now(&self, slice: &str) -> Result<()> {
        self.record(SystemdCall::ApplySliceNow {
            slice: slice.into(),
        })
    }
    fn reload_manager(&self, m: Manager) -> Result<()> {
        self.record(SystemdCall::Reload(m))
    }
    fn unit_state(&self, m: Manager, unit: &str) -> Result<String> {
        let calls = self.calls.lock().unwrap();
        let last = calls.iter().rev().find_map(|c| match c {
            SystemdCall::StartIn { manager, unit: u } if *manager == m && u == unit => Some(true),
            SystemdCall::StopIn { manager, unit: u } if *manager == m && u == unit => Some(false),
            _ => None,
        });
        let up = last.unwrap_or_else(|| self.active.contains(&(m, unit.to_string())));
        Ok(if up { "active" } else { "inactive" }.to_string())
    }
    fn stop_unit_in(&self, m: Manager, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::StopIn {
            manager: m,
            unit: unit.into(),
        })
    }
    fn start_unit_in(&self, m: Manager, unit: &str, _: Duration) -> Result<()> {
        self.record(SystemdCall::StartIn {
            manager: m,
            unit: unit.into(),
        })
    }
}
