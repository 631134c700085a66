//! Drives the ownership migration engine without the CLI, for scripts/bench-migrate and
//! by hand: fixed realistic mappings (legacy uid 1000 + 100000:65536, stack 850 + 200000:65536).
use isolate::ids::{IdMaps, Mapping, Shift, SubidRange};
use isolate::migration::{MigrateMode, MigrationSpec};
use isolate::walk::{self, sys::RealSys, Progress};
use std::path::PathBuf;

fn mapping(root: u32, start: u32) -> Mapping {
    Mapping::new(
        root,
        vec![SubidRange::new(start, 65_536).expect("valid range")],
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!(
            "usage: {} PATH shift|reown|auto|survey|rollback-shift|rollback-reown|rollback-auto [JOURNAL]",
            args[0]
        );
    }
    let path = PathBuf::from(&args[1]);
    let action = args[2].as_str();
    let journal = args
        .get(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("{}.journal", path.display())));
    let mode_name = action.strip_prefix("rollback-").unwrap_or(action);
    let mode = match mode_name {
        "shift" | "survey" => MigrateMode::Shift,
        "reown" => MigrateMode::Reown,
        "auto" => MigrateMode::Auto,
        other => anyhow::bail!("unknown mode {other}"),
    };
    let legacy = mapping(1000, 100_000);
    let stack = mapping(850, 200_000);
    let spec = MigrationSpec {
        mode,
        shift: Shift {
            from: IdMaps {
                uid: legacy.clone(),
                gid: legacy,
            },
            to: IdMaps {
                uid: stack.clone(),
                gid: stack,
            },
        },
        target_uid: 850,
        target_gid: 850,
        outside_links: Default::default(),
    };
    // ISOLATE_THREADS=N as `isolate --threads N` (the benchmark compares counts).
    let threads = match std::env::var("ISOLATE_THREADS") {
        Ok(n) => Some(n.parse()?),
        Err(_) => None,
    };
    let threads = walk::threads::configure(threads)?;
    eprintln!("threads: {threads}");
    let sys = RealSys::new();
    let progress = Progress {
        enabled: true,
        expected_inodes: None,
    };
    // As apply: the top locked and /proc asked for holders (ISOLATE_PINNED=1: as --force).
    let locking = if std::env::var_os("ISOLATE_PINNED").is_some() {
        walk::Locking::Pinned
    } else {
        walk::Locking::Locked(&isolate::apply::ProcHolders)
    };
    let out = if action == "survey" {
        serde_json::to_string(&walk::survey(&sys, &path, &spec)?)?
    } else if action.starts_with("rollback-") {
        serde_json::to_string(&walk::rollback_with(
            &sys, &path, &spec, &journal, &progress, locking,
        )?)?
    } else {
        serde_json::to_string(&walk::migrate_with(
            &sys, &path, &spec, &journal, &progress, locking,
        )?)?
    };
    println!("{out}");
    Ok(())
}
