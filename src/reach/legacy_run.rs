//! Carries out the legacy side of `reaches` (see `legacy`): compose runs as the legacy user
//! with every privilege dropped (her uid, gid and groups, her session environment), through
//! a trait so tests record the runs; the override is isolate's file, written before the run
//! and recorded after it; rollback of the reaching stack re-ups her project without it.
use super::error::ReachError;
use super::legacy::{self, LegacyRecords, LegacyRun, LegacyStep};
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::model::Outcome;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one compose run may take (images are in her store already; the stack's unit
/// allows 15 minutes to start).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs a compose command as another user.
pub trait ComposeRunner {
    /// Runs `argv` as `user` in `dir` with her session environment plus `env`; Err unless it
    /// exits 0 (with the end of its output).
    fn run_as(
        &self,
        user: &str,
        argv: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<()>;
}

/// The real runner: a child with the user's uid, gid and groups (set before exec, so nothing
/// of root's stays: no capability survives a uid change away from 0), a session of its own,
/// no stdin, and the session environment `isolate exec` gives.
pub struct RunAsUser<'a> {
    pub root: &'a Root,
}

impl ComposeRunner for RunAsUser<'_> {
    fn run_as(
        &self,
        user: &str,
        argv: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<()> {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        if !self.root.is_host() {
            return Err(ReachError::NotOnHost {
                user: user.to_string(),
                root: self.root.path().to_path_buf(),
            }
            .into());
        }
        let acc = crate::host::accounts::Accounts::read(self.root)?;
        let entry = acc.user(user).ok_or_else(|| ReachError::NoSuchUser {
            user: user.to_string(),
        })?;
        if entry.uid == 0 {
            return Err(ReachError::Uid0 {
                user: user.to_string(),
            }
            .into());
        }
        let inherited = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .collect();
        let who = crate::host::identity::identity(self.root, &acc, entry, &inherited);
        let (program, args) = argv.split_first().ok_or(ReachError::EmptyCommand)?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(&who.env)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if program.ends_with("podman-compose") {
            // As the stack's unit: podman runs directly as her, not through her API service.
            cmd.env_remove("CONTAINER_HOST");
        }
        let (uid, gid, groups) = (who.uid, who.gid, who.groups.clone());
        let cwd = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| {
            ReachError::NulByte {
                path: dir.to_path_buf(),
            }
        })?;
        // SAFETY: only async-signal-safe calls between fork and exec; `groups` and `cwd` were
        // allocated before the fork. The directory is entered as her (a link she placed on
        // the way leads only where she may go).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0
                    || libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                    || libc::chdir(cwd.as_ptr()) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let shown = argv.join(" ");
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("running `{shown}` as {user}"), e))?;
        let pipes = [
            child.stdout.take().map(|mut o| {
                std::thread::spawn(move || {
                    let mut b = Vec::new();
                    let _ = o.read_to_end(&mut b);
                    b
                })
            }),
            child.stderr.take().map(|mut o| {
                std::thread::spawn(move || {
                    let mut b = Vec::new();
                    let _ = o.read_to_end(&mut b);
                    b
                })
            }),
        ];
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() > RUN_TIMEOUT => {
                    // Its own session: the whole group goes.
                    // SAFETY: kill(2) on the child's process group.
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => return Err(Error::io(format!("waiting for `{shown}`"), e)),
            }
        };
        let mut output = Vec::new();
        for p in pipes.into_iter().flatten() {
            output.extend(p.join().unwrap_or_default());
        }
        let text = String::from_utf8_lossy(&output);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        match status {
            Some(s) if s.success() => Ok(()),
            Some(status) => Err(ReachError::ComposeFailed {
                shown,
                user: user.to_string(),
                status,
                tail: tail.join("\n"),
            }
            .into()),
            None => Err(ReachError::ComposeTimedOut {
                shown,
                user: user.to_string(),
                secs: RUN_TIMEOUT.as_secs(),
                tail: tail.join("\n"),
            }
            .into()),
        }
    }
}

fn read_records(root: &Root) -> Result<LegacyRecords> {
    let at = root.at(&legacy::record_path());
    match std::fs::read(&at) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|source| ReachError::NotIsolates { path: at, source }.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LegacyRecords::default()),
        Err(e) => Err(Error::io(format!("reading {}", at.display()), e)),
    }
}

/// The record as observation reads it (a missing file is no record).
pub fn observe_records(root: &Root) -> Result<LegacyRecords> {
    read_records(root)
}

fn write_records(root: &Root, r: &LegacyRecords) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(r).map_err(|source| ReachError::SerializeLegacy { source })?;
    crate::host::files::write_atomic(&root.at(&legacy::record_path()), &bytes, 0o644)
}

