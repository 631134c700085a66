//! The grant model of shares: which host uid a `stack` / `stack:CONTAINER_UID` entry names,
//! what it may do, and which ids isolate owns in ACLs (every id of every stack's mapping).
use crate::ids::{IdMaps, Mapping};
use crate::policy::{Grant, SharePolicy};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a grant lets its container user do in a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// List directories, open files for reading.
    Read,
    /// Also create, rename, delete and write.
    Write,
}

impl Access {
    pub fn word(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One grant resolved to the host uid the container user runs as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostGrant {
    pub stack: String,
    /// 0 for a bare `stack` entry (the stack's container root).
    pub container_uid: u32,
    pub host_uid: u32,
    pub access: Access,
}

impl HostGrant {
    /// The policy's spelling: `stack` or `stack:UID`.
    pub fn label(&self) -> String {
        if self.container_uid == 0 {
            self.stack.clone()
        } else {
            format!("{}:{}", self.stack, self.container_uid)
        }
    }
}

/// A share's grants on the host: stacks without an allocation yet are listed apart (apply
/// allocates them before it reaches the share). Write wins when one id is granted both.
pub fn resolve(share: &SharePolicy, maps: &BTreeMap<String, IdMaps>) -> Vec<HostGrant> {
    let mut out: Vec<HostGrant> = Vec::new();
    let lists = [(Access::Read, &share.read), (Access::Write, &share.write)];
    for (access, list) in lists {
        for g in list {
            let Grant {
                stack,
                container_uid,
            } = &g.value;
            let Some(m) = maps.get(stack) else { continue };
            let container_uid = container_uid.unwrap_or(0);
            // validate() already refused uids beyond the range size.
            let Some(host_uid) = m.uid.to_host(container_uid) else {
                continue;
            };
            match out.iter_mut().find(|h| h.host_uid == host_uid) {
                Some(h) => h.access = h.access.max(access),
                None => out.push(HostGrant {
                    stack: stack.clone(),
                    container_uid,
                    host_uid,
                    access,
                }),
            }
        }
    }
    out.sort_by(|a, b| (&a.stack, a.container_uid).cmp(&(&b.stack, b.container_uid)));
    out
}

/// host uid -> access, the form the per-inode rule reads.
pub fn by_uid(grants: &[HostGrant]) -> BTreeMap<u32, Access> {
    grants.iter().map(|g| (g.host_uid, g.access)).collect()
}

/// The ids whose named ACL entries isolate owns: every uid and gid of every stack's mapping
/// (its own id and its subordinate range). Entries for any other id are never touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedIds {
    pub uid: Vec<Mapping>,
    pub gid: Vec<Mapping>,
}

impl OwnedIds {
    pub fn new<'a>(maps: impl IntoIterator<Item = &'a IdMaps>) -> OwnedIds {
        let mut owned = OwnedIds::default();
        for m in maps {
            owned.uid.push(m.uid.clone());
            owned.gid.push(m.gid.clone());
        }
        owned
    }

    pub fn uid(&self, id: u32) -> bool {
        self.uid.iter().any(|m| m.contains_host(id))
    }

    pub fn gid(&self, id: u32) -> bool {
        self.gid.iter().any(|m| m.contains_host(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SubidRange;
    use crate::policy::Located;
    use std::path::PathBuf;

    pub fn maps(root: u32, start: u32) -> IdMaps {
        let m = Mapping::new(root, vec![SubidRange::new(start, 65_536).unwrap()]);
        IdMaps {
            uid: m.clone(),
            gid: m,
        }
    }

    fn grant(s: &str) -> Located<Grant> {
        let (stack, uid) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b.parse().unwrap())),
            None => (s, None),
        };
        Located {
            value: Grant {
                stack: stack.into(),
                container_uid: uid,
            },
            span: 0..0,
        }
    }

    #[test]
    fn grants_map_to_the_containers_host_uid() {
        let share = SharePolicy {
            name: "s".into(),
            span: 0..0,
            path: Located {
                value: PathBuf::from("/srv/s"),
                span: 0..0,
            },
            read: vec![grant("b:1000"), grant("a"), grant("c:0")],
            write: vec![grant("a")],
            mode: crate::policy::ShareMode::Acl,
        };
        let all: BTreeMap<String, IdMaps> = [
            ("a".to_string(), maps(800, 200_000)),
            ("b".to_string(), maps(801, 265_536)),
        ]
        .into();
        let got = resolve(&share, &all);
        // container uid N of a range starting at S is S + N - 1; root is the stack user;
        // write wins over read; a stack not allocated yet is left out.
        assert_eq!(
            got.iter()
                .map(|g| (g.label(), g.host_uid, g.access))
                .collect::<Vec<_>>(),
            vec![
                ("a".to_string(), 800, Access::Write),
                ("b:1000".to_string(), 266_535, Access::Read),
            ]
        );
        let owned = OwnedIds::new(all.values());
        assert!(owned.uid(800) && owned.uid(200_000) && owned.uid(331_071));
        assert!(!owned.uid(1000) && !owned.uid(199_999) && !owned.uid(331_072));
    }
}
