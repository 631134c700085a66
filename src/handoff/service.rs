//! The compose project as a service of the stack user: a user unit in the stack user's own
//! systemd manager (podman supports no `User=` for rootless containers in a system unit), its
//! text rendered here with the literal uid and paths (never `%U`/`%t`/`%h`), written into the
//! stack user's home without following a link the user may have planted; and, for admins who
//! keep a root-owned wrapper unit, the drop-in that wrapper needs. The unit runs isolate's
//! root-owned copies of the compose and env files (see `copies`), never the originals. The service's truth is its
//! project's containers running, asked of the stack's store on every read.
use super::copies;
use super::error::HandoffError;
use crate::error::{Error, Result};
use crate::host::session::Session;
use crate::layout::Root;
use crate::policy::StackPolicy;
pub use crate::state::handoff::ServiceRecord;
use crate::state::Allocation;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use serde::Serialize;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The compose command when the policy names none (what Debian ships).
pub const DEFAULT_COMPOSE: &str = "podman-compose";

/// The user unit of a stack's compose project.
pub fn unit_name(project: &str) -> String {
    format!("isolate-compose-{project}.service")
}

/// The stack user's home: as the account says, else where isolate creates it.
pub fn home_of(acc: &crate::host::accounts::Accounts, a: &Allocation) -> PathBuf {
    acc.user(&a.user)
        .map(|u| PathBuf::from(&u.home))
        .filter(|h| h.is_absolute() && h != Path::new("/"))
        .unwrap_or_else(|| crate::layout::home(&a.user))
}

/// Where the unit lives: the stack user's own unit directory (relative to the root).
pub fn unit_path(home: &Path, project: &str) -> PathBuf {
    home.join(".config/systemd/user").join(unit_name(project))
}

/// One word of a unit's command line, quoted as systemd reads it: `%` and `$` doubled,
/// quotes around anything with a space, quote or backslash.
fn unit_word(w: &str) -> String {
    let w = w.replace('%', "%%").replace('$', "$$");
    if w.is_empty() || w.contains([' ', '\t', '"', '\'', '\\', ';']) {
        format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        w
    }
}

/// A value of `Environment=`/`EnvironmentFile=`: `%` doubled, quoted when it holds a space.
fn unit_value(v: &str) -> String {
    let v = v.replace('%', "%%");
    if v.contains([' ', '"', '\\']) {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v
    }
}

/// The compose command line for `args` (`up -d`, `stop`), as a unit's Exec line.
fn compose_line(s: &StackPolicy, project: &str, args: &[&str]) -> String {
    let mut words: Vec<String> = if s.handoff.compose_command.is_empty() {
        vec![DEFAULT_COMPOSE.to_string()]
    } else {
        s.handoff
            .compose_command
            .iter()
            .map(|w| w.value.clone())
            .collect()
    };
    words.push("-p".into());
    words.push(project.into());
    for c in &s.handoff.compose {
        words.push("-f".into());
        words.push(copy_of(s, &c.value));
    }
    if s.reach_override {
        words.push("-f".into());
        words.push(
            crate::layout::reach_override_path(&s.name)
                .display()
                .to_string(),
        );
    }
    words.extend(args.iter().map(|a| a.to_string()));
    words
        .iter()
        .map(|w| unit_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The copy the unit runs instead of `original` (see [`copies`]).
fn copy_of(s: &StackPolicy, original: &Path) -> String {
    copies::copy_path(&s.name, original).display().to_string()
}

/// The environment every way of running the stack needs, with the literal uid.
fn environment(s: &StackPolicy, a: &Allocation) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = crate::layout::podman_env(a.uid)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("ISOLATE_STACK".to_string(), s.name.clone()));
    if let Some(first) = s.data.first() {
        env.push(("DATA_ROOT".to_string(), first.value.display().to_string()));
    }
    env
}

/// Whether the compose command drives the local podman CLI (podman-compose) rather than an
/// engine API (docker compose, which reads DOCKER_HOST).
fn drives_podman_cli(s: &StackPolicy) -> bool {
    s.handoff
        .compose_command
        .first()
        .is_none_or(|c| c.value.ends_with("podman-compose"))
}

