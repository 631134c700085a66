//! `Selection`: which stacks a run acts on and how (`--stack`, `--no-systemd`, `--force`). The
//! planners, the observers and the status read it; the CLI builds it.

#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Stacks to act on; empty means every stack in the policy.
    pub stacks: Vec<String>,
    /// Linger and podman.socket steps are planned only with systemd.
    pub systemd: bool,
    /// Migrate even when containers hold the data.
    pub force: bool,
}
