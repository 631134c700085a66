//! Carries out hand-off steps: records what a step changes in the state file before it
//! changes it, re-checks the precondition so a re-run converges, and undoes it all on rollback.
use super::env_files::{self, EnvFileFacts, EnvFileRecord};
use super::service::ServiceRecord;
use super::stores::Stores;
use super::volumes::{self, VolumePhase, VolumeRecord};
use super::{HandoffRecord, HandoffStep};
use crate::apply::{Migrator, Outcome};
use crate::error::{Error, Result};
use crate::ids::Shift;
use crate::layout::Root;
use crate::migration::MigrationSpec;
use crate::state::State;
use crate::walk::{Progress, Summary};
use std::path::{Path, PathBuf};

/// Runs one hand-off step.
pub fn run(
    root: &Root,
    step: &HandoffStep,
    stores: Option<&dyn Stores>,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<(Outcome, Option<Summary>)> {
    match step {
        HandoffStep::MoveVolume { .. } => {
            let stores = stores.ok_or_else(|| {
                Error::Failed(
                    "moving volumes needs the podman sockets, but apply runs with --no-systemd"
                        .into(),
                )
            })?;
            move_volume(root, step, stores, migrator, progress)
        }
        HandoffStep::InstallService { .. } => {
            let stores = stores.ok_or_else(|| {
                Error::Failed(
                    "the compose service needs the user's manager, but apply runs with --no-systemd"
                        .into(),
                )
            })?;
            install_service(root, step, stores).map(|o| (o, None))
        }
        other => run_simple(root, other, stores).map(|o| (o, None)),
    }
}

fn run_simple(root: &Root, step: &HandoffStep, stores: Option<&dyn Stores>) -> Result<Outcome> {
    match step {
        HandoffStep::MoveVolume { .. } | HandoffStep::InstallService { .. } => {
            unreachable!("handled by run")
        }
        HandoffStep::CopyImage {
            image,
            from_user,
            from_uid,
            to_user,
            to_uid,
            ..
        } => copy_image(stores, image, (from_user, *from_uid), (to_user, *to_uid)),
        HandoffStep::EnvFile {
            stack, path, to, ..
        } => {
            let now = match env_files::observe(root, path)? {
                EnvFileFacts::File(f) => f,
                other => {
                    return Err(Error::Failed(format!(
                        "env file {} changed since the plan: {other:?}",
                        path.display()
                    )))
                }
            };
            if env_files::is_handed(&now, to.uid, to.gid) {
                return Ok(Outcome::AlreadyPresent);
            }
            // The original owner is on disk before the file changes; a re-run after a crash
            // keeps the first record (the file may already be half changed).
            let mut state = State::read(root)?;
            let rec = state.handoff.entry(stack.clone()).or_default();
            if !rec.env_files.iter().any(|r| &r.path == path) {
                rec.env_files.push(EnvFileRecord {
                    path: path.clone(),
                    was: now,
                });
                state.write(root)?;
            }
            env_files::set_owner(root, path, *to)?;
            Ok(Outcome::Done)
        }
    }
}

/// Writes the unit, records it, enables and (re)starts it in the stack user's manager, then
/// waits until every container of the project in the stack user's store runs.
fn install_service(root: &Root, step: &HandoffStep, stores: &dyn Stores) -> Result<Outcome> {
    let HandoffStep::InstallService {
        stack,
        user,
        uid,
        gid,
        project,
        unit,
        path,
        home,
        text,
    } = step
    else {
        unreachable!("install_service gets InstallService steps only")
    };
    let current = super::service::read_unit(root, path);
    if current.as_deref() == Some(text.as_str())
        && stores.unit_state(user, *uid, unit) == Some((true, true))
        && project_running(stores, *uid, project)?.is_ok()
    {
        return Ok(Outcome::AlreadyPresent);
    }
    let mut state = State::read(root)?;
    state.handoff.entry(stack.clone()).or_default().service = Some(ServiceRecord {
        unit: unit.clone(),
        path: path.clone(),
    });
    state.write(root)?;
    super::service::write_unit(root, path, home, text, *uid, *gid)?;
    stores.start_unit(*uid, unit)?;
    let deadline = std::time::Instant::now() + stores.running_timeout();
    loop {
        match project_running(stores, *uid, project)? {
            Ok(()) => return Ok(Outcome::Done),
            Err(why) if std::time::Instant::now() >= deadline => {
                return Err(Error::Failed(format!(
                    "{unit} is active, but project {project} does not run as {user}: {why}"
                )))
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(500)),
        }
    }
}

/// Ok(()) when the project has containers in the user's store and all of them run;
/// otherwise what is not running.
fn project_running(
    stores: &dyn Stores,
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

/// The stack's compose service, stopped and disabled, its unit and record kept: a rollback
/// checks what else holds the data now, and if it is refused, starts the service again.
#[derive(Debug)]
pub struct PausedService {
    stack: String,
    rec: ServiceRecord,
    uid: u32,
}

impl PausedService {
    /// Enables and starts the service again (the rollback was refused).
    pub fn resume(self, stores: Option<&dyn Stores>) -> Result<()> {
        reach(stores, &self.rec, self.uid)?.start_unit(self.uid, &self.rec.unit)
    }

    /// Removes the unit file and the record: the rollback goes on.
    pub fn remove(self, root: &Root) -> Result<String> {
        super::service::remove_unit(root, &self.rec.path)?;
        let mut state = State::read(root)?;
        if let Some(r) = state.handoff.get_mut(&self.stack) {
            r.service = None;
            if r.is_empty() {
                state.handoff.remove(&self.stack);
            }
        }
        state.write(root)?;
        Ok(format!(
            "service {}: stopped, disabled and removed ({})",
            self.rec.unit,
            self.rec.path.display()
        ))
    }
}

/// The stores, or why the service's manager cannot be reached.
fn reach<'s>(
    stores: Option<&'s dyn Stores>,
    rec: &ServiceRecord,
    uid: u32,
) -> Result<&'s dyn Stores> {
    stores.ok_or_else(|| {
        Error::Failed(format!(
            "{} runs in uid {uid}'s manager, which cannot be reached here",
            rec.unit
        ))
    })
}

