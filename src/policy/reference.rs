//! The policy reference: every key, its default and its meaning, once. The README's policy
//! table, isolate-policy(5) and the NixOS module's option descriptions are all rendered from
//! here, and `tests/docs.rs` fails when the README's copy is stale.

pub use crate::model::PolicyKey;

/// Every row: the top-level keys, `[pools]` and `[stacks.NAME]` (`CORE_ROWS`), each
/// capability's table (`policy::STACK_TABLES`, rows from its own schema file), then `[shares.NAME]`.
pub const POLICY_KEYS: &[PolicyKey] = &super::tables::with_table_rows::<
    { super::tables::count_rows(CORE_ROWS, super::STACK_TABLES, SHARE_ROWS) },
>(CORE_ROWS, super::STACK_TABLES, SHARE_ROWS);

/// The rows of the keys parse.rs reads itself, before the capabilities' tables.
const CORE_ROWS: &[PolicyKey] = &[
    PolicyKey {
        key: "`user_prefix`",
        default: "`\"stk-\"`",
        meaning: "stack user = prefix + stack name; the result must be a valid user name (`[a-z_][a-z0-9_-]*`, at most 32 bytes)",
    },
    PolicyKey {
        key: "`shared_group`",
        default: "`\"stk-shared\"`",
        meaning: "group every stack user joins (for shared media)",
    },
    PolicyKey {
        key: "`legacy_owner`",
        default: "none",
        meaning: "the user whose rootless containers own the data today; its uid, gid and subuid/subgid lines are read from the host. `\"root\"`: rootful containers, whose host id N is container id N (README, \"Rootful containers\"). Needed for `shift`; without it `auto` reowns everything",
    },
    PolicyKey {
        key: "`adopt`",
        default: "`[]`",
        meaning: "existing accounts isolate did not create that it may take over: a stack user (prefix + stack name) or the shared group, each named here. Without it, an existing one is refused; root, a uid or gid below 1000 isolate did not record, a privileged group (`sudo`, `wheel`, `adm`, `disk`, `docker`, `systemd-journal`, ...), a member of one, and a person's primary group are refused even when named",
    },
    PolicyKey {
        key: "`[pools] uid_first`, `uid_last`",
        default: "70000, 79999",
        meaning: "where stack uids come from; each stack's own group gets the same number. The default is clear of every allocator of the host (README, \"Logs\"): above 999, so journald gives each stack user its own journal and `podman logs` works; above shadow's UID_MAX (60000), NixOS's 1000-29999, Nix's build users, Debian's 60000-64999 and systemd's 60001-65535; below the subordinate ranges from 100000. Until this version the default was 800-899: recorded allocations never move, so stacks made then keep their uids",
    },
    PolicyKey {
        key: "`[pools] subid_first`, `subid_last`",
        default: "1879048192, 2147352575",
        meaning: "where subordinate ranges come from (must end below 2^31); the default, 0x70000000..0x7FFDFFFF, is 65536-aligned and clear of shadow's `useradd` (SUB_UID_MIN..SUB_UID_MAX, 100000..600100000 by default), NixOS's automatic ranges (100000 + k*65536, k counting up from 0: they reach it only after 28670 normal users), systemd-nspawn's container ranges (..0x6FFFFFFF) and systemd's foreign range (0x7FFE0000..). Until this version the default was 200000: recorded allocations never move, so hosts set up then keep theirs",
    },
    PolicyKey {
        key: "`[pools] subid_size`",
        default: "65536",
        meaning: "ids per stack range (the same range is used for subuid and subgid)",
    },
    PolicyKey {
        key: "`[stacks.NAME] data`",
        default: "required",
        meaning: "absolute directories the stack's containers mount; none may lie inside another's. Refused: system trees and everything in them (`/etc`, `/usr`, `/boot`, `/root`, `/run`, `/var/log`, `/var/spool`, `/var/lib/containers`, `/var/lib/isolate`, ...), the tops `/`, `/srv`, `/mnt`, `/opt`, `/home`, ... themselves, and people's homes: the legacy owner's home itself (her stacks' directories below it are fine) and every other user's home and what is in it",
    },
    PolicyKey {
        key: "`[stacks.NAME] migrate`",
        default: "`\"auto\"`",
        meaning: "`shift`: ids of the legacy mapping move to the same container id in the stack's mapping; `reown`: everything becomes the stack user (container root), original owners journalled; `auto`: shift what is in the legacy mapping, reown the rest",
    },
    PolicyKey {
        key: "`[stacks.NAME] uid`",
        default: "allocated",
        meaning: "pin the stack's uid",
    },
    PolicyKey {
        key: "`[stacks.NAME] subid_start`",
        default: "allocated",
        meaning: "pin the start of the stack's range",
    },
    PolicyKey {
        key: "`[stacks.NAME] outside_hardlinks`",
        default: "`\"refuse\"`",
        meaning: "a file in the data whose link count is larger than the links found inside it has links elsewhere and is never changed; `refuse`: the migration fails and names them; `skip`: they are left as they are, reported, and the migration can finish",
    },
    PolicyKey {
        key: "`[stacks.NAME] closed`",
        default: "`true`",
        meaning: "after migration, no uid outside the stack enters its data (see Isolation); `false` keeps it open",
    },
    PolicyKey {
        key: "`[stacks.NAME] compose`",
        default: "`[]`",
        meaning: "the stack's compose files (absolute), in `-f` order: their images and named volumes move with the stack (see Moving a compose stack whole)",
    },
    PolicyKey {
        key: "`[stacks.NAME] project`",
        default: "the stack's name",
        meaning: "the compose project name (lower-case letters, digits, `_`, `-`)",
    },
    PolicyKey {
        key: "`[stacks.NAME] env_files`",
        default: "`[]`",
        meaning: "the stack's secrets: made the stack user's alone (mode 0400, original owner journalled); compose files are interpolated from them. One file belongs to one stack: an env file another stack lists, or inside another stack's data or a share, is refused, as are env files in system trees or people's homes",
    },
    PolicyKey {
        key: "`[stacks.NAME] images`",
        default: "`[]`",
        meaning: "images copied from the legacy user's podman store besides those the compose files and the legacy project's containers name",
    },
    PolicyKey {
        key: "`[stacks.NAME] service`",
        default: "`false`",
        meaning: "install, enable and start a user unit in the stack user's manager that runs the compose project",
    },
    PolicyKey {
        key: "`[stacks.NAME] compose_command`",
        default: "`[\"podman-compose\"]`",
        meaning: "the command the service runs (`[\"docker\", \"compose\"]` works too: `DOCKER_HOST` points at the stack's socket)",
    },
    PolicyKey {
        key: "`[stacks.NAME] reaches`",
        default: "`[]`",
        meaning: "entries `stack:service:port`: this stack's containers reach `service` of that stack on container port `port` (what a shared podman network did before the split). Both stacks need `compose`; apply adds an override (`/var/lib/isolate/stacks/NAME/reaches.compose.yaml`, one more `-f` of the unit) that publishes the port on 127.0.0.1 and gives the reaching services the service's name, plus a containers.conf drop-in in the reaching stack user's home for host-loopback access; `init` drafts it, `audit` tries each path",
    },
    PolicyKey {
        key: "`[stacks.NAME] quadlets`",
        default: "`[]`",
        meaning: "the stack's quadlet units (absolute paths of `.container`, `.pod`, `.volume`, `.network`, `.kube`, `.image`, `.build` files in the legacy user's `~/.config/containers/systemd/` or `/etc/containers/systemd/users/UID/`, or root's `/etc/containers/systemd/`), instead of `compose` and `service`; file names must differ (one directory will hold them); `init --quadlets DIR` drafts them, pods included. For root's units (`/etc/containers/systemd/`) the policy says `legacy_owner = \"root\"`. Apply parks the legacy owner's files below /var/lib/isolate (her manager reloaded, a reboot starts one copy), hands over the `.volume` volumes and `Image=` images, writes the rewritten files into `/etc/containers/systemd/users/UID/` and starts the units in the stack user's manager; rollback puts hers back (see Quadlet stacks). Needs quadlet (podman 4.4 or newer)",
    },
];

