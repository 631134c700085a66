//! Carries out hand-off steps: records what a step changes in the state file before it
//! changes it, re-checks the precondition so a re-run converges, and undoes it all on rollback.
use super::env_files::{self, EnvFileFacts, EnvFileRecord};
use super::service::ServiceRecord;
use super::stores::Stores;
use super::volumes::{self, Place, VolumePhase, VolumeRecord};
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
            stack,
            path,
            was,
            id,
            to,
            ..
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
            if now.id == *id && now.links == 1 && env_files::is_handed(&now.owner, to.uid, to.gid) {
                return Ok(Outcome::AlreadyPresent);
            }
            let expected = env_files::Expected {
                uid: was.uid,
                id: Some(*id),
            };
            // The original owner is on disk before the file changes; a re-run after a crash
            // keeps the first record of the same inode (it may already be half changed); a
            // file replaced since is another file, with its own record.
            let mut state = State::read(root)?;
            let rec = state.handoff.entry(stack.clone()).or_default();
            let same = |r: &EnvFileRecord| &r.path == path && r.id.is_none_or(|r| r == *id);
            if !rec.env_files.iter().any(same) {
                rec.env_files.retain(|r| &r.path != path);
                rec.env_files.push(EnvFileRecord {
                    path: path.clone(),
                    was: now.owner,
                    id: Some(*id),
                });
                state.write(root)?;
            }
            env_files::set_owner(root, path, &expected, *to)?;
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
        copies,
    } = step
    else {
        unreachable!("install_service gets InstallService steps only")
    };
    // Each original must still be what plan showed; a copy that differs is written below.
    let mut stale = Vec::new();
    for c in copies {
        let now = super::copies::wanted(root, stack, c.kind, &c.from, &c.owners)
            .map_err(|e| Error::Failed(format!("{} cannot be copied: {e}", c.from.display())))?;
        if now != c.content {
            return Err(Error::Failed(format!(
                "{} changed since the plan; run `isolate plan` to see the change, then apply again",
                c.from.display()
            )));
        }
        if super::copies::current(root, &c.to).as_ref() != Some(&c.content) {
            stale.push(c);
        }
    }
    let current = super::service::read_unit(root, path);
    if stale.is_empty()
        && current.as_deref() == Some(text.as_str())
        && stores.unit_state(user, *uid, unit) == Some((true, true))
        && super::service::project_running(stores, *uid, project)?.is_ok()
    {
        return Ok(Outcome::AlreadyPresent);
    }
    let mut state = State::read(root)?;
    state.handoff.entry(stack.clone()).or_default().service = Some(ServiceRecord {
        unit: unit.clone(),
        path: path.clone(),
    });
    state.write(root)?;
    for c in stale {
        super::copies::write(root, stack, *gid, &c.to, &c.content)?;
    }
    super::service::write_unit(root, path, home, text, *uid, *gid)?;
    stores.start_unit(*uid, unit)?;
    super::service::wait_project_running(stores, *uid, user, unit, project)?;
    Ok(Outcome::Done)
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
        super::copies::remove(root, &self.stack)?;
        let mut state = State::read(root)?;
        if let Some(r) = state.handoff.get_mut(&self.stack) {
            r.service = None;
            if r.is_empty() {
                state.handoff.remove(&self.stack);
            }
        }
        state.write(root)?;
        Ok(format!(
            "service {}: stopped, disabled and removed ({}, and isolate's copies of its files)",
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

/// Volume `name`'s data directory `data` in a store (a path [`volumes::data_path`] computed),
/// pinned beneath its user's home. None when the store has no such volume directory.
fn store_place(root: &Root, data: &Path, name: &str) -> Result<Option<Place>> {
    let home = volumes::home_of(data, name).ok_or_else(|| {
        Error::Refused(format!(
            "{} is not where podman keeps a rootless user's volume {name} (HOME/{}/{name}/_data); isolate moves volumes only there: move this one by hand",
            data.display(),
            volumes::STORE_BELOW_HOME
        ))
    })?;
    Place::in_store(root, &home, name)
}

/// Like [`store_place`] for a volume directory that must exist.
fn existing_store_place(root: &Root, data: &Path, name: &str) -> Result<Place> {
    store_place(root, data, name)?.ok_or_else(|| {
        Error::Failed(format!(
            "the volume directory of {} does not exist",
            root.at(data).display()
        ))
    })
}

/// Creates the stack's volume, moves the data to the staging directory, shifts its owners
/// there and puts it in place in the stack's store; each phase is in the state file before it
/// starts, so a killed run resumes where it stopped. Both stores are reached only where isolate
/// computed them, never through a link or across a mount, and only the directory the plan saw
/// (its owner and identity checked again) is moved.
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
        from_id,
        to,
        to_user,
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
            // Checked before anything is created or recorded.
            let legacy = store_place(root, from, name)?.ok_or_else(|| {
                Error::Failed(format!("{} no longer exists", root.at(from).display()))
            })?;
            if from_id.is_none() || legacy.owned_dir(&shift.from)? != *from_id {
                return Err(Error::Refused(format!(
                    "{} is no longer the directory the plan saw; nothing moved: plan again",
                    legacy.shown().display()
                )));
            }
            legacy.check_tree(&[&shift.from])?;
            stores.ensure_socket(*to_uid)?;
            let created = stores.create_volume(*to_uid, name, labels)?;
            if created.mountpoint != *to {
                return Err(Error::Failed(format!(
                    "{to_user}'s podman reports its volume {name} at {}, not at {} where isolate puts the data; nothing moved",
                    created.mountpoint.display(),
                    to.display()
                )));
            }
            // A resumed move takes a full target for a finished copy.
            volumes::check_target(&existing_store_place(root, to, name)?)?;
            let staging = staging_of(stack, name);
            volumes::check_target(&Place::private(root, &staging)?)?;
            VolumeRecord {
                name: name.clone(),
                from: from.clone(),
                to: to.clone(),
                staging,
                phase: VolumePhase::Moving,
                mode: *mode,
                from_maps: shift.from.clone(),
                to_maps: shift.to.clone(),
                journal: crate::layout::journal(stack, &Path::new("/volumes").join(name)),
                from_id: *from_id,
            }
        }
    };
    let staging_path = root.at(&rec.staging);
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
                let staging = Place::private(root, &rec.staging)?;
                match store_place(root, &rec.from, name)? {
                    Some(legacy) => {
                        if !staging.exists() {
                            legacy.owned_dir(&rec.from_maps)?;
                        }
                        volumes::move_dir(&legacy, &staging, resuming, rec.from_id)?;
                        // Checked again where no one else reaches it any more: what came into
                        // her store since the check above goes back with the rest, untouched.
                        if let Err(e) = staging.check_tree(&[&rec.from_maps]) {
                            volumes::move_dir(&staging, &legacy, true, None)?;
                            forget_volume(root, stack, name)?;
                            return Err(e);
                        }
                    }
                    // Its volume directory went with the data (moved by an interrupted run).
                    None if staging.exists() => {
                        volumes::discard_partial(&staging)?;
                        staging.check_tree(&[&rec.from_maps])?;
                    }
                    None => {
                        return Err(Error::Failed(format!(
                            "neither {} nor {} exists: the volume's data is gone",
                            root.at(&rec.from).display(),
                            staging_path.display()
                        )))
                    }
                }
                rec.phase = VolumePhase::Shifting;
            }
            VolumePhase::Shifting => {
                record_volume(root, stack, &rec)?;
                let done = migrator.migrate(
                    &staging_path,
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
                volumes::move_dir(
                    &Place::private(root, &rec.staging)?,
                    &existing_store_place(root, &rec.to, name)?,
                    true,
                    None,
                )?;
                rec.phase = VolumePhase::Done;
                record_volume(root, stack, &rec)?;
            }
        }
    }
}

