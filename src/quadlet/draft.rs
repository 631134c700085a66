//! `isolate init` from a quadlet directory: the files grouped into stacks (a pod with the
//! containers in it and the volumes, networks, images and builds they name; a container or
//! kube file on its own otherwise), each with the bind sources that become its data paths.
use super::unit::{QuadletFile, QuadletKind};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One drafted stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftStack {
    /// The pod's (or container's, kube's) stem.
    pub name: String,
    /// Its quadlet files, as paths in `dir`.
    pub files: Vec<PathBuf>,
    /// The absolute bind sources of its containers.
    pub data: Vec<PathBuf>,
}

/// Groups the quadlet files of `dir` into stacks, sorted by name; `%h` in a bind source is
/// `home`, the home of the directory's owner.
pub fn stacks(
    dir: &std::path::Path,
    files: &[QuadletFile],
    home: &std::path::Path,
) -> Vec<DraftStack> {
    let by_name: BTreeMap<&str, &QuadletFile> =
        files.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut out = Vec::new();
    // Pods first, so their containers join them; then what stands alone.
    let heads = files
        .iter()
        .filter(|f| f.kind == QuadletKind::Pod)
        .chain(files.iter().filter(|f| {
            matches!(f.kind, QuadletKind::Container | QuadletKind::Kube)
                && !f.references().iter().any(|r| r.key == "Pod")
        }));
    for head in heads {
        let mut members: Vec<&QuadletFile> = vec![head];
        if head.kind == QuadletKind::Pod {
            members.extend(files.iter().filter(|f| {
                f.kind == QuadletKind::Container
                    && f.references()
                        .iter()
                        .any(|r| r.key == "Pod" && r.file == head.name)
            }));
        }
        // What they name (volumes, networks, images, builds), followed to the end.
        let mut i = 0;
        while i < members.len() {
            for r in members[i].references() {
                if let Some(f) = by_name.get(r.file.as_str()) {
                    if !members.iter().any(|m| m.name == f.name) {
                        members.push(f);
                    }
                }
            }
            i += 1;
        }
        let mut data: Vec<PathBuf> = Vec::new();
        for m in &members {
            for s in m.bind_sources() {
                let p = PathBuf::from(s.replace("%h", &home.display().to_string()));
                if !data.contains(&p) {
                    data.push(p);
                }
            }
        }
        out.push(DraftStack {
            name: head.stem().to_string(),
            files: members.iter().map(|m| dir.join(&m.name)).collect(),
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