/// The rows of `[shares.NAME]`, after every stack table's.
const SHARE_ROWS: &[PolicyKey] = &[
    PolicyKey {
        key: "`[shares.NAME] path`",
        default: "required",
        meaning: "a shared directory (apart from every data path and every other share; like data, never in a system tree or a person's home)",
    },
    PolicyKey {
        key: "`[shares.NAME] read`, `write`",
        default: "`[]`",
        meaning: "entries `stack` (the stack's container root) or `stack:container_uid`",
    },
    PolicyKey {
        key: "`[shares.NAME] mode`",
        default: "`\"acl\"`",
        meaning: "`acl`: named ACL entries per grant; `group`: for filesystems without POSIX ACLs, the shared group (plan lists who gains access; apply checks it and says what to run on the file server)",
    },
];

/// The reference as the README's Markdown table.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n| --- | --- | --- |\n");
    for k in POLICY_KEYS {
        out.push_str(&format!("| {} | {} | {} |\n", k.key, k.default, k.meaning));
    }
    out
}

/// Text without Markdown's inline-code backticks: how a row reads in a man page.
pub fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Pools;

    fn default_of(key: &str) -> &'static str {
        POLICY_KEYS
            .iter()
            .find(|k| k.key.contains(key))
            .unwrap_or_else(|| panic!("no row for {key}"))
            .default
    }

    #[test]
    fn pool_defaults_are_the_parsers_defaults() {
        let p = Pools::default();
        assert_eq!(
            default_of("uid_first"),
            format!("{}, {}", p.uid_first, p.uid_last)
        );
        assert_eq!(
            default_of("subid_first"),
            format!("{}, {}", p.subid_first, p.subid_last)
        );
        assert_eq!(default_of("subid_size"), p.subid_size.to_string());
    }

    #[test]
    fn name_defaults_are_the_parsers_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "[stacks.a]\ndata = [\"/srv/a\"]\n").unwrap();
        let p = crate::policy::Policy::load(&file).unwrap();
        assert_eq!(
            default_of("user_prefix"),
            format!("`\"{}\"`", p.user_prefix.value)
        );
        assert_eq!(
            default_of("shared_group"),
            format!("`\"{}\"`", p.shared_group.value)
        );
    }

    #[test]
    fn every_key_the_parser_accepts_is_in_the_reference() {
        use crate::policy::{POOL_KEYS, SHARE_KEYS, STACK_KEYS, TOP_KEYS};
        let rows: Vec<&str> = POLICY_KEYS.iter().map(|k| k.key).collect();
        let has = |section: &str, key: &str| {
            rows.iter().any(|row| {
                let named = row.contains(&format!("`{key}`")) || row.contains(&format!(" {key}`"));
                named && (section.is_empty() || row.contains(section))
            })
        };
        let mut missing = Vec::new();
        for key in TOP_KEYS
            .iter()
            .filter(|k| !["pools", "stacks", "shares"].contains(k))
        {
            if !has("", key) {
                missing.push(key.to_string());
            }
        }
        for (section, keys) in [
            ("[pools]", POOL_KEYS),
            ("[stacks.NAME]", STACK_KEYS),
            ("[shares.NAME]", SHARE_KEYS),
        ] {
            for key in keys.iter().filter(|k| !has(section, k)) {
                missing.push(format!("{section} {key}"));
            }
        }
        assert!(
            missing.is_empty(),
            "not in the policy reference: {missing:?}"
        );
    }
}
