//! The audit's report: plain, serialisable data that every renderer (text, JSON, Prometheus)
//! reads. The JSON form of `Report` is a documented, stable schema (README, "Audit JSON").
use serde::Serialize;
use std::collections::BTreeMap;

/// Bumped whenever a field is renamed or removed or changes meaning (adding fields does not).
pub const SCHEMA_VERSION: u32 = 1;

/// How bad a finding is; `--fail-on` compares against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Every kind of finding the audit reports. The snake_case names are part of the schema and
/// of the Prometheus `kind` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Inodes owned by (uid or gid) an id of another stack's mapping.
    OtherStackIds,
    /// Inodes still in the legacy mapping in a data path whose migration is done.
    LegacyAfterMigration,
    /// Files and directories writable by everyone (sticky directories included).
    WorldWritable,
    /// A migrated data path whose top any uid outside the stack can traverse again.
    ClosedPathOpen,
    /// Files with the setuid or setgid bit.
    SetuidSetgid,
    /// Files with a `security.capability` attribute.
    FileCapability,
    /// Access or default ACL entries naming another stack's ids.
    AclOtherStack,
    /// Hardlinked inodes with more links than the tree holds: the other links are outside.
    HardlinkOutside,
    /// A share's ACL entries differ from what its grants give.
    ShareAclMismatch,
    /// Overlapping lines in /etc/subuid or /etc/subgid.
    SubidOverlap,
    /// The stack user has no linger: its containers stop at logout and do not start at boot.
    LingerOff,
    /// The stack user's systemd manager is not active.
    ManagerDown,
    /// The stack's podman socket does not answer `GET /_ping`.
    SocketDown,
    /// The stack's compose service is installed, but its project's containers do not run.
    ServiceNotRunning,
    /// A stack reaches a path more than the policy grants.
    AccessAbovePolicy,
    /// A stack reaches a path less than the policy grants.
    AccessBelowPolicy,
    /// Entries the audit could not read (stat, directory listing, attributes), or a data
    /// path that is missing or refused; the audit went on without them.
    Unreadable,
    /// Mount points inside a data path (not crossed, so not audited).
    MountSkipped,
    /// A system unit or the legacy user's unit that hands a stack's data back or runs its
    /// compose project as another user at its next start (`preconditions::units`).
    UndoingUnit,
}

impl FindingKind {
    pub const ALL: [FindingKind; 19] = [
        FindingKind::OtherStackIds,
        FindingKind::LegacyAfterMigration,
        FindingKind::WorldWritable,
        FindingKind::ClosedPathOpen,
        FindingKind::SetuidSetgid,
        FindingKind::FileCapability,
        FindingKind::AclOtherStack,
        FindingKind::HardlinkOutside,
        FindingKind::ShareAclMismatch,
        FindingKind::SubidOverlap,
        FindingKind::LingerOff,
        FindingKind::ManagerDown,
        FindingKind::SocketDown,
        FindingKind::ServiceNotRunning,
        FindingKind::AccessAbovePolicy,
        FindingKind::AccessBelowPolicy,
        FindingKind::Unreadable,
        FindingKind::MountSkipped,
        FindingKind::UndoingUnit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FindingKind::OtherStackIds => "other_stack_ids",
            FindingKind::LegacyAfterMigration => "legacy_after_migration",
            FindingKind::WorldWritable => "world_writable",
            FindingKind::ClosedPathOpen => "closed_path_open",
            FindingKind::SetuidSetgid => "setuid_setgid",
            FindingKind::FileCapability => "file_capability",
            FindingKind::AclOtherStack => "acl_other_stack",
            FindingKind::HardlinkOutside => "hardlink_outside",
            FindingKind::ShareAclMismatch => "share_acl_mismatch",
            FindingKind::SubidOverlap => "subid_overlap",
            FindingKind::LingerOff => "linger_off",
            FindingKind::ManagerDown => "manager_down",
            FindingKind::SocketDown => "socket_down",
            FindingKind::ServiceNotRunning => "service_not_running",
            FindingKind::AccessAbovePolicy => "access_above_policy",
            FindingKind::AccessBelowPolicy => "access_below_policy",
            FindingKind::Unreadable => "unreadable",
            FindingKind::MountSkipped => "mount_skipped",
            FindingKind::UndoingUnit => "undoing_unit",
        }
    }

    /// The severity every finding of this kind has.
    pub fn severity(self) -> Severity {
        use FindingKind::*;
        match self {
            OtherStackIds | ClosedPathOpen | AclOtherStack | HardlinkOutside | ShareAclMismatch
            | SubidOverlap | AccessAbovePolicy | UndoingUnit => Severity::Error,
            LegacyAfterMigration | WorldWritable | SetuidSetgid | FileCapability | LingerOff
            | ManagerDown | SocketDown | ServiceNotRunning | AccessBelowPolicy | Unreadable => {
                Severity::Warning
            }
            MountSkipped => Severity::Info,
        }
    }
}

