//! Who an id belongs to: one book of every mapping the host knows (each stack's, the legacy
//! owner's) and its accounts, asked once per distinct id found (never once per inode).
use super::model::Owner;
use crate::ids::IdMaps;
use std::collections::BTreeMap;

/// uid or gid: the two are resolved separately (a file's group is not its owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        }
    }
}

/// Every mapping and account name the audit resolves ids through.
#[derive(Clone, Debug, Default)]
pub struct IdBook {
    /// Stack name -> its rootless mapping.
    pub stacks: BTreeMap<String, IdMaps>,
    /// The legacy owner's name and mapping.
    pub legacy: Option<(String, IdMaps)>,
    /// Host accounts outside the mappings: uid -> user name, gid -> group name.
    pub users: BTreeMap<u32, String>,
    pub groups: BTreeMap<u32, String>,
}

/// Whose data the id is found in: one stack's data path, or a share granting some stacks.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    Data { stack: &'a str },
    Share { granted: &'a [String] },
}

impl Scope<'_> {
    fn owns(&self, stack: &str) -> bool {
        match self {
            Scope::Data { stack: s } => *s == stack,
            Scope::Share { granted } => granted.iter().any(|g| g == stack),
        }
    }
}

impl IdBook {
    fn map(maps: &IdMaps, kind: IdKind) -> &crate::ids::Mapping {
        match kind {
            IdKind::Uid => &maps.uid,
            IdKind::Gid => &maps.gid,
        }
    }

    /// The stack whose mapping holds `id`, with the container id, if any.
    pub fn stack_of(&self, kind: IdKind, id: u32) -> Option<(&str, u32)> {
        self.stacks
            .iter()
            .find_map(|(name, maps)| Some((name.as_str(), Self::map(maps, kind).to_container(id)?)))
    }

    /// Resolves `id` found in `scope`: the scope's own stack(s) first, then the legacy
    /// mapping, then other stacks, then host accounts; unmapped when none knows it.
    pub fn resolve(&self, kind: IdKind, id: u32, scope: Scope<'_>) -> Owner {
        for (name, maps) in &self.stacks {
            if scope.owns(name) {
                if let Some(c) = Self::map(maps, kind).to_container(id) {
                    return Owner::Stack {
                        stack: name.clone(),
                        container_id: c,
                    };
                }
            }
        }
        if let Some((owner, maps)) = &self.legacy {
            if let Some(c) = Self::map(maps, kind).to_container(id) {
                return Owner::Legacy {
                    owner: owner.clone(),
                    container_id: c,
                };
            }
        }
        if let Some((stack, c)) = self.stack_of(kind, id) {
            return Owner::OtherStack {
                stack: stack.to_string(),
                container_id: c,
            };
        }
        let names = match kind {
            IdKind::Uid => &self.users,
            IdKind::Gid => &self.groups,
        };
        match names.get(&id) {
            Some(name) => Owner::Host { name: name.clone() },
            None => Owner::Unmapped,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::{Mapping, SubidRange};

    fn maps(root: u32, start: u32) -> IdMaps {
        let r = vec![SubidRange::new(start, 65_536).unwrap()];
        IdMaps {
            uid: Mapping::new(root, r.clone()),
            gid: Mapping::new(root + 50, r),
        }
    }

    pub(crate) fn book() -> IdBook {
        IdBook {
            stacks: [
                ("immich".to_string(), maps(800, 200_000)),
                ("paperless".to_string(), maps(801, 265_536)),
            ]
            .into_iter()
            .collect(),
            legacy: Some(("alice".into(), maps(1000, 100_000))),
            users: [(0, "root".to_string()), (33, "www-data".to_string())]
                .into_iter()
                .collect(),
            groups: [(0, "root".to_string()), (100, "users".to_string())]
                .into_iter()
                .collect(),
        }
    }

    const IMMICH: Scope = Scope::Data { stack: "immich" };

    #[test]
    fn every_owner_class_of_a_uid() {
        let b = book();
        let stack = |s: &str, c| Owner::Stack {
            stack: s.into(),
            container_id: c,
        };
        assert_eq!(b.resolve(IdKind::Uid, 800, IMMICH), stack("immich", 0));
        assert_eq!(
            b.resolve(IdKind::Uid, 200_998, IMMICH),
            stack("immich", 999)
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 100_998, IMMICH),
            Owner::Legacy {
                owner: "alice".into(),
                container_id: 999
            }
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 1000, IMMICH),
            Owner::Legacy {
                owner: "alice".into(),
                container_id: 0
            }
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 265_536 + 32, IMMICH),
            Owner::OtherStack {
                stack: "paperless".into(),
                container_id: 33
            }
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 0, IMMICH),
            Owner::Host {
                name: "root".into()
            }
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 33, IMMICH),
            Owner::Host {
                name: "www-data".into()
            }
        );
        assert_eq!(b.resolve(IdKind::Uid, 4_000_000, IMMICH), Owner::Unmapped);
    }

    #[test]
    fn gids_resolve_through_the_gid_mappings_and_groups() {
        let b = book();
        // 850 is immich's gid root, not its uid root.
        assert_eq!(
            b.resolve(IdKind::Gid, 850, IMMICH),
            Owner::Stack {
                stack: "immich".into(),
                container_id: 0
            }
        );
        assert_eq!(b.resolve(IdKind::Uid, 850, IMMICH), Owner::Unmapped);
        assert_eq!(
            b.resolve(IdKind::Gid, 851, IMMICH),
            Owner::OtherStack {
                stack: "paperless".into(),
                container_id: 0
            }
        );
        assert_eq!(
            b.resolve(IdKind::Gid, 1050, IMMICH),
            Owner::Legacy {
                owner: "alice".into(),
                container_id: 0
            }
        );
        assert_eq!(
            b.resolve(IdKind::Gid, 100, IMMICH),
            Owner::Host {
                name: "users".into()
            }
        );
        assert_eq!(b.resolve(IdKind::Gid, 33, IMMICH), Owner::Unmapped);
    }

    #[test]
    fn a_share_owns_the_ids_of_the_stacks_it_grants() {
        let b = book();
        let granted = vec!["paperless".to_string()];
        let share = Scope::Share { granted: &granted };
        assert_eq!(
            b.resolve(IdKind::Uid, 801, share),
            Owner::Stack {
                stack: "paperless".into(),
                container_id: 0
            }
        );
        assert_eq!(
            b.resolve(IdKind::Uid, 800, share),
            Owner::OtherStack {
                stack: "immich".into(),
                container_id: 0
            }
        );
    }
}
