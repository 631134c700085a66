// Exercises the real systemd and podman backends on a booted host (the integration container):
// linger -> user manager -> podman.socket -> _ping, for one uid. Used by integration/00-backends.sh.
use anyhow::{Context, Result};
use isolate::host::systemd::DbusSystemd;
use isolate::host::{mounts, podman};
use isolate::layout::{Root, PODMAN_SOCKET_UNIT};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // --holders PATH: print the processes whose mount namespace mounts PATH, as JSON.
    if args.first().is_some_and(|a| a == "--holders") {
        let path = args.get(1).context("usage: systemd-probe --holders PATH")?;
        let holders = mounts::mount_holders(Path::new(path))?;
        println!("{}", serde_json::to_string(&holders)?);
        return Ok(());
    }
    // --wait-only: only wait (2 s) for the user manager, to see the timeout error.
    // --containers: print the running containers and their mounts as JSON.
    let mode = match args.first().map(String::as_str) {
        Some(m @ ("--wait-only" | "--containers")) => {
            let m = m.to_string();
            args.remove(0);
            m
        }
        _ => String::new(),
    };
    let uid: u32 = args
        .first()
        .context("usage: systemd-probe [--wait-only|--containers] UID | --holders PATH")?
        .parse()
        .context("UID must be a number")?;
    if mode == "--wait-only" {
        return Ok(DbusSystemd::new(&Root::host()).wait_user_manager(uid, Duration::from_secs(2))?);
    }
    if mode == "--containers" {
        let socket = Root::host().podman_socket(uid);
        let found = podman::running_container_mounts(&socket, Duration::from_secs(30))?;
        println!("{}", serde_json::to_string(&found)?);
        return Ok(());
    }
    let user = nix::unistd::User::from_uid(uid.into())?
        .with_context(|| format!("no user with uid {uid}"))?
        .name;
    let root = Root::host();
    let systemd = DbusSystemd::new(&root);
    let timeout = Duration::from_secs(30);
    let started = Instant::now();
    let step = |what: &str| println!("{:>6} ms  {what}", started.elapsed().as_millis());

    systemd.probe()?;
    step("probe: system bus and logind answer");
    let before = systemd.user_facts(uid, &user, PODMAN_SOCKET_UNIT)?;
    println!("before: {}", serde_json::to_string(&before)?);
    systemd.enable_linger(uid)?;
    step("enable_linger");
    systemd.wait_user_manager(uid, timeout)?;
    step("wait_user_manager");
    systemd.enable_and_start_user_unit(uid, PODMAN_SOCKET_UNIT, timeout)?;
    step("enable_and_start_user_unit podman.socket");
    let socket = root.podman_socket(uid);
    podman::ping(&socket, timeout)?;
    step("ping");
    let running = podman::running_container_mounts(&socket, timeout)?;
    step(&format!("running containers: {}", running.len()));
    let after = systemd.user_facts(uid, &user, PODMAN_SOCKET_UNIT)?;
    println!("after: {}", serde_json::to_string(&after)?);
    Ok(())
}