/// One finding: what, how bad, where, how many, and a few examples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// The stack it concerns; None for host-wide findings (subuid overlaps) and shares.
    pub stack: Option<String>,
    /// The policy path (data path or share) it was found in, when it is about one.
    pub path: Option<String>,
    /// How many inodes, entries or lines it concerns.
    pub count: u64,
    /// At most `SAMPLES` absolute paths (escaped: see `model::escape`) or descriptions.
    pub samples: Vec<String>,
    /// One line saying what is wrong.
    pub detail: String,
}

/// Who an id belongs to, resolved through every mapping the host knows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Owner {
    /// The audited stack's own mapping (for a share: a stack the share grants).
    Stack { stack: String, container_id: u32 },
    /// The legacy owner's mapping: not migrated.
    Legacy { owner: String, container_id: u32 },
    /// Another stack's mapping (for a share: a stack the share does not grant).
    OtherStack { stack: String, container_id: u32 },
    /// A host account (user for uids, group for gids) outside every mapping.
    Host { name: String },
    /// No mapping and no account knows it.
    Unmapped,
}

impl Owner {
    /// The bounded `class` label: stack, legacy, other_stack, host, unmapped.
    pub fn class(&self) -> &'static str {
        match self {
            Owner::Stack { .. } => "stack",
            Owner::Legacy { .. } => "legacy",
            Owner::OtherStack { .. } => "other_stack",
            Owner::Host { .. } => "host",
            Owner::Unmapped => "unmapped",
        }
    }
}

/// Inodes and bytes (of regular files) with one id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inodes: u64,
    pub bytes: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.inodes += other.inodes;
        self.bytes += other.bytes;
    }
}

/// One host id found as owner, who it is, and how much it owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OwnerRow {
    pub host_id: u32,
    #[serde(flatten)]
    pub owner: Owner,
    pub inodes: u64,
    pub bytes: u64,
}

/// Whether a path is one stack's data or a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Data,
    Share,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Data => "data",
            PathKind::Share => "share",
        }
    }
}

/// Attribution of one data path or share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathReport {
    /// As written in the policy (absolute on the audited host).
    pub path: String,
    pub kind: PathKind,
    /// The stack owning a data path; the share's name for a share.
    pub stack: Option<String>,
    pub share: Option<String>,
    /// Whether the path could be walked at all (false: see the `unreadable` finding).
    pub walked: bool,
    pub inodes: u64,
    pub bytes: u64,
    /// Per owner class, summed over ids: `class -> counts`, uid and gid separately.
    pub uid_classes: BTreeMap<String, Counts>,
    pub gid_classes: BTreeMap<String, Counts>,
    /// Every distinct id found, resolved, largest first by inodes.
    pub uids: Vec<OwnerRow>,
    pub gids: Vec<OwnerRow>,
}

/// none < read < write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    None,
    Read,
    Write,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::Write => "write",
        }
    }
    /// 0, 1, 2: the Prometheus gauge value.
    pub fn level(self) -> u8 {
        self as u8
    }
}

/// One cell of the access matrix: a stack's predicted reach to a path and the policy's intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatrixCell {
    pub stack: String,
    pub path: String,
    pub kind: PathKind,
    pub predicted: Access,
    pub intended: Access,
    /// The container uid that gets the predicted access (None when no one does).
    pub via_container_uid: Option<u32>,
}

/// What audit knows about each stack up front.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackInfo {
    pub stack: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subid_start: u32,
    pub subid_count: u32,
    /// Recorded in the state file (apply ran for it).
    pub applied: bool,
}

/// The whole audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// Unix time (seconds) the audit finished.
    pub completed_at: f64,
    pub duration_seconds: f64,
    pub legacy_owner: Option<String>,
    pub stacks: Vec<StackInfo>,
    pub paths: Vec<PathReport>,
    pub matrix: Vec<MatrixCell>,
    pub findings: Vec<Finding>,
    /// The policy's `reaches` paths and whether each answers (src/reach/audit.rs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaches: Vec<crate::reach::audit::ReachCheck>,
    /// Disk per stack and tree (data, share, store), attributed through the mappings.
    pub disk: Vec<crate::usage::disk::StackDisk>,
    /// Every recorded stack's slice (cgroup files); None with `--skip usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::usage::Usage>,
}

impl Report {
    /// The worst severity found, if any finding exists.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Whether `--fail-on fail_on` makes the audit exit 1: a finding at or above it exists.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.worst().is_some_and(|w| w >= fail_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_compares_with_the_worst_finding() {
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            completed_at: 0.0,
            duration_seconds: 0.0,
            legacy_owner: None,
            stacks: vec![],
            paths: vec![],
            matrix: vec![],
            findings: vec![],
            reaches: vec![],
            disk: vec![],
            usage: None,
        };
        assert!(
            !r.fails(Severity::Info),
            "no finding: exit 0 whatever the level"
        );
        r.findings.push(Finding {
            kind: FindingKind::WorldWritable,
            severity: FindingKind::WorldWritable.severity(),
            stack: None,
            path: None,
            count: 1,
            samples: vec![],
            detail: String::new(),
        });
        assert!(!r.fails(Severity::Error));
        assert!(r.fails(Severity::Warning));
        assert!(r.fails(Severity::Info));
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::BTreeSet<_> =
            FindingKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FindingKind::ALL.len());
        for k in FindingKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
