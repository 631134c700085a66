//! Builds a large benchmark tree fast for scripts/bench-migrate: ~21 entries per leaf
//! directory, small files, a few hardlinks and symlinks, everything owned by one legacy id.
//! With `--links` every file gets a second link in a mirror tree beside the first, the
//! layout of media servers that hardlink downloads into their library (torrents/ and
//! media/ holding the same inodes).
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::{chown, lchown, symlink};
use std::path::{Path, PathBuf};

const FILES_PER_DIR: usize = 20;
const LEAVES_PER_TOP: usize = 500;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let links = args.iter().any(|a| a == "--links");
    args.retain(|a| a != "--links");
    if args.len() != 4 {
        anyhow::bail!("usage: {} [--links] ROOT ENTRIES|INODES UID:GID", args[0]);
    }
    let root = PathBuf::from(&args[1]);
    let count: usize = args[2].parse()?;
    let (uid, gid) = args[3]
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("owner is UID:GID"))?;
    let owner: (u32, u32) = (uid.parse()?, gid.parse()?);
    std::fs::create_dir_all(&root)?;
    chown(&root, Some(owner.0), Some(owner.1))?;
    if links {
        // COUNT files, each linked from torrents/... and media/... (two names, one inode).
        let leaves = count.div_ceil(FILES_PER_DIR);
        for side in ["torrents", "media"] {
            mkdir(&root.join(side), owner)?;
        }
        build(&root.join("torrents"), leaves, owner, |dir, n, f| {
            small_file(&dir.join(format!("f{f}")), n % 300, owner)
        })?;
        build(&root.join("media"), leaves, owner, |dir, _, f| {
            let rel = dir.strip_prefix(root.join("media")).expect("under media");
            std::fs::hard_link(
                root.join("torrents").join(rel).join(format!("f{f}")),
                dir.join(format!("f{f}")),
            )?;
            Ok(())
        })?;
        println!("{} inodes with two links each", leaves * FILES_PER_DIR);
        return Ok(());
    }
    let leaves = count / (FILES_PER_DIR + 1);
    build(&root, leaves, owner, |dir, n, f| {
        if n % 997 == 5 && f > 0 {
            let link = dir.join(format!("s{f}"));
            symlink("f0", &link)?;
            lchown(&link, Some(owner.0), Some(owner.1))?;
            return Ok(());
        }
        if n % 1009 == 7 && f > 0 {
            std::fs::hard_link(dir.join("f0"), dir.join(format!("h{f}")))?;
            return Ok(());
        }
        small_file(&dir.join(format!("f{f}")), n % 300, owner)
    })?;
    let tops = leaves.div_ceil(LEAVES_PER_TOP);
    println!(
        "{} directories, {} entries",
        tops + leaves + 1,
        tops + leaves * (FILES_PER_DIR + 1) + 1
    );
    Ok(())
}

/// A file of `len` bytes owned by `owner`.
fn small_file(path: &Path, len: usize, owner: (u32, u32)) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(&vec![b'x'; len])?;
    std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))?;
    Ok(())
}

fn mkdir(path: &Path, owner: (u32, u32)) -> anyhow::Result<()> {
    std::fs::create_dir(path)?;
    chown(path, Some(owner.0), Some(owner.1))?;
    Ok(())
}

/// `leaves` leaf directories of FILES_PER_DIR entries under `root`/tNNNN/dNNNNNN, each entry
/// made by `entry(dir, entry number, index in its directory)`.
fn build(
    root: &Path,
    leaves: usize,
    owner: (u32, u32),
    entry: impl Fn(&Path, usize, usize) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<()> {
    (0..leaves.div_ceil(LEAVES_PER_TOP))
        .into_par_iter()
        .try_for_each(|t| -> anyhow::Result<()> {
            let top = root.join(format!("t{t:04}"));
            mkdir(&top, owner)?;
            let first = t * LEAVES_PER_TOP;
            for l in first..(first + LEAVES_PER_TOP).min(leaves) {
                let dir = top.join(format!("d{l:06}"));
                mkdir(&dir, owner)?;
                for f in 0..FILES_PER_DIR {
                    entry(&dir, l * FILES_PER_DIR + f, f)?;
                }
            }
            Ok(())
        })
}