/// The user unit that runs the stack's compose project. For podman-compose it leaves out
/// CONTAINER_HOST: that would send every podman call through the API service instead of
/// running it directly as the user, for nothing (and the service's crun cannot make session
/// keyrings where keyctl is filtered, as in systemd-nspawn).
pub fn render_unit(s: &StackPolicy, a: &Allocation) -> String {
    let project = s.handoff.project_of(&s.name);
    let mut u = String::new();
    u.push_str(&format!(
        "# Written by isolate for stack {}: runs compose project {project} as {}.\n\
         # apply rewrites it; rollback --stack {} removes it.\n",
        s.name, a.user, s.name
    ));
    for (_, original) in copies::files(s) {
        u.push_str(&format!(
            "# Runs isolate's copy of {}.\n",
            crate::model::escape::path_text(&original)
        ));
    }
    u.push_str(&format!(
        "[Unit]\nDescription=compose project {project} of stack {} (isolate)\nWants=podman.socket\nAfter=podman.socket\n\n",
        s.name
    ));
    u.push_str("[Service]\nType=oneshot\nRemainAfterExit=yes\n");
    let podman_cli = drives_podman_cli(s);
    for (k, v) in environment(s, a) {
        if podman_cli && k == "CONTAINER_HOST" {
            continue;
        }
        u.push_str(&format!(
            "Environment={}\n",
            unit_value(&format!("{k}={v}"))
        ));
    }
    for e in &s.handoff.env_files {
        u.push_str(&format!(
            "EnvironmentFile={}\n",
            unit_value(&copy_of(s, &e.value))
        ));
    }
    if let Some(c) = s.handoff.compose.first() {
        let copy = copies::copy_path(&s.name, &c.value);
        let dir = copy.parent().unwrap_or(Path::new("/"));
        u.push_str(&format!(
            "WorkingDirectory={}\n",
            unit_value(&dir.display().to_string())
        ));
    }
    u.push_str(&format!(
        "ExecStart={}\n",
        compose_line(s, &project, &["up", "-d"])
    ));
    u.push_str(&format!(
        "ExecStop={}\n",
        compose_line(s, &project, &["stop"])
    ));
    u.push_str("Restart=on-failure\nRestartSec=10s\nTimeoutStartSec=15min\n\n");
    u.push_str("[Install]\nWantedBy=default.target\n");
    u
}

/// The drop-in a root-owned wrapper unit (a system service that runs the project, NixOS
/// `mkService`-style) needs to run it as the stack user.
pub fn render_dropin(s: &StackPolicy, a: &Allocation) -> String {
    let uid = a.uid;
    let runtime = crate::layout::runtime_dir(uid);
    let mut d = format!(
        "# Drop-in for the system unit that runs stack {}'s compose project as {}\n\
         # (e.g. /etc/systemd/system/UNIT.service.d/isolate.conf). Literal ids and paths: in a\n\
         # system unit %U, %t and %h are root's. Give podman --cgroups=enabled in that unit's\n\
         # command (podman's default, `no-conmon` or `split` from wrappers, fails as a user).\n\
         [Unit]\nRequires=user@{uid}.service\nAfter=user@{uid}.service\nRequiresMountsFor={}\n\n\
         [Service]\nUser={}\nGroup={}\n",
        s.name,
        a.user,
        runtime.display(),
        a.user,
        a.user
    );
    for (k, v) in environment(s, a) {
        d.push_str(&format!(
            "Environment={}\n",
            unit_value(&format!("{k}={v}"))
        ));
    }
    for e in &s.handoff.env_files {
        d.push_str(&format!(
            "EnvironmentFile={}\n",
            unit_value(&e.value.display().to_string())
        ));
    }
    d
}

fn io(what: &str, p: &Path, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {}", p.display()), e.into())
}

/// Opens each directory of `dir` below `root` without following a symbolic link, creating
/// what is missing: owned by `uid:gid` inside `home`, by root above it.
fn open_dirs(root: &Root, dir: &Path, home: &Path, uid: u32, gid: u32) -> Result<OwnedFd> {
    crate::host::files::open_dir_chain(
        root,
        dir,
        |_| 0o755,
        |fd, rel, shown, created| {
            if created && rel.starts_with(home) {
                rustix::fs::fchown(
                    fd,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(|e| io("chown", shown, e))?;
            }
            Ok(())
        },
    )
}

/// Writes `text` to `path` (relative to the root) atomically: a new file beside it, owned by
/// `uid:gid`, mode 0644, renamed over; the directories on the way are created as `uid:gid`
/// and never followed through a link (those inside `home` owned by `uid:gid`).
pub fn write_unit(
    root: &Root,
    path: &Path,
    home: &Path,
    text: &str,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| HandoffError::NamesNoFile {
        path: path.to_path_buf(),
    })?;
    let dirfd = open_dirs(root, dir, home, uid, gid)?;
    crate::host::files::replace_beneath(
        &dirfd,
        name,
        &root.at(path),
        text.as_bytes(),
        (uid, gid),
        0o644,
    )
}

