//! What `status` shows of isolation per stack: its closed data paths (with the stack's host
//! uids let into each top) and the shares the policy grants it.
use super::acl::Acl;
use super::grants::{self, Access};
use super::record::Record;
use crate::ids::IdMaps;
use crate::layout::Root;
use crate::policy::Policy;
use crate::walk::sys::WalkSys;
use rustix::fd::AsFd;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClosedStatus {
    pub path: PathBuf,
    /// isolate closed it (and `rollback` reopens it); false when it was made closed.
    pub recorded: bool,
    /// The stack's host uids with a named entry on the top (None when it cannot be read).
    pub entered_by: Option<Vec<u32>>,
}

impl ClosedStatus {
    pub fn line(&self) -> String {
        let who = match &self.entered_by {
            Some(ids) if ids.is_empty() => "only the owner and group".to_string(),
            Some(ids) => format!(
                "owner, group and host uids {}",
                ids.iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "top not readable".to_string(),
        };
        format!("closed {} (enters: {who})", self.path.display())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantStatus {
    pub share: String,
    pub path: PathBuf,
    pub access: Access,
    pub container_uid: u32,
    pub host_uid: u32,
}

impl GrantStatus {
    pub fn line(&self) -> String {
        format!(
            "share {} {} ({}) as container uid {} (host uid {})",
            self.share,
            self.access.word(),
            self.path.display(),
            self.container_uid,
            self.host_uid
        )
    }
}

/// The stack's closed data paths: every migrated one whose top gives "other" nothing now
/// (whether isolate closed it, as recorded, or it was made closed), with who of the stack
/// may enter it. A top that cannot be read is listed with `entered_by: None`.
pub fn closed(
    root: &Root,
    sys: &dyn WalkSys,
    record: &Record,
    stack: &str,
    maps: &IdMaps,
    migrated: &[PathBuf],
) -> Vec<ClosedStatus> {
    migrated
        .iter()
        .filter_map(|path| {
            let on_host = root.at(path);
            let top = sys.open_root(&on_host).ok().and_then(|fd| {
                let st = sys.stat(fd.as_fd(), c"").ok()?;
                let value = sys
                    .get_xattr(fd.as_fd(), c"", crate::walk::xattr::ACL_ACCESS)
                    .ok()?;
                Some(Acl::access_of(st.perm(), value.as_deref()))
            });
            let recorded = record.closed_top(stack, path).is_some();
            match top {
                Some(acl) if acl.other == 0 => Some(ClosedStatus {
                    path: path.clone(),
                    recorded,
                    entered_by: Some(
                        acl.users
                            .keys()
                            .copied()
                            .filter(|u| maps.uid.contains_host(*u))
                            .collect(),
                    ),
                }),
                Some(_) => None,
                None => recorded.then(|| ClosedStatus {
                    path: path.clone(),
                    recorded,
                    entered_by: None,
                }),
            }
        })
        .collect()
}

/// Every grant of the policy's shares to `stack`.
pub fn grants(policy: &Policy, stack: &str, maps: &IdMaps) -> Vec<GrantStatus> {
    let only: BTreeMap<String, IdMaps> = [(stack.to_string(), maps.clone())].into();
    policy
        .shares
        .values()
        .flat_map(|sh| {
            grants::resolve(sh, &only)
                .into_iter()
                .map(move |g| GrantStatus {
                    share: sh.name.clone(),
                    path: sh.path.value.clone(),
                    access: g.access,
                    container_uid: g.container_uid,
                    host_uid: g.host_uid,
                })
        })
        .collect()
}
