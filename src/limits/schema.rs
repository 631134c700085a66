//! The `[stacks.NAME.limits]` table: the resource budget of one stack's slice, in systemd's own
//! units and syntax, read with every problem at its place, and its rows of the policy reference.
//! A schema, placed in the schemas layer (tests/layers.rs): `policy::STACK_TABLES` picks it up.
//! What it makes on the host is the rest of src/limits (the slice drop-in) and, for `disk_max`,
//! the quota capability.
use crate::model::{Located, PolicyKey, Problem};
use toml::de::{DeTable, DeValue};

/// The key of `[stacks.NAME]` that holds the table.
pub const KEY: &str = "limits";

/// The keys `[stacks.NAME.limits]` accepts.
pub const LIMIT_KEYS: &[&str] = &[
    "memory_max",
    "memory_high",
    "memory_swap_max",
    "cpu_weight",
    "cpu_quota",
    "tasks_max",
    "io_weight",
    "disk_max",
];

/// A byte size as systemd reads it: a number with an optional K, M, G, T, P or E suffix
/// (powers of 1024), or `infinity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    /// The systemd spelling isolate writes (`4G`, `536870912`, `infinity`).
    pub text: String,
    /// None for `infinity`.
    pub bytes: Option<u64>,
}

/// `tasks_max`: a number of tasks or `infinity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tasks {
    Count(u64),
    Infinity,
}

/// One stack's limits; every key optional (none set: no drop-in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackLimits {
    /// Where `limits` stands (the key), 0..0 when absent.
    pub span: std::ops::Range<usize>,
    pub memory_max: Option<Located<Size>>,
    pub memory_high: Option<Located<Size>>,
    pub memory_swap_max: Option<Located<Size>>,
    /// 1..=10000.
    pub cpu_weight: Option<Located<u16>>,
    /// Percent of one CPU (`150%` = one and a half CPUs).
    pub cpu_quota: Option<Located<u32>>,
    pub tasks_max: Option<Located<Tasks>>,
    /// 1..=10000.
    pub io_weight: Option<Located<u16>>,
    /// The disk budget of the stack's data and store. Only read and checked here: its
    /// enforcement (project quotas, btrfs qgroups) is the quota capability's, not src/limits'.
    pub disk_max: Option<Located<Size>>,
}

