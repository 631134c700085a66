// Builds a large benchmark tree fast for scripts/bench-migrate: ~21 entries per leaf
// directory, small files, a few hardlinks and symlinks, everything owned by one legacy id.
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::{chown, lchown, symlink};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        anyhow::bail!("usage: {} ROOT ENTRIES UID:GID", args[0]);
    }
    let root = PathBuf::from(&args[1]);
    let entries: usize = args[2].parse()?;
    let (uid, gid) = args[3]
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("owner is UID:GID"))?;
    let (uid, gid): (u32, u32) = (uid.parse()?, gid.parse()?);
    const FILES_PER_DIR: usize = 20;
    const LEAVES_PER_TOP: usize = 500;
    let leaves = entries / (FILES_PER_DIR + 1);
    let tops = leaves.div_ceil(LEAVES_PER_TOP);
    std::fs::create_dir_all(&root)?;
    chown(&root, Some(uid), Some(gid))?;
    (0..tops)
        .into_par_iter()
        .try_for_each(|t| -> anyhow::Result<()> {
            let top = root.join(format!("t{t:04}"));
            std::fs::create_dir(&top)?;
            chown(&top, Some(uid), Some(gid))?;
            let first = t * LEAVES_PER_TOP;
            for l in first..(first + LEAVES_PER_TOP).min(leaves) {
                let dir = top.join(format!("d{l:06}"));
                std::fs::create_dir(&dir)?;
                chown(&dir, Some(uid), Some(gid))?;
                for f in 0..FILES_PER_DIR {
                    let n = l * FILES_PER_DIR + f;
                    if n % 997 == 5 && f > 0 {
                        let link = dir.join(format!("s{f}"));
                        symlink("f0", &link)?;
                        lchown(&link, Some(uid), Some(gid))?;
                        continue;
                    }
                    if n % 1009 == 7 && f > 0 {
                        std::fs::hard_link(dir.join("f0"), dir.join(format!("h{f}")))?;
                        continue;
                    }
                    let path = dir.join(format!("f{f}"));
                    let mut file = std::fs::File::create(&path)?;
                    file.write_all(&vec![b'x'; n % 300])?;
                    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                }
            }
            Ok(())
        })?;
    println!(
        "{} directories, {} entries",
        tops + leaves + 1,
        tops + leaves * (FILES_PER_DIR + 1) + 1
    );
    Ok(())
}
