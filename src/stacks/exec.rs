//! `isolate exec STACK -- CMD...`: runs CMD as the stack user in its own session environment
//! (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS, DOCKER_HOST/CONTAINER_HOST, HOME, USER,
//! LOGNAME, working directory its home), with exactly its groups, uid and gid, and passes its
//! exit code through. The child gets a session of its own, so it has no controlling terminal
//! and cannot push input into root's (TIOCSTI); isolate stays its parent and forwards the
//! terminal's signals to it.
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::sync::atomic::{AtomicI32, Ordering};

pub use crate::host::identity::{identity, Identity};

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
