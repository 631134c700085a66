//! The NixOS evaluation harness the nixos_* tests share: `../shared/nixos-eval`'s nixpkgs
//! subset (or `ISOLATE_NIXOS_EVAL`), unpacked into a temporary directory.
use std::path::{Path, PathBuf};

/// The unpacked harness; None (said loudly) when Nix is not installed.
pub fn harness() -> Option<(tempfile::TempDir, PathBuf)> {
    if std::process::Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("\n*** SKIPPED: nix-instantiate is not installed; `scripts/install-deps` installs nix-bin libjson-perl libfile-slurp-perl ***\n");
        return None;
    }
    let tarball = std::env::var_os("ISOLATE_NIXOS_EVAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/nixos-eval/nixpkgs-eval.tar.xz")
        });
    assert!(
        tarball.exists(),
        "the NixOS harness {} is missing",
        tarball.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let top = dir.path().join("nixpkgs-eval");
    Some((dir, top))
}
