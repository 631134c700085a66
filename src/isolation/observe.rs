//! Reads what isolation's plan needs, never writing: the record, each closed stack's
//! migrated tops and owners, parents a stack cannot traverse, and what each share walk
//! would change.
use super::acl::{Acl, X};
use super::apply::{apply_rule, owners_below, read_top};
use super::facts::{known_maps, Facts};
use super::fs::{self, AclProbe};
use super::grants;
use super::record::Record;
use super::steps::{ClosureFacts, ShareFacts};
use crate::alloc::Allocated;
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::layout::Root;
use crate::model::Selection;
use crate::policy::{Policy, ShareMode};
use crate::state::{MigrationPhase, State};
use crate::walk::sys::WalkSys;
use rustix::fd::AsFd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The first directory above `path` (inside `root`, and `/` itself on the live host) that
/// `uid` (groups `gids`) cannot search, as words; None when every one can be traversed.
pub fn untraversable(
    sys: &dyn WalkSys,
    root: &Root,
    path: &Path,
    uid: u32,
    gids: &[u32],
) -> Option<String> {
    let mut dirs: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
    dirs.reverse();
    for dir in dirs {
        if dir == Path::new("/") && !root.is_host() {
            continue;
        }
        let on_host = root.at(&dir);
        let Ok(fd) = sys.open_root(&on_host) else {
            continue; // missing parents are the data path's own refusal
        };
        let (Ok(st), Ok(acl)) = (
            sys.stat(fd.as_fd(), c""),
            sys.get_xattr(fd.as_fd(), c"", crate::walk::xattr::ACL_ACCESS),
        ) else {
            continue;
        };
        let acl = Acl::access_of(st.perm(), acl.as_deref());
        if !acl.allows(st.uid, st.gid, uid, gids, X) {
            return Some(format!(
                "uid {uid} cannot enter {} (owner {}:{}, mode {:04o}{})",
                dir.display(),
                st.uid,
                st.gid,
                st.perm(),
                if acl.is_minimal() { "" } else { " with an ACL" }
            ));
        }
    }
    None
}

/// Everything isolation's plan reads. `walk` says whether data and shares are walked.
#[allow(clippy::too_many_arguments)]
pub fn observe(
    root: &Root,
    sys: &dyn WalkSys,
    probe: &dyn AclProbe,
    policy: &Policy,
    accounts: &Accounts,
    state: &State,
    allocs: &BTreeMap<String, Allocated>,
    opts: &Selection,
    walk: bool,
) -> Result<Facts> {
    let mut facts = Facts {
        record: Record::read(root)?,
        ..Facts::default()
    };
    let maps = known_maps(state, allocs);
    let shared_group = &policy.shared_group.value;
    let shared_gid = accounts.group(shared_group).map(|g| g.gid);
    for s in policy
        .stacks
        .values()
        .filter(|s| opts.stacks.is_empty() || opts.stacks.contains(&s.name))
    {
        let Some(m) = maps.get(&s.name) else { continue };
        for d in &s.data {
            let key = (s.name.clone(), d.value.clone());
            // A container's root process runs as the stack user with the stack's group only.
            if let Some(why) = untraversable(sys, root, &d.value, m.uid.root, &[m.gid.root]) {
                facts.untraversable.insert(key.clone(), why);
            }
            let migrated = matches!(
                state.migration(&s.name, &d.value).map(|x| x.phase),
                Some(MigrationPhase::Done)
            );
            if !walk || !s.closed || !migrated {
                continue;
            }
            let on_host = root.at(&d.value);
            let seen = (|| -> Result<ClosureFacts> {
                let fd = super::apply::open_dir(sys, &on_host, "data path")?;
                let top = read_top(sys, fd.as_fd(), &on_host)?;
                let owners = owners_below(sys, &on_host, fd, &m.uid)?;
                Ok(ClosureFacts { top, owners })
            })();
            facts.closures.insert(key, seen.map_err(|e| e.to_string()));
        }
    }
    if !walk {
        return Ok(facts);
    }
    let owned: Vec<_> = maps.values().cloned().collect();
    for share in policy.shares.values() {
        let on_host = root.at(&share.path.value);
        let seen = match super::apply::open_dir(sys, &on_host, "share") {
            Err(_) if crate::walk::data_path_missing(sys, &on_host).unwrap_or(false) => {
                ShareFacts::Missing
            }
            Err(e) => ShareFacts::Refused(e.to_string()),
            Ok(fd) if share.mode == ShareMode::Group => {
                let writers = share
                    .write
                    .iter()
                    .any(|g| maps.contains_key(&g.value.stack));
                let group_bits = if writers { 0o070 } else { 0o050 };
                match sys.stat(fd.as_fd(), c"") {
                    Err(e) => ShareFacts::Refused(format!("stat {}: {e}", on_host.display())),
                    Ok(st) => ShareFacts::GroupOnly {
                        ready: Some(st.gid) == shared_gid
                            && st.perm() & 0o007 == 0
                            && st.perm() & group_bits == group_bits,
                    },
                }
            }
            Ok(fd) => {
                let fs_type = sys.fs_type(fd.as_fd()).unwrap_or(0);
                match fs::missing_acls(fs_type, probe, fd.as_fd()) {
                    Err(e) => ShareFacts::Refused(format!(
                        "cannot tell whether {} keeps POSIX ACLs: {e}",
                        on_host.display()
                    )),
                    Ok(Some(fs)) => ShareFacts::NoAcls(fs),
                    Ok(None) => {
                        let grants = grants::resolve(share, &maps);
                        let rule = apply_rule(&owned, &grants, shared_gid);
                        match super::apply::survey_share(
                            sys,
                            probe,
                            &share.name,
                            &on_host,
                            shared_group,
                            rule,
                        ) {
                            Ok((inodes, changes)) => ShareFacts::Surveyed { inodes, changes },
                            Err(e) => ShareFacts::Refused(e.to_string()),
                        }
                    }
                }
            }
        };
        facts.shares.insert(share.name.clone(), seen);
    }
    Ok(facts)
}
