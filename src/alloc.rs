//! Pure, deterministic allocation of stack uids and subordinate ranges from (policy, host
//! accounts, state). A recorded allocation is kept forever; a new one overlaps nothing that
//! exists, was ever recorded, or is pinned for another stack.
use crate::error::Error;
use crate::host::accounts::etc::{Accounts, SubidFile, SubidOwner};
use crate::ids::{IdMaps, SubidRange, ID_CEILING};
use crate::policy::{Policy, Problem};
use crate::state::{Allocation, State};
use serde::Serialize;
use std::collections::BTreeMap;

pub mod zones;

/// journald writes the logs of uids from here up (non-system users) into per-user journals
/// their users can read; below, into the system journal (systemd's SYSTEM_UID_MAX is 999).
pub const FIRST_USER_JOURNAL_UID: u32 = 1000;

/// The legacy owner's mapping, read from the host's files (`isolate map`, the data plan,
/// the hand-off's volumes).
pub fn legacy_maps(policy: &Policy, acc: &Accounts) -> Option<IdMaps> {
    acc.mapping_of(&policy.legacy_owner.as_ref()?.value)
}

/// Where a stack's allocation came from: "already present" is an outcome, not an accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// In isolate's state file: never changes.
    Recorded,
    /// The stack user already existed on the host; its ids are taken over.
    Adopted,
    /// Chosen now (from pins or the pools); recorded by apply before anything else.
    New,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Allocated {
    pub allocation: Allocation,
    pub source: Source,
}

/// Who holds taken ids: a stack's own user or own record never blocks that stack.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Holder {
    User(String),
    Stack(String),
}

/// A half-open interval of ids that a new allocation must not touch, and who holds it.
#[derive(Clone, Debug)]
struct Taken {
    start: u64,
    end: u64,
    holder: Holder,
    /// For messages: "user `alice`", "the range of `alice` at /etc/subuid:1", ...
    by: String,
}

impl Taken {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
    fn held_by(&self, user: &str, stack: &str) -> bool {
        match &self.holder {
            Holder::User(u) => u == user,
            Holder::Stack(s) => s == stack,
        }
    }
}

fn point(id: u32, holder: Holder, by: String) -> Taken {
    Taken {
        start: id.into(),
        end: u64::from(id) + 1,
        holder,
        by,
    }
}

fn range(r: SubidRange, holder: Holder, by: String) -> Taken {
    Taken {
        start: r.start.into(),
        end: r.end(),
        holder,
        by,
    }
}

fn owner_name(o: &SubidOwner) -> String {
    match o {
        SubidOwner::Name(n) => n.clone(),
        SubidOwner::Uid(u) => u.to_string(),
    }
}

/// Every line of a subordinate file as taken ids. A numeric owner is resolved to its user
/// name where passwd knows it, so a user's own lines are recognised either way.
fn subid_lines(f: &SubidFile, acc: &Accounts) -> Vec<Taken> {
    let file = f.path.display().to_string();
    f.lines
        .iter()
        .map(|l| {
            let holder = match &l.owner {
                SubidOwner::Name(n) => n.clone(),
                SubidOwner::Uid(u) => acc
                    .user_by_uid(*u)
                    .map_or_else(|| u.to_string(), |p| p.name.clone()),
            };
            range(
                l.range,
                Holder::User(holder),
                format!(
                    "the range of `{}` at {}:{}",
                    owner_name(&l.owner),
                    file,
                    l.line
                ),
            )
        })
        .collect()
}

/// Lines of the host's subordinate files that overlap each other, as messages.
pub fn host_overlaps(acc: &Accounts) -> Vec<String> {
    let mut out = Vec::new();
    for f in [&acc.subuid, &acc.subgid] {
        for (a, b) in f.overlaps() {
            out.push(format!(
                "{}:{} ({}:{}) and line {} ({}:{}) overlap: newuidmap refuses a user whose ranges overlap (EINVAL), and a new range cannot be proven free; remove or fix one of them",
                f.path.display(),
                a.line,
                owner_name(&a.owner),
                a.range,
                b.line,
                owner_name(&b.owner),
                b.range
            ));
        }
    }
    out
}

/// Every allocated stack by name: what `allocate` gives, made once per run and carried.
pub type Allocs = BTreeMap<String, Allocated>;

