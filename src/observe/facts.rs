//! What observe hands to plan, as plain data (tests build it by hand), and the port through
//! which observe asks a stack user's live session.
use crate::host::accounts::Accounts;
use crate::state::State;
use crate::walk::Survey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the systemd side of one stack user looks like (filled only when systemd is in use).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ManagerFacts {
    pub linger: bool,
    pub manager_active: bool,
    /// podman.socket is enabled in the user's manager (comes back at boot).
    pub socket_enabled: bool,
    pub socket_active: bool,
    /// A real `GET /_ping` answered OK (asked by status only: plan does not start podman).
    pub ping_ok: bool,
}

/// What is known of one data path before migrating it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum DataFacts {
    /// The walker refused it (missing, not a directory, network filesystem, ...).
    Refused(String),
    Surveyed(Survey),
    /// It does not exist yet, below a trusted parent: apply creates it for the stack.
    Missing,
}

pub use crate::data::RunningContainer;

/// Everything plan() reads, as plain data.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub accounts: Accounts,
    pub state: State,
    /// Per stack user name.
    pub managers: BTreeMap<String, ManagerFacts>,
    /// Per (stack, data path) that needs migrating.
    pub data: BTreeMap<(String, PathBuf), DataFacts>,
    pub running: Vec<RunningContainer>,
    /// Per (stack, data path) about to be migrated or closed: the processes of other users
    /// holding something inside it (a working directory, a root, a descriptor, a mount), or
    /// why they could not be looked for.
    pub inside: BTreeMap<(String, PathBuf), Result<Vec<crate::host::procs::Holder>, String>>,
    /// Closed data and shares (src/isolation).
    pub isolation: crate::isolation::facts::Facts,
    /// The login shell given to stack users (first nologin found under the root).
    pub nologin: String,
    /// Per stack: its env files, images, volumes and service as found.
    pub handoff: BTreeMap<String, crate::handoff::StackFacts>,
    /// `/etc/NIXOS` exists under the root: accounts and subordinate ids are NixOS's to declare.
    pub nixos: bool,
    /// Where the host's own allocators hand out subordinate ranges.
    pub subid_zones: Vec<crate::alloc::zones::SubidZone>,
    /// Host ports, overrides and shared networks of `reaches` (src/reach).
    pub reach: crate::reach::plan::ReachFacts,
    /// Per stack: what its compose unit needs of the host (`preconditions`).
    pub preconditions: BTreeMap<String, crate::preconditions::Facts>,
    /// The system's units and the legacy user's (`preconditions::units`).
    pub units: crate::preconditions::units::Scan,
    /// Per stack with `disk_max`: its data trees' filesystems and limits (src/quota).
    pub quota: BTreeMap<String, Vec<crate::quota::plan::Tree>>,
    /// What the capabilities plugged in through src/plugins.rs found.
    pub plugged: crate::plugins::Facts,
}
