//! A tree several projects use, found before data is decided: a path one project mounts
//! read-write from several of its services, with another project's mount at or below it (a
//! media library written by sonarr and radarr and read by another project's jellyfin). It is
//! a share with grants for every project, not the first project's private data: migrating it
//! would shift and close the library, and the other project's grants would be left out for
//! overlapping it.
use super::draft::Use;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The libraries among `uses`, outermost only; each takes in the uses of every path below
/// it (marked with the path they mount). Returns, per library, why it is one.
pub(super) fn fold(uses: &mut BTreeMap<PathBuf, Vec<Use>>) -> BTreeMap<PathBuf, String> {
    let mut found: BTreeMap<PathBuf, String> = BTreeMap::new();
    let candidates: Vec<PathBuf> = uses.keys().cloned().collect();
    for path in candidates {
        if found.keys().any(|l| path.starts_with(l)) {
            continue;
        }
        let Some(us) = uses.get(&path) else { continue };
        let stacks: BTreeSet<&str> = us.iter().map(|u| u.stack.as_str()).collect();
        let [owner] = stacks.into_iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        let writers: BTreeSet<&str> = us
            .iter()
            .filter(|u| !u.read_only)
            .map(|u| u.service.as_str())
            .collect();
        if writers.len() < 2 {
            continue;
        }
        let others: BTreeSet<String> = uses
            .iter()
            .filter(|(q, _)| q.starts_with(&path))
            .flat_map(|(_, qs)| qs.iter())
            .filter(|u| u.stack != owner)
            .map(|u| u.stack.clone())
            .collect();
        if others.is_empty() {
            continue;
        }
        let why = format!(
            "written by {} of {owner}, and used below it by {}: a library several projects use, so a share with grants for each, not {owner}'s data (migrating would shift and close it)",
            writers.into_iter().collect::<Vec<_>>().join(", "),
            others.into_iter().collect::<Vec<_>>().join(", ")
        );
        found.insert(path, why);
    }
    for lib in found.keys() {
        let inner: Vec<PathBuf> = uses
            .keys()
            .filter(|q| *q != lib && q.starts_with(lib))
            .cloned()
            .collect();
        for q in inner {
            let moved = uses.remove(&q).unwrap_or_default();
            let into = uses.get_mut(lib).expect("a library is a use");
            into.extend(moved.into_iter().map(|mut u| {
                u.mounted = Some(q.clone());
                u
            }));
        }
    }
    found
}