/// Drops the volume's record (its data is back where it was).
fn forget_volume(root: &Root, stack: &str, name: &str) -> Result<()> {
    let mut state = State::read(root)?;
    if let Some(r) = state.handoff.get_mut(stack) {
        r.volumes.retain(|v| v.name != name);
        if r.is_empty() {
            state.handoff.remove(stack);
        }
    }
    state.write(root)
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
    let name = rec.name.clone();
    let staging_path = root.at(&rec.staging);
    let staging = Place::private(root, &rec.staging)?;
    // The legacy store's volume directory, made again (as its user's) if removed meanwhile.
    let legacy_owner = (
        rec.from_maps.uid.to_host(0).unwrap_or(target.0),
        rec.from_maps.gid.to_host(0).unwrap_or(target.1),
    );
    let legacy = |rec: &VolumeRecord| -> Result<Place> {
        let home = volumes::home_of(&rec.from, &name).ok_or_else(|| {
            Error::Refused(format!(
                "{} is not where podman keeps a rootless user's volume {name}; give the data in {} back by hand",
                rec.from.display(),
                staging_path.display()
            ))
        })?;
        Place::in_store_creating(root, &home, &name, legacy_owner)
    };
    loop {
        match rec.phase {
            VolumePhase::Moving => {
                // Interrupted before its owners changed: the data is wherever the move left it.
                let from = legacy(&rec)?;
                if from.exists() {
                    volumes::discard_partial(&staging)?;
                } else {
                    volumes::move_dir(&staging, &from, true, None)?;
                }
                break;
            }
            VolumePhase::Done | VolumePhase::Placing | VolumePhase::Unplacing => {
                rec.phase = VolumePhase::Unplacing;
                record_volume(root, stack, &rec)?;
                let to = store_place(root, &rec.to, &name)?;
                match to {
                    Some(to) if to.holds_data()? || !staging.exists() => {
                        volumes::move_dir(&to, &staging, true, None)?;
                    }
                    None if !staging.exists() => {
                        return Err(Error::Failed(format!(
                            "neither {} nor {} exists: the volume's data is gone",
                            root.at(&rec.to).display(),
                            staging_path.display()
                        )))
                    }
                    _ => {}
                }
                rec.phase = VolumePhase::Unshifting;
            }
            VolumePhase::Shifting | VolumePhase::Unshifting => {
                rec.phase = VolumePhase::Unshifting;
                record_volume(root, stack, &rec)?;
                let done = migrator.rollback(
                    &staging_path,
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
                volumes::move_dir(&staging, &legacy(&rec)?, true, None)?;
                break;
            }
        }
    }
    // The stack's store keeps its (now empty) volume.
    if let Some(to) = store_place(root, &rec.to, &name)? {
        to.keep_empty_dir(target)?;
    }
    forget_volume(root, stack, &rec.name)?;
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
            // Only the inode handed over, still the stack's with one name, goes back.
            EnvFileFacts::File(f)
                if f.owner.uid == target.0 && f.links == 1 && e.id.is_none_or(|id| id == f.id) =>
            {
                let expected = env_files::Expected {
                    uid: target.0,
                    id: Some(f.id),
                };
                env_files::set_owner(root, &e.path, &expected, back)?
            }
            EnvFileFacts::File(f) => {
                lines.push(format!(
                    "env file {} is no longer the file handed over (owner uid {}, {} names); left as is",
                    e.path.display(),
                    f.owner.uid,
                    f.links
                ));
                forget_env_file(root, stack, &e.path)?;
                continue;
            }
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