/// Writes the volume's record (replacing the one of the same name) into the state file.
fn record_volume(root: &Root, stack: &str, rec: &VolumeRecord) -> Result<()> {
    let mut state = State::read(root)?;
    let volumes = &mut state.handoff.entry(stack.to_string()).or_default().volumes;
    match volumes.iter_mut().find(|v| v.name == rec.name) {
        Some(v) => *v = rec.clone(),
        None => volumes.push(rec.clone()),
    }
    state.write(root)
}

fn volume_record(root: &Root, stack: &str, name: &str) -> Result<Option<VolumeRecord>> {
    Ok(State::read(root)?
        .handoff
        .get(stack)
        .and_then(|r| r.volumes.iter().find(|v| v.name == name).cloned()))
}

fn spec_of(rec: &VolumeRecord, target_uid: u32, target_gid: u32) -> MigrationSpec {
    MigrationSpec {
        mode: rec.mode,
        shift: Shift {
            from: rec.from_maps.clone(),
            to: rec.to_maps.clone(),
        },
        target_uid,
        target_gid,
        outside_links: Default::default(),
    }
}

/// Where a volume's data is shifted: below isolate's root-owned state directory, because the
/// walk refuses a data path whose parents someone else could write (the stores' volume
/// directories are their users').
pub fn staging_of(stack: &str, name: &str) -> PathBuf {
    Path::new("/var/lib/isolate/volumes").join(stack).join(name)
}

fn not_done(what: &str, summary: &Summary) -> Option<String> {
    let problems = summary.problems();
    (!problems.is_empty()).then(|| format!("{what} is not done: {}", problems.join("; ")))
}