impl StackLimits {
    /// Whether any key that goes into the slice drop-in is set (`disk_max` does not).
    pub fn has_slice_limits(&self) -> bool {
        self.memory_max.is_some()
            || self.memory_high.is_some()
            || self.memory_swap_max.is_some()
            || self.cpu_weight.is_some()
            || self.cpu_quota.is_some()
            || self.tasks_max.is_some()
            || self.io_weight.is_some()
    }
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// A size from its text: digits, an optional suffix K M G T P E (base 1024); or `infinity`.
pub fn parse_size(s: &str) -> Option<Size> {
    if s == "infinity" {
        return Some(Size {
            text: s.to_string(),
            bytes: None,
        });
    }
    let (digits, shift) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return None,
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let bytes = n.checked_mul(1u64 << shift)?;
    let suffix = &s[digits.len()..];
    Some(Size {
        text: format!("{n}{}", suffix.to_ascii_uppercase()),
        bytes: Some(bytes),
    })
}

const SIZE_SYNTAX: &str = "a size in bytes as systemd writes it: a number with an optional K, M, G, T, P or E suffix (powers of 1024) or \"infinity\", such as \"4G\" or \"512M\"";

fn integer(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Reads `[stacks.NAME.limits]` (its key and value); problems go to `problems`.
pub fn read(
    key: &toml::Spanned<std::borrow::Cow<'_, str>>,
    value: &toml::Spanned<DeValue<'_>>,
    stack: &str,
    problems: &mut Vec<Problem>,
) -> StackLimits {
    let mut limits = StackLimits {
        span: key.span(),
        ..StackLimits::default()
    };
    let DeValue::Table(table) = value.get_ref() else {
        problems.push(Problem::new(
            value.span(),
            format!("`limits` must be a table, found {}", kind(value.get_ref())),
        ));
        return limits;
    };
    read_table(table, stack, &mut limits, problems);
    check_together(&limits, problems);
    limits
}

fn read_table(
    table: &DeTable<'_>,
    stack: &str,
    limits: &mut StackLimits,
    problems: &mut Vec<Problem>,
) {
    for (k, v) in table.iter() {
        let name = k.get_ref().as_ref();
        let span = v.span();
        let mut bad = |why: String| problems.push(Problem::new(span.clone(), why));
        match name {
            "memory_max" | "memory_high" | "memory_swap_max" | "disk_max" => {
                let size = match v.get_ref() {
                    DeValue::String(s) => parse_size(s),
                    DeValue::Integer(_) => integer(v.get_ref())
                        .and_then(|n| u64::try_from(n).ok())
                        .and_then(|n| parse_size(&n.to_string())),
                    _ => None,
                };
                let size = match size {
                    Some(s) if name == "disk_max" && s.bytes.is_none() => {
                        bad("`disk_max` must be a size, not \"infinity\" (leave the key out for no disk budget)".to_string());
                        continue;
                    }
                    Some(s) if s.bytes == Some(0) && name != "memory_swap_max" => {
                        bad(format!("`{name}` must be more than 0 bytes"));
                        continue;
                    }
                    Some(s) => s,
                    None => {
                        bad(format!("`{name}` must be {SIZE_SYNTAX}; found {}", shown(v)));
                        continue;
                    }
                };
                let slot = match name {
                    "memory_max" => &mut limits.memory_max,
                    "memory_high" => &mut limits.memory_high,
                    "memory_swap_max" => &mut limits.memory_swap_max,
                    _ => &mut limits.disk_max,
                };
                *slot = Some(located(size, &span));
            }
            "cpu_weight" | "io_weight" => match integer(v.get_ref()) {
                Some(n @ 1..=10_000) => {
                    let w = Some(located(n as u16, &span));
                    if name == "cpu_weight" {
                        limits.cpu_weight = w;
                    } else {
                        limits.io_weight = w;
                    }
                }
                _ => bad(format!(
                    "`{name}` must be a whole number from 1 to 10000 (100 is systemd's default); found {}",
                    shown(v)
                )),
            },
            "cpu_quota" => {
                let percent = match v.get_ref() {
                    DeValue::String(s) => s
                        .strip_suffix('%')
                        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|d| d.parse::<u32>().ok())
                        .filter(|p| *p > 0),
                    _ => None,
                };
                match percent {
                    Some(p) => limits.cpu_quota = Some(located(p, &span)),
                    None => bad(format!(
                        "`cpu_quota` must be a percentage of one CPU above 0, such as \"150%\" (one and a half CPUs); found {}",
                        shown(v)
                    )),
                }
            }
            "tasks_max" => {
                let tasks = match v.get_ref() {
                    DeValue::String(s) if s == "infinity" => Some(Tasks::Infinity),
                    DeValue::Integer(_) => integer(v.get_ref())
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .map(Tasks::Count),
                    _ => None,
                };
                match tasks {
                    Some(t) => limits.tasks_max = Some(located(t, &span)),
                    None => bad(format!(
                        "`tasks_max` must be a whole number above 0 or \"infinity\"; found {}",
                        shown(v)
                    )),
                }
            }
            _ => problems.push(Problem::new(
                k.span(),
                format!(
                    "unknown key `{name}` in [stacks.{stack}.limits]; expected one of: {}",
                    LIMIT_KEYS.join(", ")
                ),
            )),
        }
    }
}

fn located<T>(value: T, span: &std::ops::Range<usize>) -> Located<T> {
    Located {
        value,
        span: span.clone(),
    }
}

/// The value as the admin wrote it, for an error: a string quoted, anything else by kind.
fn shown(v: &toml::Spanned<DeValue<'_>>) -> String {
    match v.get_ref() {
        DeValue::String(s) => format!("{s:?}"),
        DeValue::Integer(i) => i.as_str().to_string(),
        other => kind(other).to_string(),
    }
}

/// Checks between keys: a `memory_high` at or above `memory_max` never throttles.
fn check_together(limits: &StackLimits, problems: &mut Vec<Problem>) {
    if let (Some(high), Some(max)) = (&limits.memory_high, &limits.memory_max) {
        if let (Some(h), Some(m)) = (high.value.bytes, max.value.bytes) {
            if h >= m {
                problems.push(Problem::new(
                    high.span.clone(),
                    format!(
                        "`memory_high` ({}) must be below `memory_max` ({}): the stack would be killed before it is ever throttled",
                        high.value.text, max.value.text
                    ),
                ));
            }
        }
    }
}

/// The table's rows of the policy reference (README, isolate-policy(5), the NixOS module).
pub const REFERENCE: &[PolicyKey] = &[
    PolicyKey {
        key: "`[stacks.NAME] limits`",
        default: "none",
        meaning: "the table `[stacks.NAME.limits]`: the stack's resource budget. Every process of the stack runs below `user-UID.slice`, so apply writes the keys below as `[Slice]` settings into `/etc/systemd/system/user-UID.slice.d/50-isolate.conf` and daemon-reloads: in force on the running slice, nothing restarts. Plan shows the change line by line; a key removed loses its line, all keys removed (or `rollback --stack`) remove the drop-in. On NixOS, `export nixos` declares them as `systemd.slices.\"user-UID\".sliceConfig` instead. On a cgroup v1 host memory and CPU limits may not act (plan says so)",
    },
    PolicyKey {
        key: "`[stacks.NAME.limits] memory_max`, `memory_high`, `memory_swap_max`",
        default: "none",
        meaning: "`MemoryMax=` (the stack is OOM-killed above it), `MemoryHigh=` (throttled above it; must be below `memory_max`), `MemorySwapMax=`: bytes with an optional `K`, `M`, `G`, `T`, `P`, `E` suffix (powers of 1024), or `\"infinity\"`, e.g. `\"4G\"`",
    },
    PolicyKey {
        key: "`[stacks.NAME.limits] cpu_weight`, `cpu_quota`",
        default: "none",
        meaning: "`CPUWeight=` 1..10000 (systemd's default 100: the stack's share against other slices when CPU is scarce); `CPUQuota=` percent of one CPU, `\"150%\"` = one and a half CPUs at most",
    },
    PolicyKey {
        key: "`[stacks.NAME.limits] tasks_max`",
        default: "none",
        meaning: "`TasksMax=`: processes and threads of the whole stack, a number or `\"infinity\"` (stops a fork loop in one stack only)",
    },
    PolicyKey {
        key: "`[stacks.NAME.limits] io_weight`",
        default: "none",
        meaning: "`IOWeight=` 1..10000: weighs the stack's slice against other slices only; the default `user@.service` delegates `pids memory cpu`, not `io`, so it has no effect among the stack's own containers (plan says so)",
    },
    PolicyKey {
        key: "`[stacks.NAME.limits] disk_max`",
        default: "none",
        meaning: "the disk budget of each of the stack's data paths, a size as above (not `infinity`); not part of the slice drop-in. Set as a btrfs qgroup limit on a data path that is a subvolume of its own (quotas enabled); anywhere else (a plain directory, tmpfs, ext4/xfs) plan names why and apply refuses the key (see \"Disk budget\")",
    },
];

#[cfg(test)]
mod tests;