/// Removes the unit file (no link followed); a missing one is fine.
pub fn remove_unit(root: &Root, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let rootfd = rustix::fs::open(
        root.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", root.path(), e))?;
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    let dirfd = match rustix::fs::openat2(
        rootfd.as_fd(),
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io("open", &root.at(dir), e)),
    };
    match rustix::fs::unlinkat(dirfd.as_fd(), name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(io("remove", &root.at(path), e)),
    }
}

/// Whether a compose project runs in a user's store, as observation found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "why", rename_all = "snake_case")]
pub enum ProjectRuns {
    /// Not asked: the stack's podman socket does not listen (or no systemd).
    #[default]
    NotAsked,
    Yes,
    No(String),
}

/// Ok(()) when the project has containers in the user's store and all of them run;
/// otherwise what is not running.
pub fn project_running(
    stores: &Session<'_>,
    uid: u32,
    project: &str,
) -> Result<std::result::Result<(), String>> {
    let containers = stores.project_containers(uid, project)?;
    if containers.is_empty() {
        return Ok(Err("it has no containers".into()));
    }
    let stopped: Vec<String> = containers
        .iter()
        .filter(|c| c.state != "running")
        .map(|c| format!("{} ({})", c.name, c.state))
        .collect();
    if stopped.is_empty() {
        Ok(Ok(()))
    } else {
        Ok(Err(format!("not running: {}", stopped.join(", "))))
    }
}

/// Waits (narrated) until every container of `project` runs in `user`'s store once its unit
/// is active; a failure carries the unit's last journal lines.
pub fn wait_project_running(
    stores: &Session<'_>,
    uid: u32,
    user: &str,
    unit: &str,
    project: &str,
) -> Result<()> {
    let timeout = stores.running_timeout();
    let _wait = crate::logging::narrate::wait(
        format!("the containers of project {project} to run as {user}"),
        timeout,
    );
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match project_running(stores, uid, project)? {
            Ok(()) => return Ok(()),
            Err(why) if std::time::Instant::now() >= deadline => {
                let journal = crate::host::journal::Unit::User {
                    uid,
                    unit: unit.to_string(),
                };
                let err = HandoffError::ProjectNotRunning {
                    unit: unit.to_string(),
                    project: project.to_string(),
                    user: user.to_string(),
                    why,
                }
                .into();
                return Err(crate::host::journal::annotate(
                    err,
                    &stores.journal(),
                    &journal,
                ));
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(500)),
        }
    }
}

/// Who may own a file the service's copies are made from: the legacy user (the files are
/// hers until the hand-off), the stack user (its env files after it) and root.
pub fn copy_owners(
    policy: &crate::policy::Policy,
    acc: &crate::host::accounts::Accounts,
    a: &Allocation,
) -> Vec<u32> {
    let mut owners = vec![0, a.uid];
    if let Some(l) = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| acc.user(&l.value))
    {
        owners.push(l.uid);
    }
    owners
}

/// Asks the stack's store whether its project runs; never starts a socket.
pub fn project_runs(stores: &Session<'_>, uid: u32, project: &str) -> ProjectRuns {
    if !stores.socket_listening(uid) {
        return ProjectRuns::NotAsked;
    }
    match project_running(stores, uid, project) {
        Ok(Ok(())) => ProjectRuns::Yes,
        Ok(Err(why)) => ProjectRuns::No(why),
        Err(e) => ProjectRuns::No(format!("its containers cannot be listed: {e}")),
    }
}

/// The service as it is: its unit file, its state in the stack user's manager and whether the
/// project's containers run. Never writes.
pub fn observe(
    root: &Root,
    policy: &crate::policy::Policy,
    acc: &crate::host::accounts::Accounts,
    s: &StackPolicy,
    a: &Allocation,
    stores: Option<&Session<'_>>,
) -> super::ServiceFacts {
    let project = s.handoff.project_of(&s.name);
    let path = unit_path(&home_of(acc, a), &project);
    let (enabled, active) = stores
        .and_then(|st| st.unit_state(&a.user, a.uid, &unit_name(&project)))
        .unwrap_or((false, false));
    super::ServiceFacts {
        text: read_unit(root, &path),
        enabled,
        active,
        project: stores.map_or(ProjectRuns::NotAsked, |st| {
            project_runs(st, a.uid, &project)
        }),
        copies: super::copies::observe(root, s, &copy_owners(policy, acc, a)),
    }
}