/// Creates the stack's volume, moves the data to the staging directory, shifts its owners
/// there and puts it in place in the stack's store; each phase is in the state file before it
/// starts, so a killed run resumes where it stopped.
fn move_volume(
    root: &Root,
    step: &HandoffStep,
    stores: &dyn Stores,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<(Outcome, Option<Summary>)> {
    let HandoffStep::MoveVolume {
        stack,
        name,
        labels,
        from,
        to_uid,
        mode,
        shift,
        target_uid,
        target_gid,
        ..
    } = step
    else {
        unreachable!("move_volume gets MoveVolume steps only")
    };
    let existing = volume_record(root, stack, name)?;
    let resuming = existing.is_some();
    let mut rec = match existing {
        Some(r) => r,
        None => {
            stores.ensure_socket(*to_uid)?;
            let created = stores.create_volume(*to_uid, name, labels)?;
            // Checked before anything is recorded: a resumed move takes a full target for a
            // finished copy.
            volumes::check_target(&root.at(&created.mountpoint))?;
            let staging = staging_of(stack, name);
            volumes::check_target(&root.at(&staging))?;
            VolumeRecord {
                name: name.clone(),
                from: from.clone(),
                to: created.mountpoint,
                staging,
                phase: VolumePhase::Moving,
                mode: *mode,
                from_maps: shift.from.clone(),
                to_maps: shift.to.clone(),
                journal: crate::layout::journal(stack, &Path::new("/volumes").join(name)),
            }
        }
    };
    let staging = root.at(&rec.staging);
    let mut summary = None;
    loop {
        match rec.phase {
            VolumePhase::Done => {
                return Ok(match summary {
                    Some(s) => (Outcome::Done, Some(s)),
                    None => (Outcome::AlreadyPresent, None),
                })
            }
            VolumePhase::Unplacing | VolumePhase::Unshifting | VolumePhase::MovingBack => {
                return Err(Error::Failed(format!(
                    "a rollback of volume {name} was interrupted; finish it with `isolate rollback --stack {stack}`"
                )))
            }
            VolumePhase::Moving => {
                record_volume(root, stack, &rec)?;
                volumes::make_private_parent(&staging)?;
                volumes::move_dir(&root.at(&rec.from), &staging, resuming)?;
                rec.phase = VolumePhase::Shifting;
            }
            VolumePhase::Shifting => {
                record_volume(root, stack, &rec)?;
                let done = migrator.migrate(
                    &staging,
                    &spec_of(&rec, *target_uid, *target_gid),
                    &root.at(&rec.journal),
                    Progress {
                        enabled: progress,
                        expected_inodes: None,
                    },
                )?;
                if let Some(error) = not_done(&format!("volume {name}"), &done) {
                    // Stays `shifting`: the next apply walks it again.
                    return Ok((Outcome::Failed { error }, Some(done)));
                }
                summary = Some(done);
                rec.phase = VolumePhase::Placing;
            }
            VolumePhase::Placing => {
                record_volume(root, stack, &rec)?;
                volumes::move_dir(&staging, &root.at(&rec.to), true)?;
                rec.phase = VolumePhase::Done;
                record_volume(root, stack, &rec)?;
            }
        }
    }
}

/// Gives one volume back to the legacy store: out of the stack's store into staging, owners
/// back (the walk's rollback), data moved back, an empty directory left for the stack's
/// volume. Re-runnable from every phase.
fn rollback_volume(
    root: &Root,
    stack: &str,
    mut rec: VolumeRecord,
    target: (u32, u32),
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<String> {
    let (from, to, staging) = (root.at(&rec.from), root.at(&rec.to), root.at(&rec.staging));
    loop {
        match rec.phase {
            VolumePhase::Moving => {
                // Interrupted before its owners changed: the data is wherever the move left it.
                if from.exists() {
                    volumes::discard_partial(&staging)?;
                } else {
                    volumes::move_dir(&staging, &from, true)?;
                }
                break;
            }
            VolumePhase::Done | VolumePhase::Placing | VolumePhase::Unplacing => {
                rec.phase = VolumePhase::Unplacing;
                record_volume(root, stack, &rec)?;
                if volumes::holds_data(&to)? || !staging.exists() {
                    volumes::move_dir(&to, &staging, true)?;
                }
                rec.phase = VolumePhase::Unshifting;
            }
            VolumePhase::Shifting | VolumePhase::Unshifting => {
                rec.phase = VolumePhase::Unshifting;
                record_volume(root, stack, &rec)?;
                let done = migrator.rollback(
                    &staging,
                    &spec_of(&rec, target.0, target.1),
                    &root.at(&rec.journal),
                    Progress {
                        enabled: progress,
                        expected_inodes: None,
                    },
                )?;
                if let Some(error) = not_done(&format!("rollback of volume {}", rec.name), &done) {
                    return Err(Error::Failed(error));
                }
                rec.phase = VolumePhase::MovingBack;
            }
            VolumePhase::MovingBack => {
                record_volume(root, stack, &rec)?;
                volumes::move_dir(&staging, &from, true)?;
                break;
            }
        }
    }
    // The stack's store keeps its (now empty) volume.
    if !to.exists() {
        std::fs::create_dir(&to).map_err(|e| Error::io(format!("create {}", to.display()), e))?;
        std::os::unix::fs::chown(&to, Some(target.0), Some(target.1))
            .map_err(|e| Error::io(format!("chown {}", to.display()), e))?;
    }
    let mut state = State::read(root)?;
    if let Some(r) = state.handoff.get_mut(stack) {
        r.volumes.retain(|v| v.name != rec.name);
        if r.is_empty() {
            state.handoff.remove(stack);
        }
    }
    state.write(root)?;
    Ok(format!(
        "volume {}: data back in {}",
        rec.name,
        rec.from.display()
    ))
}

/// What rollback did for one stack's hand-off, one line each.
pub type RollbackLines = Vec<String>;

/// What `rollback --stack` did: the hand-off's lines, then the data paths.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StackRollback {
    pub handoff: RollbackLines,
    pub data: crate::apply::RollbackReport,
}

impl crate::render::Render for StackRollback {
    fn text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for line in &self.handoff {
            writeln!(out, "rolled back {line}")?;
        }
        self.data.text(out)
    }
}