/// Allocates every stack in `selected` (all of the policy's when empty). Problems with pins or
/// the legacy owner are policy errors with positions; broken host files are host-state errors.
pub fn allocate(
    policy: &Policy,
    acc: &Accounts,
    state: &State,
    selected: &[String],
) -> Result<BTreeMap<String, Allocated>, Error> {
    let mut problems: Vec<Problem> = Vec::new();
    let size = policy.pools.subid_size;

    if let Some(l) = &policy.legacy_owner {
        if acc.user(&l.value).is_none() {
            problems.push(Problem::new(
                l.span.clone(),
                format!(
                    "legacy owner `{}` does not exist in the host's passwd",
                    l.value
                ),
            ));
        }
    }

    // People's homes, and accounts isolate did not create: refused before anything is allocated.
    problems.extend(crate::policy::boundary::host_problems(policy, acc, state));

    let wanted: Vec<&crate::policy::StackPolicy> = policy
        .stacks
        .values()
        .filter(|s| selected.is_empty() || selected.contains(&s.name))
        .collect();

    // Everything any stack may not take, whoever asks.
    let mut taken: Vec<Taken> = Vec::new();
    for p in &acc.passwd {
        taken.push(point(
            p.uid,
            Holder::User(p.name.clone()),
            format!("user `{}`", p.name),
        ));
    }
    for g in &acc.group {
        taken.push(point(
            g.gid,
            Holder::User(g.name.clone()),
            format!("group `{}`", g.name),
        ));
    }
    for (name, rec) in &state.stacks {
        let h = Holder::Stack(name.clone());
        taken.push(point(
            rec.allocation.uid,
            h.clone(),
            format!("stack `{name}` (recorded)"),
        ));
        taken.push(range(
            rec.allocation.subids,
            h,
            format!("the range recorded for stack `{name}`"),
        ));
    }
    if let Some(g) = &state.shared_group {
        taken.push(point(
            g.gid,
            Holder::User(g.name.clone()),
            format!("the gid recorded for group `{}`", g.name),
        ));
    }
    for s in policy.stacks.values() {
        if state.stacks.contains_key(&s.name) {
            continue;
        }
        let h = Holder::Stack(s.name.clone());
        if let Some(u) = &s.uid {
            taken.push(point(
                u.value,
                h.clone(),
                format!("the uid pinned for stack `{}`", s.name),
            ));
        }
        if let Some(st) = &s.subid_start {
            if let Ok(r) = SubidRange::new(st.value, size) {
                taken.push(range(
                    r,
                    h,
                    format!("the range pinned for stack `{}`", s.name),
                ));
            }
        }
    }
    taken.extend(subid_lines(&acc.subuid, acc));
    taken.extend(subid_lines(&acc.subgid, acc));

    let mut out = BTreeMap::new();
    let mut needs_new_range = false;
    for s in &wanted {
        let user = policy.stack_user(&s.name);
        if let Some(rec) = state.stacks.get(&s.name) {
            let a = &rec.allocation;
            if let Some(u) = s.uid.as_ref().filter(|u| u.value != a.uid) {
                problems.push(Problem::new(
                    u.span.clone(),
                    format!("stack `{}` already has uid {} (recorded in the state file); isolate never moves an allocation: remove the pin or set it to {}", s.name, a.uid, a.uid),
                ));
            }
            if let Some(st) = s
                .subid_start
                .as_ref()
                .filter(|st| st.value != a.subids.start)
            {
                problems.push(Problem::new(
                    st.span.clone(),
                    format!("stack `{}` already has subordinate range {} (recorded in the state file); remove the pin or set it to {}", s.name, a.subids, a.subids.start),
                ));
            }
            out.insert(
                s.name.clone(),
                Allocated {
                    allocation: a.clone(),
                    source: Source::Recorded,
                },
            );
            continue;
        }

        let existing = acc.user(&user);
        let clash = |start: u64, end: u64| {
            taken
                .iter()
                .find(|t| t.overlaps(start, end) && !t.held_by(&user, &s.name))
                .cloned()
        };

        // The uid: adopted, pinned, or the lowest free id of the pool.
        let uid = if let Some(e) = existing {
            if let Some(u) = s.uid.as_ref().filter(|u| u.value != e.uid) {
                problems.push(Problem::new(
                    u.span.clone(),
                    format!(
                        "user `{user}` already exists with uid {}; the pin says {}",
                        e.uid, u.value
                    ),
                ));
            }
            Some(e.uid)
        } else if let Some(u) = &s.uid {
            match clash(u.value.into(), u64::from(u.value) + 1) {
                Some(t) => {
                    problems.push(Problem::new(
                        u.span.clone(),
                        format!(
                            "uid {} of stack `{}` is already taken by {}",
                            u.value, s.name, t.by
                        ),
                    ));
                    None
                }
                None => Some(u.value),
            }
        } else {
            let found = first_fit(
                &taken,
                policy.pools.uid_first.into(),
                policy.pools.uid_last.into(),
                1,
            );
            if found.is_none() {
                problems.push(Problem::new(
                    policy.pools_span.clone(),
                    format!(
                        "no free uid left in the pool {}-{} for stack `{}`",
                        policy.pools.uid_first, policy.pools.uid_last, s.name
                    ),
                ));
            }
            found
        };
        let gid = existing.map(|e| e.gid).or(uid);

        // The range: adopted from the existing user's lines, pinned, or first fit in the pool.
        let own_uid_ranges = existing
            .map(|e| acc.subuid.ranges_of(&user, Some(e.uid)))
            .unwrap_or_default();
        let own_gid_ranges = existing
            .map(|e| acc.subgid.ranges_of(&user, Some(e.uid)))
            .unwrap_or_default();
        let subids = if !own_uid_ranges.is_empty() || !own_gid_ranges.is_empty() {
            if own_uid_ranges.len() == 1 && own_uid_ranges == own_gid_ranges {
                Some(own_uid_ranges[0])
            } else {
                problems.push(Problem::new(
                    s.span.clone(),
                    format!(
                        "user `{user}` already exists with subordinate uids [{}] and gids [{}]; isolate adopts only one range that is the same in both files",
                        own_uid_ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "),
                        own_gid_ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
                None
            }
        } else if let Some(st) = &s.subid_start {
            match SubidRange::new(st.value, size) {
                Ok(r) => match clash(r.start.into(), r.end()) {
                    Some(t) => {
                        problems.push(Problem::new(
                            st.span.clone(),
                            format!(
                                "subordinate range {} of stack `{}` overlaps {}",
                                r, s.name, t.by
                            ),
                        ));
                        None
                    }
                    None => Some(r),
                },
                Err(e) => {
                    problems.push(Problem::new(st.span.clone(), e.to_string()));
                    None
                }
            }
        } else {
            needs_new_range = true;
            let last = u64::from(policy.pools.subid_last).min(ID_CEILING - 1);
            let found = first_fit(&taken, policy.pools.subid_first.into(), last, size.into());
            if found.is_none() {
                problems.push(Problem::new(
                    policy.pools_span.clone(),
                    format!(
                        "no free range of {size} ids left in {}-{} for stack `{}`",
                        policy.pools.subid_first, last, s.name
                    ),
                ));
            }
            found.map(|start| SubidRange::new(start, size).expect("first_fit stays below 2^31"))
        };

        if let (Some(uid), Some(gid), Some(subids)) = (uid, gid, subids) {
            // What this stack took is taken for the stacks after it.
            let h = Holder::Stack(s.name.clone());
            taken.push(point(uid, h.clone(), format!("stack `{}` (new)", s.name)));
            taken.push(range(
                subids,
                h,
                format!("the range chosen for stack `{}`", s.name),
            ));
            let source = if existing.is_some() {
                Source::Adopted
            } else {
                Source::New
            };
            out.insert(
                s.name.clone(),
                Allocated {
                    allocation: Allocation {
                        user,
                        uid,
                        gid,
                        subids,
                    },
                    source,
                },
            );
        }
    }

    if !problems.is_empty() {
        return Err(policy.error(problems));
    }
    if needs_new_range || out.values().any(|a| a.source != Source::Recorded) {
        let overlaps = host_overlaps(acc);
        if !overlaps.is_empty() {
            return Err(Error::HostState(overlaps));
        }
    }
    Ok(out)
}

/// Every stack's allocation with whether it is recorded (applied): the state file's, then the
/// ones apply would make for the policy's other stacks (limited to `stacks` when given). For
/// read-only commands (status, map), which show what apply would do where it has not yet.
pub fn known_allocations(
    policy: Option<&Policy>,
    acc: &Accounts,
    state: &State,
    stacks: &[String],
) -> BTreeMap<String, (Allocation, bool)> {
    let mut out: BTreeMap<_, _> = state
        .stacks
        .iter()
        .map(|(n, r)| (n.clone(), (r.allocation.clone(), true)))
        .collect();
    if let Some(planned) = policy.and_then(|p| allocate(p, acc, state, stacks).ok()) {
        for (n, a) in planned {
            out.entry(n).or_insert((a.allocation, false));
        }
    }
    out
}

/// The lowest `start` in `[first, last]` with `[start, start+len)` inside the bounds and
/// clear of every blocked interval.
fn first_fit(blocked: &[Taken], first: u64, last: u64, len: u64) -> Option<u32> {
    let mut sorted: Vec<&Taken> = blocked.iter().collect();
    sorted.sort_by_key(|t| t.start);
    let mut c = first;
    for t in sorted {
        if t.end <= c {
            continue;
        }
        if t.start >= c + len {
            break;
        }
        c = t.end;
    }
    (c + len - 1 <= last && c + len <= ID_CEILING).then_some(c as u32)
}

#[cfg(test)]
mod tests;
