// Backends: the only code that changes the host. Each takes the root it works on.
pub mod etc;
pub mod podman;
pub mod podman_store;
pub mod shadow;
pub mod systemd;
