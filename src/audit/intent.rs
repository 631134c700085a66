//! What the policy intends: which stack may reach which path, and which ACL entries a share's
//! grants give. Small and pure so audit (prediction vs intent) and isolation (writing the
//! ACLs) read the policy the same way.
use super::model::Access;
use crate::ids::IdMaps;
use crate::policy::{Policy, SharePolicy};
use std::collections::BTreeMap;

/// A path of the policy: one stack's data path, or a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Data { owner: &'a str },
    Share { name: &'a str },
}

/// A share's grants: (stack, container uid or None for the stack user) -> access; write wins
/// over read when both name the same grantee.
pub fn share_grants(share: &SharePolicy) -> BTreeMap<(String, Option<u32>), Access> {
    let mut out = BTreeMap::new();
    for (grants, access) in [(&share.read, Access::Read), (&share.write, Access::Write)] {
        for g in grants {
            let slot = out
                .entry((g.value.stack.clone(), g.value.container_uid))
                .or_insert(access);
            *slot = (*slot).max(access);
        }
    }
    out
}

/// The most the policy lets `stack` do to `target`: its own data write, another stack's data
/// nothing, a share what its grants give (the best of the stack's grants).
pub fn intended(policy: &Policy, stack: &str, target: Target<'_>) -> Access {
    match target {
        Target::Data { owner } if owner == stack => Access::Write,
        Target::Data { .. } => Access::None,
        Target::Share { name } => policy.shares.get(name).map_or(Access::None, |share| {
            share_grants(share)
                .into_iter()
                .filter(|((s, _), _)| s == stack)
                .map(|(_, a)| a)
                .max()
                .unwrap_or(Access::None)
        }),
    }
}

/// The named user entries a share's top directory should carry: host uid -> access (a grant
/// without a container uid names the stack user, container uid 0). Grants of stacks without
/// a known mapping are left out.
pub fn share_acl_users(
    share: &SharePolicy,
    maps_of: impl Fn(&str) -> Option<IdMaps>,
) -> BTreeMap<u32, Access> {
    let mut out = BTreeMap::new();
    for ((stack, container), access) in share_grants(share) {
        let Some(host) = maps_of(&stack).and_then(|m| m.uid.to_host(container.unwrap_or(0))) else {
            continue;
        };
        let slot = out.entry(host).or_insert(access);
        *slot = (*slot).max(access);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Mapping, SubidRange};
    use std::path::Path;

    fn policy() -> Policy {
        Policy::parse(
            Path::new("p.toml"),
            r#"
[stacks.immich]
data = ["/srv/immich"]
[stacks.paperless]
data = ["/srv/paperless"]
[stacks.jellyfin]
data = ["/srv/jellyfin"]
[shares.media]
path = "/srv/media"
read = ["jellyfin", "immich:1000"]
write = ["immich"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn own_data_write_other_data_none_shares_by_grant() {
        let p = policy();
        let data = |owner| Target::Data { owner };
        assert_eq!(intended(&p, "immich", data("immich")), Access::Write);
        assert_eq!(intended(&p, "immich", data("paperless")), Access::None);
        let media = Target::Share { name: "media" };
        assert_eq!(intended(&p, "immich", media), Access::Write);
        assert_eq!(intended(&p, "jellyfin", media), Access::Read);
        assert_eq!(intended(&p, "paperless", media), Access::None);
    }

    #[test]
    fn share_entries_name_mapped_host_uids() {
        let p = policy();
        let maps = |s: &str| {
            let (root, start) = match s {
                "immich" => (800, 200_000),
                "jellyfin" => (802, 331_072),
                _ => return None,
            };
            let r = vec![SubidRange::new(start, 65_536).unwrap()];
            Some(IdMaps {
                uid: Mapping::new(root, r.clone()),
                gid: Mapping::new(root, r),
            })
        };
        let want: BTreeMap<u32, Access> = [
            (800, Access::Write),
            (200_999, Access::Read),
            (802, Access::Read),
        ]
        .into();
        assert_eq!(share_acl_users(&p.shares["media"], maps), want);
    }
}