/// The unit file's text as it is now (None: absent or unreadable), for plan.
pub fn read_unit(root: &Root, path: &Path) -> Option<String> {
    super::env_files::read_pinned(root, path)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn stack(extra: &str) -> (StackPolicy, Allocation) {
        let p = Policy::parse(
            Path::new("p.toml"),
            &format!("[stacks.app]\ndata = [\"/srv/app/data\"]\ncompose = [\"/srv/app/conf/compose.yaml\"]\nenv_files = [\"/srv/app/conf/app.env\"]\n{extra}"),
        )
        .unwrap();
        let a = Allocation {
            user: "stk-app".into(),
            uid: 1800,
            gid: 1800,
            subids: crate::ids::SubidRange::new(200_000, 65_536).unwrap(),
        };
        (p.stacks["app"].clone(), a)
    }

    #[test]
    fn the_unit_names_the_literal_uid_and_never_a_specifier_for_the_user() {
        let (s, a) = stack("compose_command = [\"podman-compose\", \"--podman-path\", \"/usr/local/bin/pod man\"]\n");
        let u = render_unit(&s, &a);
        assert!(
            u.contains("Environment=XDG_RUNTIME_DIR=/run/user/1800\n"),
            "{u}"
        );
        assert!(
            !u.contains("CONTAINER_HOST"),
            "podman-compose runs podman itself: {u}"
        );
        let (docker, _) = stack("compose_command = [\"docker\", \"compose\"]\n");
        let d = render_unit(&docker, &a);
        assert!(d.contains("Environment=CONTAINER_HOST=unix:///run/user/1800/podman/podman.sock\n"));
        assert!(d.contains("ExecStart=docker compose -p app"), "{d}");
        assert!(u.contains("Environment=DOCKER_HOST=unix:///run/user/1800/podman/podman.sock\n"));
        assert!(u.contains("Environment=DATA_ROOT=/srv/app/data\n"));
        assert!(
            u.contains("EnvironmentFile=/var/lib/isolate/stacks/app/files/srv/app/conf/app.env\n")
        );
        assert!(u.contains("WorkingDirectory=/var/lib/isolate/stacks/app/files/srv/app/conf\n"));
        assert!(u.contains("ExecStart=podman-compose --podman-path \"/usr/local/bin/pod man\" -p app -f /var/lib/isolate/stacks/app/files/srv/app/conf/compose.yaml up -d\n"), "{u}");
        assert!(u.contains("# Runs isolate's copy of /srv/app/conf/compose.yaml.\n"));
        assert!(u.contains("Restart=on-failure\n"));
        assert!(u.contains("WantedBy=default.target\n"));
        for spec in ["%U", "%t", "%h", "%u"] {
            assert!(!u.contains(spec), "{spec} in {u}");
        }
    }

    #[test]
    fn the_dropin_has_what_a_system_wrapper_needs() {
        let (s, a) = stack("");
        let d = render_dropin(&s, &a);
        for line in [
            "User=stk-app\n",
            "Requires=user@1800.service\n",
            "After=user@1800.service\n",
            "RequiresMountsFor=/run/user/1800\n",
            "Environment=XDG_RUNTIME_DIR=/run/user/1800\n",
            "--cgroups=enabled",
        ] {
            assert!(d.contains(line), "{line} missing in {d}");
        }
    }

    #[test]
    fn the_unit_is_written_without_following_a_planted_link() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let home = d.path().join("var/lib/isolate/home/stk-app");
        std::fs::create_dir_all(&home).unwrap();
        let elsewhere = d.path().join("etc/elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.join(".config")).unwrap();
        let path = Path::new("/var/lib/isolate/home/stk-app/.config/systemd/user/x.service");
        let home_rel = Path::new("/var/lib/isolate/home/stk-app");
        assert!(write_unit(&root, path, home_rel, "x", 1800, 1800).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_file(home.join(".config")).unwrap();
        write_unit(&root, path, home_rel, "[Unit]\n", 1800, 1800).unwrap();
        assert_eq!(read_unit(&root, path).as_deref(), Some("[Unit]\n"));
        let meta = std::fs::metadata(root.at(path)).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1800);
        remove_unit(&root, path).unwrap();
        assert!(read_unit(&root, path).is_none());
    }
}
