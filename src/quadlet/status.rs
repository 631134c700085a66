//! `status` of a moved quadlet stack: where its units run from, and what would start a second
//! copy (a legacy file back in her quadlet directory, a legacy unit still loaded or active),
//! named with the file and the manager.
use super::files;
use super::record::Record;
use crate::host::systemd::{Manager, SystemdPort};
use crate::layout::Root;

/// The stack's quadlet lines (none before apply moved anything). `systemd` None: files only.
pub fn lines(root: &Root, stack: &str, systemd: Option<&dyn SystemdPort>) -> Vec<String> {
    let record = match Record::read(root, stack) {
        Ok(Some(r)) => r,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![format!("quadlets: cannot read isolate's record: {e}")],
    };
    let mut out = Vec::new();
    if let (Some(uid), Some(dir)) = (record.stack_uid, &record.dir) {
        let state = |u: &str| {
            systemd
                .and_then(|s| s.unit_state(Manager::User(uid), u).ok())
                .unwrap_or_else(|| "unknown".into())
        };
        let units: Vec<String> = record
            .units
            .iter()
            .map(|u| format!("{u} {}", state(u)))
            .collect();
        out.push(format!(
            "quadlets: {} in {}; {}",
            record.installed.join(", "),
            dir.display(),
            units.join(", ")
        ));
    }
    let legacy = Manager::of_uid(record.legacy_uid);
    for s in &record.sources {
        if matches!(files::read(root, &s.path), Ok(Some(_))) {
            out.push(format!(
                "left behind: legacy quadlet file {} is in place again: {legacy} generates its unit, so a reboot starts a second copy; remove it (isolate keeps its copy) or roll back",
                s.path.display()
            ));
        }
    }
    if let Some(systemd) = systemd {
        for u in &record.legacy_units {
            if let Ok(st) = systemd.unit_state(legacy, u) {
                if st == "active" || st == "activating" {
                    out.push(format!(
                        "left behind: legacy unit {u} is {st} in {legacy} while the stack runs as its own user"
                    ));
                }
            }
        }
    }
    out
}