/// Undoes the stack's hand-off: env files get their recorded owner and mode back. Each record
/// leaves the state file only once its undo is done, so a killed rollback resumes.
pub fn rollback(
    root: &Root,
    stack: &str,
    stores: Option<&dyn Stores>,
    migrator: &dyn Migrator,
    progress: bool,
) -> Result<RollbackLines> {
    let mut lines = crate::reach::apply::rollback(root, stack)?;
    let state = State::read(root)?;
    let Some(rec) = state.handoff.get(stack).cloned() else {
        return Ok(lines);
    };
    let target = state
        .stacks
        .get(stack)
        .map(|r| (r.allocation.uid, r.allocation.gid))
        .ok_or_else(|| Error::Failed(format!("stack `{stack}` has no recorded allocation")))?;
    if let Some(line) = stop_service(root, stack, stores)? {
        lines.push(line);
    }
    for v in rec.volumes.iter().rev() {
        lines.push(rollback_volume(
            root,
            stack,
            v.clone(),
            target,
            migrator,
            progress,
        )?);
    }
    for e in rec.env_files.iter().rev() {
        let back = env_files::restored(e.was);
        match env_files::observe(root, &e.path)? {
            EnvFileFacts::File(_) => env_files::set_owner(root, &e.path, back)?,
            EnvFileFacts::Missing => {
                lines.push(format!(
                    "env file {} is gone; nothing to give back",
                    e.path.display()
                ));
                forget_env_file(root, stack, &e.path)?;
                continue;
            }
            other => {
                return Err(Error::Failed(format!(
                    "env file {} is no longer a regular file ({other:?}); left as is",
                    e.path.display()
                )))
            }
        }
        forget_env_file(root, stack, &e.path)?;
        lines.push(format!(
            "env file {}: owner {}:{}, mode {:04o} again",
            e.path.display(),
            back.uid,
            back.gid,
            back.mode
        ));
    }
    Ok(lines)
}

fn forget_env_file(root: &Root, stack: &str, path: &Path) -> Result<()> {
    let mut state = State::read(root)?;
    if let Some(rec) = state.handoff.get_mut(stack) {
        rec.env_files.retain(|r| r.path != path);
        if rec.is_empty() {
            state.handoff.remove(stack);
        }
    }
    state.write(root)
}

/// The first part of a rollback: the stack's compose service stops (so its containers no
/// longer hold the data), is disabled and its unit removed. None when there is none.
pub fn stop_service(
    root: &Root,
    stack: &str,
    stores: Option<&dyn Stores>,
) -> Result<Option<String>> {
    pause_service(root, stack, stores)?
        .map(|paused| paused.remove(root))
        .transpose()
}

/// Stops and disables the stack's compose service, keeping its unit and record (see
/// [`PausedService`]). None when there is none.
pub fn pause_service(
    root: &Root,
    stack: &str,
    stores: Option<&dyn Stores>,
) -> Result<Option<PausedService>> {
    let state = State::read(root)?;
    let (Some(svc), Some(rec)) = (
        state.handoff.get(stack).and_then(|r| r.service.clone()),
        state.stacks.get(stack),
    ) else {
        return Ok(None);
    };
    let uid = rec.allocation.uid;
    reach(stores, &svc, uid)?.stop_unit(uid, &svc.unit)?;
    Ok(Some(PausedService {
        stack: stack.to_string(),
        rec: svc,
        uid,
    }))
}

/// Whether the stack has hand-off changes a rollback would undo.
pub fn has_rollback(state: &State, stack: &str) -> bool {
    state
        .handoff
        .get(stack)
        .is_some_and(|r| !HandoffRecord::is_empty(r))
}

/// Copies one image and proves it by ID; an image the legacy store lacks is reported.
fn copy_image(
    stores: Option<&dyn Stores>,
    image: &str,
    from: (&str, u32),
    to: (&str, u32),
) -> Result<Outcome> {
    let stores = stores.ok_or_else(|| {
        Error::Failed(
            "copying images needs the podman sockets, but apply runs with --no-systemd".into(),
        )
    })?;
    stores.ensure_socket(from.1)?;
    let Some(want) = stores.image_id(from.1, image)? else {
        return Ok(Outcome::NotFound {
            detail: format!("{} has no image {image} in its podman store", from.0),
        });
    };
    stores.ensure_socket(to.1)?;
    if stores.image_id(to.1, image)?.as_deref() == Some(want.as_str()) {
        return Ok(Outcome::AlreadyPresent);
    }
    stores.copy_image(from.1, to.1, image)?;
    match stores.image_id(to.1, image)? {
        Some(got) if got == want => Ok(Outcome::Done),
        got => Err(Error::Failed(format!(
            "image {image} in {}'s store has ID {}, not {want} as in {}'s",
            to.0,
            got.as_deref()
                .unwrap_or("(none: the load named no such image)"),
            from.0
        ))),
    }
}
