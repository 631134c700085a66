//! The policy file: what stacks exist, where their data is, which ids they may use. Parsed by
//! walking toml's spanned tree by hand so that *every* problem is reported at once with its
//! file:line:column, instead of serde stopping at the first.
pub mod boundary;
pub mod handoff;
mod parse;
pub mod quadlets;
pub mod reach;
pub mod reference;
pub mod select;
mod tables;
pub mod validate;

use parse::parse_tree;
pub use parse::{POOL_KEYS, SHARE_KEYS, STACK_KEYS, TOP_KEYS};
pub use tables::StackTable;

use crate::error::{Error, Result};
use crate::migration::{MigrateMode, OutsideLinks};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const DEFAULT_POLICY: &str = "/etc/isolate/policy.toml";

pub use crate::model::{Located, PolicyKey, Problem};

/// The default uid pool before issue 20: users isolate made there (home below isolate's, uid
/// in it) stay isolate's own when the state file is gone. Recorded allocations never move.
pub const PREVIOUS_DEFAULT_UIDS: std::ops::RangeInclusive<u32> = 800..=899;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pools {
    pub uid_first: u32,
    pub uid_last: u32,
    pub subid_first: u32,
    pub subid_last: u32,
    pub subid_size: u32,
}

impl Default for Pools {
    fn default() -> Self {
        Pools {
            // 70000..79999: journald gives uids above 999 their own journal (`podman logs`
            // works); above shadow's UID_MAX (60000, so `useradd`, which takes the id after the
            // highest one in use, never reaches it), NixOS's 1000-29999, Nix's build users
            // (30001..), Debian's global 60000-64999 and systemd's 60001-65535; in what Debian
            // calls dynamically allocated accounts (65536..); below the subordinate ranges shadow
            // and NixOS hand out from 100000. README, "Logs".
            uid_first: 70_000,
            uid_last: 79_999,
            // 0x70000000..0x7FFDFFFF: 65536-aligned, above shadow's SUB_UID_MAX (600100000) and
            // systemd-nspawn's container ranges (..0x6FFFFFFF), below systemd's foreign range
            // (0x7FFE0000..) and 2^31; NixOS's automatic ranges reach it only after 28670 users.
            subid_first: 0x7000_0000,
            subid_last: 0x7FFD_FFFF,
            subid_size: 65_536,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackPolicy {
    pub name: String,
    /// Where `[stacks.NAME]` stands.
    pub span: Range<usize>,
    pub data: Vec<Located<PathBuf>>,
    pub migrate: Located<MigrateMode>,
    pub uid: Option<Located<u32>>,
    pub subid_start: Option<Located<u32>>,
    /// What migration does with files hardlinked from outside the data path.
    pub outside_hardlinks: OutsideLinks,
    /// `closed` (default true): after migration no uid outside the stack enters its data.
    pub closed: bool,
    /// What moves with the stack besides its data: compose project, env files, images, service.
    pub handoff: handoff::StackHandoff,
    /// `reaches`: other stacks' services this stack reaches (src/reach).
    pub reaches: Vec<Located<reach::Reach>>,
    /// It reaches or is reached: its compose runs with the reach override (set after parsing).
    pub reach_override: bool,
    /// `[stacks.NAME.limits]`: the stack slice's resource budget (src/limits).
    pub limits: crate::limits::schema::StackLimits,
}

/// The `[stacks.NAME]` tables of capabilities whose schema lives in their own folder: each
/// one's key, how it is read into its field of `StackPolicy` above, and its reference rows.
pub const STACK_TABLES: &[StackTable] = &[StackTable {
    key: crate::limits::schema::KEY,
    read: |stack, key, value, problems| {
        stack.limits = crate::limits::schema::read(key, value, &stack.name, problems)
    },
    reference: crate::limits::schema::REFERENCE,
}];

impl StackPolicy {
    /// A stack as `[stacks.NAME]` at `span` declares it before its keys are read: every key
    /// at its default.
    pub fn new(name: String, span: Range<usize>) -> Self {
        StackPolicy {
            name,
            span: span.clone(),
            data: Vec::new(),
            migrate: Located {
                value: MigrateMode::Auto,
                span,
            },
            uid: None,
            subid_start: None,
            outside_hardlinks: OutsideLinks::Refuse,
            closed: true,
            handoff: Default::default(),
            reaches: Vec::new(),
            reach_override: false,
            limits: Default::default(),
        }
    }
}

/// One entry of a share's `read`/`write` list: a stack, optionally one container uid in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub stack: String,
    pub container_uid: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharePolicy {
    pub name: String,
    pub span: Range<usize>,
    pub path: Located<PathBuf>,
    pub read: Vec<Located<Grant>>,
    pub write: Vec<Located<Grant>>,
    /// How access is given: named ACL entries (default) or the shared group only.
    pub mode: ShareMode,
}

/// `[shares.NAME] mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareMode {
    /// Named-user POSIX ACL entries for each grant's mapped host uid.
    Acl,
    /// For a filesystem without POSIX ACLs: the share belongs to the shared group, and every
    /// member of it (as a host user, or a container run with `--group-add keep-groups`) reaches it.
    Group,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The file it was read from and its text, to turn spans into line:column.
    pub file: PathBuf,
    pub text: String,
    pub user_prefix: Located<String>,
    pub shared_group: Located<String>,
    pub legacy_owner: Option<Located<String>>,
    /// Existing accounts isolate did not create that it may take over: stack users and the
    /// shared group, each named explicitly (never root or a privileged account).
    pub adopt: Vec<Located<String>>,
    pub pools: Pools,
    pub pools_span: Range<usize>,
    pub stacks: BTreeMap<String, StackPolicy>,
    pub shares: BTreeMap<String, SharePolicy>,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl Policy {
    pub fn stack_user(&self, stack: &str) -> String {
        format!("{}{}", self.user_prefix.value, stack)
    }

    /// `file:line:column: message` for each problem, in file order.
    pub fn render(&self, problems: Vec<Problem>) -> Vec<String> {
        render(&self.file, &self.text, problems)
    }

    pub fn error(&self, problems: Vec<Problem>) -> Error {
        Error::Policy(self.render(problems))
    }

    /// Reads and checks a policy; any problem is an `Error::Policy` listing all of them.
    pub fn load(file: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Usage(format!("cannot read policy {}: {}", file.display(), e)))?;
        Policy::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Policy> {
        let (policy, mut problems) = parse_tree(file, text);
        if let Some(p) = &policy {
            problems.extend(validate::check(p));
        }
        match policy {
            Some(p) if problems.is_empty() => Ok(p),
            _ => Err(Error::Policy(render(file, text, problems))),
        }
    }
}

fn render(file: &Path, text: &str, mut problems: Vec<Problem>) -> Vec<String> {
    problems.sort_by_key(|p| p.span.start);
    problems.dedup();
    problems
        .into_iter()
        .map(|p| {
            let (l, c) = line_col(text, p.span.start);
            format!("{}:{}:{}: {}", file.display(), l, c, p.message)
        })
        .collect()
}

#[cfg(test)]
mod tests;
