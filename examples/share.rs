//! Drives a share's ACL walk without the CLI, for scripts/bench-migrate's share case: grants
//! one uid read access (`u:UID:rX` on every inode, `d:u:UID:rX` on every directory, what
//! `setfacl -R -m u:UID:rX,d:u:UID:rX` makes) with the share journal, or takes it out again;
//! or (`owners`) makes the read-only walk that closing a data path makes first, for the
//! uids of the stack's mapping that own something below the top.
//! Shares are live (other stacks read them while apply runs): they stay on the pinned path.
use isolate::ids::{IdMaps, Mapping, SubidRange};
use isolate::isolation::grants::{Access, OwnedIds};
use isolate::isolation::journal;
use isolate::isolation::share::ShareRule;
use isolate::isolation::share_acl::{Owners, Run, ShareAcl};
use isolate::walk::sys::{RealSys, WalkSys};
use isolate::walk::traverse;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, action, uid, jpath] = args.as_slice() else {
        anyhow::bail!("usage: {} PATH grant|revoke|owners UID JOURNAL", args[0]);
    };
    let (path, jpath) = (PathBuf::from(path), PathBuf::from(jpath));
    let uid: u32 = uid.parse()?;
    let stack = Mapping::new(uid, vec![SubidRange::new(200_000, 65_536)?]);
    let maps = IdMaps {
        uid: stack.clone(),
        gid: stack,
    };
    let rule = ShareRule {
        owned: OwnedIds::new([&maps]),
        grants: [(uid, Access::Read)].into_iter().collect(),
        top_other: None,
        top_group_obj: None,
        shared_gid: None,
    };
    walk_threads()?;
    let sys = RealSys::new();
    let fd = sys.open_root(&path)?;
    if action == "owners" {
        // The legacy mapping the bench trees are owned in (uid 1000 and 100000:65536).
        let mapping = Mapping::new(1000, vec![SubidRange::new(100_000, 65_536)?]);
        let walked = traverse::walk(&sys, &path, fd, &Owners { mapping }, None)?;
        println!(
            "{{\"inodes\": {}, \"owners\": {}}}",
            walked.counts.inodes,
            walked.tally.uids.len()
        );
        return Ok(());
    }
    let journalled = journal::read(&jpath)?;
    let walked = match action.as_str() {
        "grant" => {
            let writer = journal::Writer::open(&jpath)?;
            let run = Run::Apply {
                journal: &writer,
                journalled: &journalled,
            };
            traverse::walk(&sys, &path, fd, &ShareAcl { rule, run }, None)?
        }
        "revoke" => {
            let run = Run::Rollback {
                journalled: &journalled,
            };
            let rule = rule.undo();
            traverse::walk(&sys, &path, fd, &ShareAcl { rule, run }, None)?
        }
        other => anyhow::bail!("unknown action {other}"),
    };
    println!(
        "{{\"inodes\": {}, \"changed\": {}, \"failed\": {}}}",
        walked.counts.inodes, walked.counts.changed, walked.counts.failed.count
    );
    Ok(())
}

/// ISOLATE_THREADS=N as `isolate --threads N`.
fn walk_threads() -> anyhow::Result<()> {
    let threads = match std::env::var("ISOLATE_THREADS") {
        Ok(n) => Some(n.parse()?),
        Err(_) => None,
    };
    isolate::walk::threads::configure(threads)?;
    Ok(())
}
