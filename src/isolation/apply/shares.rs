//! A share's ACLs as the policy grants them (or, in group-only mode, the check of its top),
//! and taking isolate's entries out of a share again on rollback.
use super::*;
use crate::model::RefusalKind;

/// Opens a share's top and refuses a filesystem without POSIX ACLs.
pub(super) fn open_share(
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    path: &Path,
    shared_group: &str,
) -> Result<OwnedFd> {
    let fd = open_dir(sys, path, "share")?;
    let fs_type = sys
        .fs_type(fd.as_fd())
        .map_err(|e| io(format!("statfs {}", path.display()), e))?;
    if let Some(fs) = fs::missing_acls(fs_type, probe, fd.as_fd())
        .map_err(|e| io(format!("read the ACL of {}", path.display()), e))?
    {
        return Err(Error::refused(
            RefusalKind::Isolation,
            fs::refusal(name, path, &fs, shared_group),
        ));
    }
    Ok(fd)
}

/// The rule apply uses for a share step.
pub fn apply_rule(
    owned: &[IdMaps],
    grants: &[grants::HostGrant],
    shared_gid: Option<u32>,
) -> ShareRule {
    ShareRule {
        owned: OwnedIds::new(owned),
        grants: grants::by_uid(grants),
        top_other: Some(0),
        top_group_obj: Some(0),
        shared_gid,
    }
}

/// Counts what a share walk would change (plan), changing nothing.
pub fn survey_share(
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    path: &Path,
    shared_group: &str,
    rule: ShareRule,
) -> Result<(u64, u64)> {
    let fd = open_share(sys, probe, name, path, shared_group)?;
    let action = ShareAcl {
        rule,
        run: Run::Survey,
    };
    let walked = traverse::walk(sys, path, fd, &action, None)?;
    Ok((walked.counts.inodes, walked.tally.pending.count))
}

/// Makes a share what the step grants. The share's new top is opened (and refused) before
/// anything changes; a tree recorded for this share at another path (the policy moved it)
/// is rolled back first; the tree is recorded (name, path, top inode) before the walk, and
/// every change a rollback could not undo by taking isolate's entries out is journalled
/// before it is made.
pub fn share(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    step: &ShareStep,
) -> Result<Done> {
    let on_host = root.at(&step.path);
    let opened = match step.mode {
        ShareMode::Group => None,
        ShareMode::Acl => {
            let fd = open_share(sys, probe, &step.share, &on_host, &step.shared_group)?;
            let top = read_top(sys, fd.as_fd(), &on_host)?;
            Some((fd, top))
        }
    };
    let mut moved: Option<(PathBuf, Done)> = None;
    let elsewhere: Vec<ShareTree> = Record::read(root)?
        .shares_named(&step.share)
        .filter(|t| t.path != step.path || step.mode == ShareMode::Group)
        .cloned()
        .collect();
    for old in elsewhere {
        let undone = rollback_tree(
            root,
            sys,
            probe,
            &old,
            &step.owned,
            &step.shared_group,
            step.shared_gid,
        )?;
        moved = Some((old.path.clone(), undone));
    }
    let Some((fd, top)) = opened else {
        let mut done = group_only(root, sys, step)?;
        done.moved(moved);
        return Ok(done);
    };

    let mut record = Record::read(root)?;
    let tree = match record.share_tree(&step.share, &step.path) {
        Some(t) if t.ino == top.ino => t.clone(),
        found => {
            if let Some(old) = found {
                // Another directory stands at the path now: what was journalled of the one
                // isolate changed says nothing about this one.
                tracing::warn!(
                    "share `{}`: {} is another directory than the one isolate changed (inode {} now, {} then); its journal starts again",
                    step.share,
                    on_host.display(),
                    top.ino,
                    old.ino
                );
                let stale = journal_path(root, old);
                std::fs::remove_file(&stale)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| Error::io(format!("removing {}", stale.display()), e))?;
                record.forget_share_tree(&step.share, &step.path);
            }
            let fresh = ShareTree::new(&step.share, &step.path, top.ino);
            record.share_trees.push(fresh.clone());
            record.write(root)?;
            fresh
        }
    };
    let jpath = journal_path(root, &tree);
    let journalled =
        journal::read(&jpath).map_err(|e| Error::io(format!("reading {}", jpath.display()), e))?;
    let writer = journal::Writer::open(&jpath)
        .map_err(|e| Error::io(format!("opening {}", jpath.display()), e))?;
    let action = ShareAcl {
        rule: apply_rule(&step.owned, &step.grants, step.shared_gid),
        run: Run::Apply {
            journal: &writer,
            journalled: &journalled,
        },
    };
    let mut done = Done::from_share_walk(traverse::walk(sys, &on_host, fd, &action, None)?);
    done.moved(moved);
    if done.failed > 0 {
        return Err(IsolationError::ShareNotChanged {
            share: step.share.clone(),
            failed: done.failed,
            failures: done.failures,
        }
        .into());
    }
    Ok(done)
}

