//! Moving a named volume between the legacy user's store and the stack user's, phase by phase
//! with each phase in the state file first (so a re-run after kill -9 finishes it), and the
//! move back on rollback. The directory work itself is `handoff::volumes`.
use super::*;
use crate::model::RefusalKind;

/// Writes the volume's record (replacing the one of the same name) into the state file.
pub(super) fn record_volume(root: &Root, stack: &str, rec: &VolumeRecord) -> Result<()> {
    let mut state = State::read(root)?;
    let volumes = &mut state.handoff.entry(stack.to_string()).or_default().volumes;
    match volumes.iter_mut().find(|v| v.name == rec.name) {
        Some(v) => *v = rec.clone(),
        None => volumes.push(rec.clone()),
    }
    state.write(root)
}

pub(super) fn volume_record(root: &Root, stack: &str, name: &str) -> Result<Option<VolumeRecord>> {
    Ok(State::read(root)?
        .handoff
        .get(stack)
        .and_then(|r| r.volumes.iter().find(|v| v.name == name).cloned()))
}

pub(super) fn spec_of(rec: &VolumeRecord, target_uid: u32, target_gid: u32) -> MigrationSpec {
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

pub(super) fn not_done(what: &str, summary: &Summary) -> Option<HandoffError> {
    let problems = summary.problems();
    (!problems.is_empty()).then(|| HandoffError::NotDone {
        what: what.to_string(),
        problems,
    })
}

/// Volume `name`'s data directory `data` in a store (a path [`volumes::data_path`] computed),
/// pinned beneath its user's home. None when the store has no such volume directory.
pub(super) fn store_place(root: &Root, data: &Path, name: &str) -> Result<Option<Place>> {
    let home = volumes::home_of(data, name).ok_or_else(|| {
        Error::refused(RefusalKind::Handoff, format!(
            "{} is not where podman keeps a rootless user's volume {name} (HOME/{}/{name}/_data); isolate moves volumes only there: move this one by hand",
            data.display(),
            volumes::STORE_BELOW_HOME
        ))
    })?;
    Place::in_store(root, &home, name)
}

/// Like [`store_place`] for a volume directory that must exist.
pub(super) fn existing_store_place(root: &Root, data: &Path, name: &str) -> Result<Place> {
    store_place(root, data, name)?.ok_or_else(|| {
        Error::from(HandoffError::VolumeDirMissing {
            path: root.at(data),
        })
    })
}

/// Creates the stack's volume, moves the data to the staging directory, shifts its owners
/// there and puts it in place in the stack's store; each phase is in the state file before it
/// starts, so a killed run resumes where it stopped. Both stores are reached only where isolate
/// computed them, never through a link or across a mount, and only the directory the plan saw
/// (its owner and identity checked again) is moved.
pub(super) fn move_volume(
    root: &Root,
    step: &HandoffStep,
    stores: &Session<'_>,
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
                Error::from(HandoffError::NoLongerExists {
                    path: root.at(from),
                })
            })?;
            if from_id.is_none() || legacy.owned_dir(&shift.from)? != *from_id {
                return Err(Error::refused(
                    RefusalKind::Handoff,
                    format!(
                        "{} is no longer the directory the plan saw; nothing moved: plan again",
                        legacy.shown().display()
                    ),
                ));
            }
            legacy.check_tree(migrator.walk_sys(), &[&shift.from])?;
            stores.ensure_socket(*to_uid)?;
            let created = stores.create_volume(*to_uid, name, labels)?;
            if created.mountpoint != *to {
                return Err(HandoffError::VolumeElsewhere {
                    user: to_user.clone(),
                    name: name.clone(),
                    reported: created.mountpoint,
                    expected: to.clone(),
                }
                .into());
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
                return Err(HandoffError::RollbackInterrupted {
                    name: name.clone(),
                    stack: stack.to_string(),
                }
                .into())
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
                        if let Err(e) = staging.check_tree(migrator.walk_sys(), &[&rec.from_maps]) {
                            volumes::move_dir(&staging, &legacy, true, None)?;
                            forget_volume(root, stack, name)?;
                            return Err(e);
                        }
                    }
                    // Its volume directory went with the data (moved by an interrupted run).
                    None if staging.exists() => {
                        volumes::discard_partial(&staging)?;
                        staging.check_tree(migrator.walk_sys(), &[&rec.from_maps])?;
                    }
                    None => {
                        return Err(HandoffError::DataGone {
                            first: root.at(&rec.from),
                            second: staging_path,
                        }
                        .into())
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
                    return Ok((
                        Outcome::Failed {
                            error: error.to_string(),
                        },
                        Some(done),
                    ));
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
pub(super) fn forget_volume(root: &Root, stack: &str, name: &str) -> Result<()> {
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
pub(super) fn rollback_volume(
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
            Error::refused(RefusalKind::Handoff, format!(
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
                        return Err(HandoffError::DataGone {
                            first: root.at(&rec.to),
                            second: staging_path,
                        }
                        .into())
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
                    return Err(error.into());
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
