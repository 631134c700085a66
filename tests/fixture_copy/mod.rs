//! Putting a fixture tree below a test's root as the host would hold it: the files copied, and
//! the files (not the directories) given to the legacy user. Shared by the `init` tests.
#![allow(dead_code)]
use std::fs;
use std::path::Path;

/// Copies the tree `from` to `to` (directories and regular files).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The legacy user's compose and env files are hers; directories stay root's (data paths
/// need root-owned parents).
pub fn chown_files(p: &Path, uid: u32) {
    if p.is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_files(&e.unwrap().path(), uid);
        }
    } else {
        std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    }
}
