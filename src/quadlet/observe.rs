//! What plan needs to know of a stack's quadlets, read from the host: each legacy file's text
//! (or its parked copy), the files in the stack user's quadlet directory, whether quadlet's
//! generator is there (podman 4.4 or newer), and which of the stack's units run in each
//! manager. Files are read without following a link; nothing is written.
use super::files;
use super::place;
use super::plan::{self, QuadletFacts, Sides, SourceFacts};
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::host::systemd::{Manager, SystemdPort};
use crate::layout::Root;
use crate::policy::{Policy, StackPolicy};
use crate::state::Allocation;
use std::path::{Path, PathBuf};

/// The generators podman 4.4 and newer install (Debian: links to /usr/libexec/podman/quadlet).
pub const GENERATORS: [&str; 2] = [
    "/usr/lib/systemd/system-generators/podman-system-generator",
    "/usr/lib/systemd/user-generators/podman-user-generator",
];

/// Who the stack moves from and to; None without a legacy owner in the accounts.
pub fn sides(policy: &Policy, acc: &Accounts, s: &StackPolicy, a: &Allocation) -> Option<Sides> {
    let legacy = policy.legacy_owner.as_ref()?;
    let (legacy_uid, legacy_home) = if legacy.value == "root" {
        (0, PathBuf::from("/root"))
    } else {
        let u = acc.user(&legacy.value)?;
        (u.uid, PathBuf::from(&u.home))
    };
    Some(Sides {
        stack: s.name.clone(),
        user: a.user.clone(),
        uid: a.uid,
        // As the hand-off's `home_of`: the account's home, else where isolate makes it.
        home: acc
            .user(&a.user)
            .map(|u| PathBuf::from(&u.home))
            .filter(|h| h.is_absolute() && h != Path::new("/"))
            .unwrap_or_else(|| crate::layout::home(&a.user)),
        legacy_user: legacy.value.clone(),
        legacy_uid,
        legacy_home,
    })
}

/// Whether quadlet's generator is installed under the root (a link is fine: only looked at).
pub fn has_generator(root: &Root) -> bool {
    GENERATORS
        .iter()
        .any(|g| root.at(Path::new(g)).symlink_metadata().is_ok())
}

/// The stack's quadlet facts. `systemd` None (--no-systemd): no unit counts as running.
pub fn observe_stack(
    root: &Root,
    sides: &Sides,
    quadlets: &[PathBuf],
    systemd: Option<&dyn SystemdPort>,
) -> Result<QuadletFacts> {
    let parked = place::parked_dir(&sides.stack);
    let mut facts = QuadletFacts {
        // The generator came with podman 4.4, as did /etc/containers/systemd/users/UID.
        podman: has_generator(root).then_some(place::QUADLET_SINCE),
        ..QuadletFacts::default()
    };
    for path in quadlets {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        facts.sources.push(SourceFacts {
            path: path.clone(),
            text: files::read(root, path)?.map(|f| f.text),
            parked: files::read(root, &parked.join(&name))?.map(|f| f.text),
        });
    }
    let dir = place::stack_dir(facts.podman, sides.uid, &sides.home);
    let parsed = plan::files_of(&facts);
    for f in &parsed {
        if let Some(found) = files::read(root, &dir.join(&f.name))? {
            facts.installed.insert(f.name.clone(), found.text);
        }
    }
    if let Some(systemd) = systemd {
        let legacy = Manager::of_uid(sides.legacy_uid);
        for unit in plan::units_to_start(&parsed) {
            if active(systemd, Manager::User(sides.uid), &unit) {
                facts.active.insert(unit.clone());
            }
            if active(systemd, legacy, &unit) {
                facts.legacy_active.insert(unit);
            }
        }
    }
    Ok(facts)
}

/// The images (`Image=` of containers, not `.image`/`.build` references) and the podman
/// volumes (`.volume` files) of a stack's quadlets, from the files in place or parked: the
/// hand-off copies and moves them like a compose project's.
pub fn images_and_volumes(root: &Root, s: &StackPolicy) -> Result<(Vec<String>, Vec<String>)> {
    let parked = place::parked_dir(&s.name);
    let mut found = Vec::new();
    for q in &s.handoff.quadlets {
        let name = q.value.file_name().map(PathBuf::from).unwrap_or_default();
        let text = match files::read(root, &q.value)? {
            Some(f) => Some(f.text),
            None => files::read(root, &parked.join(&name))?.map(|f| f.text),
        };
        let name = name.to_string_lossy().into_owned();
        if let Some(f) = text.and_then(|t| super::QuadletFile::new(&name, &t)) {
            found.push(f);
        }
    }
    let mut images: Vec<String> = Vec::new();
    for i in found.iter().flat_map(super::QuadletFile::images) {
        if !images.contains(&i) {
            images.push(i);
        }
    }
    Ok((images, plan::volumes(&found)))
}

/// A manager that cannot be asked (not running) runs nothing.
fn active(systemd: &dyn SystemdPort, m: Manager, unit: &str) -> bool {
    systemd
        .unit_state(m, unit)
        .is_ok_and(|s| s == "active" || s == "activating" || s == "reloading")
}
