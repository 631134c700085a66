//! Where every test makes its temporary roots: a scratch directory of the tests' own, owned by
//! root and writable by root alone, with every directory above it alike, wherever the checkout
//! is. isolate rightly refuses a root below a directory others can write (a checkout below a
//! sticky, world-writable /tmp put `target/tmp` there), so a test's root must not depend on it.
#![allow(dead_code)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The tests' scratch directory (kept: test binaries run side by side and share it; each
/// test's own directory inside is removed when its `TempDir` drops).
pub const SCRATCH: &str = "/var/lib/isolate-test-scratch";

/// The scratch directory, made on first use (0755, so a test's child running as another uid
/// can reach what the test hands it). Panics, naming the directory, when it or a directory
/// above it is not root's alone. Run without root (nothing isolate changes then), the tests'
/// own `target/tmp` does.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            return PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        }
        let dir = PathBuf::from(SCRATCH);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap()
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot make {}: {e}", dir.display()),
        }
        for d in dir.ancestors() {
            let m = std::fs::symlink_metadata(d)
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            assert!(
                m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0,
                "{} must be a directory owned by root and writable by root alone (it is {:o}, uid {}): \
                 the tests' roots live below it",
                d.display(),
                m.mode(),
                m.uid()
            );
        }
        dir
    })
}

/// A new directory for one test's root below [`scratch`] (0700 until the test opens it up;
/// removed when dropped).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch())
        .unwrap_or_else(|e| panic!("a temporary directory in {}: {e}", scratch().display()))
}
