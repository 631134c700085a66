//! `isolate exec STACK -- CMD...`: runs CMD as the stack user in its own session environment
//! (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS, DOCKER_HOST/CONTAINER_HOST, HOME, USER,
//! LOGNAME, working directory its home), with exactly its groups, uid and gid, and passes its
//! exit code through. The child gets a session of its own, so it has no controlling terminal
//! and cannot push input into root's (TIOCSTI); isolate stays its parent and forwards the
//! terminal's signals to it.
use crate::error::{Error, Result};
use crate::host::accounts::etc::{Accounts, PasswdEntry};
use crate::layout::Root;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

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

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Runs `argv` as `who` and returns its exit code (128 + N when signal N ended it).
pub fn run(who: &Identity, argv: &[OsString]) -> Result<i32> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Usage("exec needs a command after `--`".into()))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&who.env)
        .current_dir(&who.cwd);
    let (uid, gid, groups) = (who.uid, who.gid, who.groups.clone());
    // SAFETY: between fork and exec only async-signal-safe system calls run; `groups` was
    // allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0
                || libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Before the spawn: a signal from now on reaches the child once it exists (exec gives the
    // child the default handlers back).
    let handler: extern "C" fn(libc::c_int) = forward;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: `forward` only calls kill(2).
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::io(
            format!("running {} as uid {uid}", program.to_string_lossy()),
            e,
        )
    })?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the command", e))?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
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
