//! apply for the disk budget: each step is recorded in the state file before the kernel call
//! (with the limit found before isolate's first one), re-checks what it changes, and says
//! "already present" when the limit is as wanted; taking a limit back puts back what was there
//! and drops the record. `restore_stack` is rollback's part.
use super::port::QuotaPort;
use super::QuotaStep;
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::model::Outcome;
use crate::state::quota::BtrfsLimitRecord;
use crate::state::State;
use std::path::Path;

pub fn run(root: &Root, port: &dyn QuotaPort, step: &QuotaStep) -> Result<Outcome> {
    match step {
        QuotaStep::SetBtrfs {
            stack,
            path,
            subvolume,
            dev,
            bytes,
            was,
        } => {
            let mut state = State::read(root)?;
            let rec = state.quota.entry(stack.clone()).or_default();
            match rec
                .btrfs
                .iter_mut()
                .find(|r| r.path == *path && r.dev == *dev && r.subvolume == *subvolume)
            {
                Some(r) if r.bytes == *bytes => {}
                // The limit before isolate's first one stays what removal puts back.
                Some(r) => r.bytes = *bytes,
                None => rec.btrfs.push(BtrfsLimitRecord {
                    path: path.clone(),
                    dev: *dev,
                    subvolume: *subvolume,
                    bytes: *bytes,
                    was: *was,
                }),
            }
            state.write(root)?;
            let host = root.at(path);
            if current_limit(port, &host, *dev, *subvolume)? == Some(Some(*bytes)) {
                return Ok(Outcome::AlreadyPresent);
            }
            port.btrfs_limit(&host, *dev, *subvolume, Some(*bytes))
                .map_err(Error::failed)?;
            Ok(Outcome::Done)
        }
        QuotaStep::RestoreBtrfs {
            stack,
            path,
            subvolume,
            dev,
            to,
            ..
        } => {
            let host = root.at(path);
            let outcome = match current_limit(port, &host, *dev, *subvolume)? {
                None => Outcome::NotFound {
                    detail: format!(
                        "{} is no longer btrfs subvolume {subvolume}: nothing to take back",
                        path.display()
                    ),
                },
                Some(limit) if limit == *to => Outcome::AlreadyPresent,
                Some(_) => {
                    port.btrfs_limit(&host, *dev, *subvolume, *to)
                        .map_err(Error::failed)?;
                    Outcome::Done
                }
            };
            forget(root, stack, path, *dev, *subvolume)?;
            Ok(outcome)
        }
    }
}

/// The steps that take back every limit isolate recorded for `stack` (rollback).
pub fn restore_steps(state: &State, stack: &str) -> Vec<QuotaStep> {
    state
        .quota
        .get(stack)
        .map(|r| r.btrfs.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| QuotaStep::RestoreBtrfs {
            stack: stack.to_string(),
            path: r.path.clone(),
            subvolume: r.subvolume,
            dev: r.dev,
            bytes: r.bytes,
            to: r.was,
        })
        .collect()
}

/// Rollback's part: takes back every limit isolate set for `stack`, each step's outcome.
pub fn restore_stack(
    root: &Root,
    port: &dyn QuotaPort,
    stack: &str,
) -> Result<Vec<(QuotaStep, Outcome)>> {
    let state = State::read(root)?;
    restore_steps(&state, stack)
        .into_iter()
        .map(|step| run(root, port, &step).map(|o| (step, o)))
        .collect()
}

/// The limit on the subvolume at `host` when it is still the one recorded (Some(None): no
/// limit), None when it is not there any more.
fn current_limit(
    port: &dyn QuotaPort,
    host: &Path,
    dev: u64,
    subvolume: u64,
) -> Result<Option<Option<u64>>> {
    let facts = port.look(host).map_err(Error::failed)?;
    Ok(facts.and_then(|f| {
        let b = f.btrfs?;
        (f.dev == dev && b.subvolume == subvolume && b.is_subvolume_top).then_some(b.limit)
    }))
}

fn forget(root: &Root, stack: &str, path: &Path, dev: u64, subvolume: u64) -> Result<()> {
    let mut state = State::read(root)?;
    if let Some(rec) = state.quota.get_mut(stack) {
        rec.btrfs
            .retain(|r| !(r.path == path && r.dev == dev && r.subvolume == subvolume));
        if rec.is_empty() {
            state.quota.remove(stack);
        }
    }
    state.write(root)
}