/// The variables compose interpolates with, from the env files (as the stack's unit passes
/// them), read without following a link.
fn env_of(root: &Root, run: &LegacyRun) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for e in &run.env_files {
        let bytes = crate::handoff::env_files::read_pinned(root, e)
            .map_err(|err| Error::io(format!("reading env file {}", e.display()), err))?;
        env.extend(crate::handoff::compose::parse_env_file(
            &String::from_utf8_lossy(&bytes),
        ));
    }
    Ok(env)
}

/// isolate's directory for the legacy overrides: root's, 0755 (the legacy user reads them).
fn own_dir(root: &Root) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for d in [root.state_dir(), root.at(&legacy::dir())] {
        match std::fs::symlink_metadata(&d) {
            Ok(m) if m.is_dir() => {
                if m.uid() != 0 || m.mode() & 0o022 != 0 || m.mode() & 0o001 == 0 {
                    return Err(ReachError::LegacyDirNotOpen {
                        path: d,
                        uid: m.uid(),
                        mode: m.mode() & 0o7777,
                    }
                    .into());
                }
            }
            Ok(_) => return Err(ReachError::NotADirectory { path: d }.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&d)
                    .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| Error::io(format!("chmod {}", d.display()), e))?;
            }
            Err(e) => return Err(Error::io(format!("looking at {}", d.display()), e)),
        }
    }
    Ok(())
}

fn remove_file(root: &Root, path: &Path) -> Result<()> {
    match std::fs::remove_file(root.at(path)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

pub fn run(root: &Root, step: &LegacyStep, runner: Option<&dyn ComposeRunner>) -> Result<Outcome> {
    match step {
        LegacyStep::Publish {
            stack,
            target,
            run,
            path,
            text,
        } => {
            let runner = runner.ok_or(ReachError::NoComposeRunner)?;
            let env = env_of(root, run)?;
            own_dir(root)?;
            let file = root.at(path);
            if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
                crate::host::files::write_atomic(&file, text.as_bytes(), 0o644)?;
            }
            let mut records = read_records(root)?;
            let done = records
                .targets
                .get(target)
                .is_some_and(|r| &r.text == text && &r.run == run);
            if !done {
                runner.run_as(&run.user, &run.argv(Some(path)), &run.workdir(), &env)?;
            }
            let rec = records.targets.entry(target.clone()).or_default();
            rec.run = run.clone();
            rec.text = text.clone();
            rec.reached_by.insert(stack.clone());
            write_records(root, &records)?;
            Ok(if done {
                Outcome::AlreadyPresent
            } else {
                Outcome::Done
            })
        }
        LegacyStep::Forget { stack, path, .. } => {
            let mut records = read_records(root)?;
            let had = records.targets.remove(stack).is_some();
            remove_file(root, path)?;
            if had {
                write_records(root, &records)?;
            }
            Ok(if had {
                Outcome::Done
            } else {
                Outcome::AlreadyPresent
            })
        }
    }
}

/// `rollback --stack`: every legacy publish made for the stack alone goes: her project is
/// re-upped without the override when its containers run, then the file and record go.
pub fn rollback(
    root: &Root,
    stack: &str,
    session: Option<&crate::host::session::Session<'_>>,
    runner: &dyn ComposeRunner,
) -> Result<Vec<String>> {
    let mut records = read_records(root)?;
    let mut lines = Vec::new();
    let mine: Vec<String> = records
        .targets
        .iter()
        .filter(|(_, r)| r.reached_by.contains(stack))
        .map(|(t, _)| t.clone())
        .collect();
    for t in mine {
        let rec = records.targets.get_mut(&t).expect("listed above");
        rec.reached_by.remove(stack);
        if !rec.reached_by.is_empty() {
            lines.push(format!(
                "legacy publish of {t}: kept for {}",
                rec.reached_by
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            write_records(root, &records)?;
            continue;
        }
        let run = rec.run.clone();
        let running = match session {
            Some(st) => st
                .project_containers(run.uid, &run.project)?
                .iter()
                .any(|c| c.state == "running"),
            None => false,
        };
        let path = legacy::override_file(&t);
        if running {
            runner.run_as(
                &run.user,
                &run.argv(None),
                &run.workdir(),
                &env_of(root, &run)?,
            )?;
        }
        records.targets.remove(&t);
        write_records(root, &records)?;
        remove_file(root, &path)?;
        lines.push(if running {
            format!(
                "legacy publish of {t} (removed): {}'s project {} re-upped without {}",
                run.user,
                run.project,
                path.display()
            )
        } else {
            format!(
                "legacy publish of {t} (removed): {} ({}'s project {} does not run; it starts without it)",
                path.display(),
                run.user,
                run.project
            )
        });
    }
    Ok(lines)
}
