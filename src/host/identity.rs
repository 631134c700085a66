//! Who a command isolate starts as another user runs as: her uid, gid and groups and her
//! session environment (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS, DOCKER_HOST/CONTAINER_HOST,
//! HOME, USER, LOGNAME), nothing of root's but how to draw and which language. `isolate exec`
//! and the legacy user's compose run (reach/legacy_run.rs) both drop to it.
use crate::host::accounts::etc::{Accounts, PasswdEntry};
use crate::layout::Root;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// Who the command runs as and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group and every group listing the user.
    pub groups: Vec<u32>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, OsString>,
}

/// Variables kept from root's environment (how to draw and which language); everything else
/// is the stack user's own.
const KEPT: [&str; 4] = ["TERM", "LANG", "LC_ALL", "COLORTERM"];
/// PATH when root's has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The identity and session environment of `user` (`inherited`: root's environment).
pub fn identity(
    root: &Root,
    acc: &Accounts,
    user: &PasswdEntry,
    inherited: &BTreeMap<String, OsString>,
) -> Identity {
    let mut groups: Vec<u32> = std::iter::once(user.gid)
        .chain(
            acc.group
                .iter()
                .filter(|g| g.members.contains(&user.name))
                .map(|g| g.gid),
        )
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let mut env: BTreeMap<String, OsString> = KEPT
        .iter()
        .filter_map(|k| inherited.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    env.insert(
        "PATH".into(),
        inherited
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| DEFAULT_PATH.into()),
    );
    for (k, v) in crate::layout::podman_env(user.uid) {
        env.insert(k.into(), v.into());
    }
    env.insert(
        "DBUS_SESSION_BUS_ADDRESS".into(),
        format!(
            "unix:path={}",
            crate::layout::runtime_dir(user.uid).join("bus").display()
        )
        .into(),
    );
    env.insert("HOME".into(), user.home.clone().into());
    env.insert("USER".into(), user.name.clone().into());
    env.insert("LOGNAME".into(), user.name.clone().into());
    env.insert("SHELL".into(), user.shell.clone().into());
    Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
        cwd: root.at(std::path::Path::new(&user.home)),
        env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
    use std::path::Path;

    #[test]
    fn the_stack_users_session_not_roots() {
        let acc = Accounts {
            passwd: parse_passwd(
                Path::new("/etc/passwd"),
                "stk-app:x:70000:70000:isolate stack app:/var/lib/isolate/home/stk-app:/usr/sbin/nologin\n",
            )
            .unwrap(),
            group: parse_group(
                Path::new("/etc/group"),
                "stk-app:x:70000:\nstk-shared:x:990:stk-app\nsudo:x:27:alice\n",
            )
            .unwrap(),
            subuid: parse_subid(Path::new("/etc/subuid"), "").unwrap(),
            subgid: parse_subid(Path::new("/etc/subgid"), "").unwrap(),
        };
        let inherited: BTreeMap<String, OsString> = [
            ("PATH", "/usr/bin:/bin"),
            ("TERM", "xterm"),
            ("SSH_AUTH_SOCK", "/tmp/root-agent"),
            ("HOME", "/root"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
        let who = identity(&Root::new("/"), &acc, &acc.passwd[0], &inherited);
        assert_eq!(
            (who.uid, who.gid, who.groups.clone()),
            (70_000, 70_000, vec![990, 70_000])
        );
        assert_eq!(who.cwd, Path::new("/var/lib/isolate/home/stk-app"));
        let shown: Vec<String> = who
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
            .collect();
        assert_eq!(
            shown,
            [
                "CONTAINER_HOST=unix:///run/user/70000/podman/podman.sock",
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/70000/bus",
                "DOCKER_HOST=unix:///run/user/70000/podman/podman.sock",
                "HOME=/var/lib/isolate/home/stk-app",
                "LOGNAME=stk-app",
                "PATH=/usr/bin:/bin",
                "SHELL=/usr/sbin/nologin",
                "TERM=xterm",
                "USER=stk-app",
                "XDG_RUNTIME_DIR=/run/user/70000",
            ]
        );
    }
}