/// Group-only mode, for filesystems where a local root cannot set ACLs or owners (NFS with
/// root squashing, CIFS): isolate checks the share's top and, when it is not so yet, says
/// what to run on the file server. It changes nothing itself.
pub(super) fn group_only(root: &Root, sys: &dyn WalkSys, step: &ShareStep) -> Result<Done> {
    let on_host = root.at(&step.path);
    let fd = open_dir(sys, &on_host, "share")?;
    let st = sys
        .stat(fd.as_fd(), c"")
        .map_err(|e| io(format!("stat {}", on_host.display()), e))?;
    let (bits, _) = step.group_access();
    let ready =
        Some(st.gid) == step.shared_gid && st.perm() & 0o007 == 0 && st.perm() & bits == bits;
    if ready {
        return Ok(Done {
            inodes: 1,
            ..Done::default()
        });
    }
    Err(IsolationError::GroupOnlyNotReady {
        share: step.share.clone(),
        path: step.path.clone(),
        group: step.shared_group.clone(),
        w: if bits == 0o070 { "w" } else { "" },
    }
    .into())
}

/// Rolls one recorded share tree back: every entry of an id of a stack's mapping out of
/// it (access and default ACLs, masks recomputed), every journalled inode still as isolate
/// left it back exactly as it was (mask, other users' entries, the top's bits); then forgets
/// the tree and its journal. A tree that no longer exists is forgotten with a warning; any
/// inode that could not be changed (or changed under the walk) keeps the tree recorded.
pub(super) fn rollback_tree(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    tree: &ShareTree,
    owned: &[IdMaps],
    shared_group: &str,
    shared_gid: Option<u32>,
) -> Result<Done> {
    let on_host = root.at(&tree.path);
    let jpath = journal_path(root, tree);
    let forget = || -> Result<()> {
        let mut record = Record::read(root)?;
        record.forget_share_tree(&tree.name, &tree.path);
        record.write(root)?;
        match std::fs::remove_file(&jpath) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", jpath.display()), e))
            }
            _ => Ok(()),
        }
    };
    // Nothing stands at the path at all (not even an empty mount point): the tree is gone,
    // and with it every entry isolate made there.
    if let Err(e) = std::fs::symlink_metadata(&on_host) {
        if e.kind() == std::io::ErrorKind::NotFound {
            tracing::warn!(
                "share `{}`: {} no longer exists; nothing of it to roll back",
                tree.name,
                on_host.display()
            );
            forget()?;
            return Ok(Done {
                gone: true,
                ..Done::default()
            });
        }
    }
    let fd = open_share(sys, probe, &tree.name, &on_host, shared_group)?;
    let top = read_top(sys, fd.as_fd(), &on_host)?;
    if top.ino != tree.ino {
        return Err(IsolationError::ShareTopReplaced {
            share: tree.name.clone(),
            path: tree.path.clone(),
            now: top.ino,
            then: tree.ino,
        }
        .into());
    }
    let journalled =
        journal::read(&jpath).map_err(|e| Error::io(format!("reading {}", jpath.display()), e))?;
    let action = ShareAcl {
        rule: ShareRule {
            owned: OwnedIds::new(owned),
            grants: Default::default(),
            top_other: None,
            top_group_obj: None,
            shared_gid,
        },
        run: Run::Rollback {
            journalled: &journalled,
        },
    };
    let done = Done::from_share_walk(traverse::walk(sys, &on_host, fd, &action, None)?);
    if done.failed > 0 || done.raced > 0 {
        return Err(IsolationError::ShareRollbackNotDone {
            share: tree.name.clone(),
            path: tree.path.clone(),
            failed: done.failed,
            raced: done.raced,
            failures: done.failures,
        }
        .into());
    }
    forget()?;
    Ok(done)
}

/// `isolate rollback --share NAME`: rolls back every tree recorded for the share (one; two
/// when a move of its path did not finish), then forgets it.
pub fn rollback_share(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    name: &str,
    owned: &[IdMaps],
    shared_group: &str,
    shared_gid: Option<u32>,
) -> Result<Done> {
    let trees: Vec<ShareTree> = Record::read(root)?.shares_named(name).cloned().collect();
    if trees.is_empty() {
        return Err(Error::Usage(format!(
            "share `{name}` has nothing recorded in {}",
            crate::isolation::record::record_path(root).display()
        )));
    }
    let mut total = Done::default();
    for tree in &trees {
        let d = rollback_tree(root, sys, probe, tree, owned, shared_group, shared_gid)?;
        total.inodes += d.inodes;
        total.changed += d.changed;
        total.journalled += d.journalled;
        total.changed_since_count += d.changed_since_count;
        total.changed_since.extend(d.changed_since);
        total.mounts_skipped.extend(d.mounts_skipped);
        total.outside_links.extend(d.outside_links);
    }
    Ok(total)
}
/// What `rollback --share` did.
#[derive(Clone, Debug, Serialize)]
pub struct ShareRollback {
    pub share: String,
    #[serde(flatten)]
    pub done: Done,
}
