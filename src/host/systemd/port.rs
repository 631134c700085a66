//! The systemd port: every call isolate makes to logind, to the system manager (daemon-reload)
//! and to a stack user's manager (linger, the user manager, units, daemon-reload,
//! podman.socket), as one trait. `DbusSystemd` is the
//! real one, `fake::FakeSystemd` records; consumers take `&dyn SystemdPort` (through
//! `host::session::Session`).
use super::{DbusSystemd, Manager, UserFacts};
use crate::error::Result;
use crate::host::journal::Unit as JournalUnit;
use std::time::Duration;

pub trait SystemdPort {
    /// Linger, `user@UID.service`'s state and `unit` in the user's manager. Read-only.
    fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts>;
    /// logind `SetUserLinger(uid, true)`: the user's manager starts now and at every boot.
    fn enable_linger(&self, uid: u32) -> Result<()>;
    /// Waits until `user@UID.service` is active and its manager answers.
    fn wait_user_manager(&self, uid: u32, timeout: Duration) -> Result<()>;
    /// EnableUnitFiles, daemon-reload when something changed, StartUnit; waits until active.
    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()>;
    /// StartUnit only (nothing enabled); waits until active.
    fn start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()>;
    /// daemon-reload, EnableUnitFiles, daemon-reload, RestartUnit; waits until active.
    fn reload_enable_and_restart_user_unit(
        &self,
        uid: u32,
        unit: &str,
        timeout: Duration,
    ) -> Result<()>;
    /// StopUnit, waits until inactive or failed, DisableUnitFiles, daemon-reload.
    fn stop_and_disable_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()>;
    /// The system manager's daemon-reload: drop-ins below /etc/systemd/system (a stack slice's
    /// limits) are read again; a running slice's cgroup needs [`Self::apply_slice_now`] too.
    fn daemon_reload_system(&self) -> Result<()>;
    /// Puts `slice`'s settings (as the unit now has them) on its running cgroup, which a
    /// daemon-reload alone does not; leaves no runtime drop-in of its own behind.
    fn apply_slice_now(&self, slice: &str) -> Result<()>;
    /// daemon-reload of `m` (the system manager or a user's): quadlet's generator runs again.
    fn reload_manager(&self, m: Manager) -> Result<()>;
    /// `ActiveState` of `unit` in `m` (`inactive` when not loaded). Read-only.
    fn unit_state(&self, m: Manager, unit: &str) -> Result<String>;
    /// StopUnit in `m`, waits until inactive or failed (not loaded: nothing to do).
    fn stop_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()>;
    /// StartUnit in `m`, waits until active.
    fn start_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()>;
    /// The last `n` lines of `unit`'s journal, for an error that says why a wait failed
    /// (empty when none can be read; fakes have none).
    fn journal_tail(&self, _unit: &JournalUnit, _n: usize) -> Vec<String> {
        Vec::new()
    }
}

impl SystemdPort for DbusSystemd {
    fn user_facts(&self, uid: u32, user: &str, unit: &str) -> Result<UserFacts> {
        DbusSystemd::user_facts(self, uid, user, unit)
    }
    fn enable_linger(&self, uid: u32) -> Result<()> {
        DbusSystemd::enable_linger(self, uid)
    }
    fn wait_user_manager(&self, uid: u32, timeout: Duration) -> Result<()> {
        DbusSystemd::wait_user_manager(self, uid, timeout)
    }
    fn enable_and_start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        DbusSystemd::enable_and_start_user_unit(self, uid, unit, timeout)
    }
    fn start_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        DbusSystemd::start_user_unit(self, uid, unit, timeout)
    }
    fn reload_enable_and_restart_user_unit(
        &self,
        uid: u32,
        unit: &str,
        timeout: Duration,
    ) -> Result<()> {
        DbusSystemd::reload_enable_and_restart_user_unit(self, uid, unit, timeout)
    }
    fn stop_and_disable_user_unit(&self, uid: u32, unit: &str, timeout: Duration) -> Result<()> {
        DbusSystemd::stop_and_disable_user_unit(self, uid, unit, timeout)
    }
    fn daemon_reload_system(&self) -> Result<()> {
        DbusSystemd::daemon_reload_system(self)
    }
    fn apply_slice_now(&self, slice: &str) -> Result<()> {
        DbusSystemd::apply_slice_now(self, slice)
    }
    fn reload_manager(&self, m: Manager) -> Result<()> {
        DbusSystemd::reload_manager(self, m)
    }
    fn unit_state(&self, m: Manager, unit: &str) -> Result<String> {
        DbusSystemd::unit_state(self, m, unit)
    }
    fn stop_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()> {
        DbusSystemd::stop_unit_in(self, m, unit, timeout)
    }
    fn start_unit_in(&self, m: Manager, unit: &str, timeout: Duration) -> Result<()> {
        DbusSystemd::start_unit_in(self, m, unit, timeout)
    }
    fn journal_tail(&self, unit: &JournalUnit, n: usize) -> Vec<String> {
        use crate::host::journal::JournalTail;
        crate::host::journal::Journalctl { root: self.root() }.tail(unit, n)
    }
}
