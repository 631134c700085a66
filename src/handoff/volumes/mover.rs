//! Moving a volume's data directory between two places: rename on one filesystem, else a copy
//! into a side directory put in place once complete, then the original removed; every state
//! a kill -9 leaves is one a re-run finishes from.
use super::*;
use crate::model::RefusalKind;

/// Creates the (root-owned, 0700) directories above a staging directory.
pub fn make_private_parent(staging: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(parent) = staging.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| io("create", parent, e))
}

/// Refuses a target that already holds something (a volume the stack made itself).
pub fn check_target(to: &Place) -> Result<()> {
    if to.holds_data()? {
        return Err(HandoffError::TargetHoldsData {
            path: to.shown.clone(),
        }
        .into());
    }
    Ok(())
}

/// Removes what an interrupted cross-filesystem copy into `to` left.
pub fn discard_partial(to: &Place) -> Result<()> {
    to.partial()?.remove()
}

/// Moves the directory at `from` to `to`. `to` may be missing or an empty directory (which
/// the move replaces). `expect`: the identity `from` must have (what the plan saw); the
/// directory moved is checked to be that one. Re-runnable after a crash at any point:
/// - `from` gone and `to` present: already moved;
/// - a side copy left over: thrown away and made again;
/// - `from` and a non-empty `to` both present while `resuming`: the copy was complete and
///   renamed into place (that rename is the copy's commit point), only the removal of `from`
///   was cut short.
pub fn move_dir(from: &Place, to: &Place, resuming: bool, expect: Option<DirId>) -> Result<Moved> {
    let partial = to.partial()?;
    let to_full = to.holds_data()?;
    if to_full && resuming {
        // The move was complete (a rename, or a copy's commit); only the removal of the
        // original may have been cut short. Only the directory the plan saw is removed.
        if let Some(id) = from.identity() {
            if expect.is_none_or(|want| want == id) {
                from.remove()?;
            }
        }
        partial.remove()?;
        return Ok(Moved::AlreadyThere);
    }
    let Some(from_st) = from.stat()? else {
        return if to.stat()?.is_some() {
            partial.remove()?;
            Ok(Moved::AlreadyThere)
        } else {
            Err(HandoffError::DataGone {
                first: from.shown.clone(),
                second: to.shown.clone(),
            }
            .into())
        };
    };
    let from_id = DirId::of(&from_st);
    if let Some(want) = expect {
        if want != from_id {
            return Err(Error::refused(RefusalKind::Handoff, format!(
                "{} is not the directory the plan saw (device {} inode {}, now device {} inode {}); nothing moved: plan again",
                from.shown.display(),
                want.dev,
                want.ino,
                from_id.dev,
                from_id.ino
            )));
        }
    }
    if to_full {
        return Err(HandoffError::TargetHoldsData {
            path: to.shown.clone(),
        }
        .into());
    }
    if to.stat()?.is_some() {
        rustix::fs::unlinkat(&to.dir, &to.name, AtFlags::REMOVEDIR)
            .map_err(|e| io("remove the empty", &to.shown, e.into()))?;
    }
    match rustix::fs::renameat_with(
        &from.dir,
        &from.name,
        &to.dir,
        &to.name,
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => {
            if to.identity() != Some(from_id) {
                // Swapped between the check and the rename: give it back untouched.
                let _ = rustix::fs::renameat_with(
                    &to.dir,
                    &to.name,
                    &from.dir,
                    &from.name,
                    RenameFlags::NOREPLACE,
                );
                return Err(Error::refused(
                    RefusalKind::Handoff,
                    format!(
                        "{} was replaced while isolate moved it; put back, nothing moved",
                        from.shown.display()
                    ),
                ));
            }
            return Ok(Moved::Renamed);
        }
        Err(Errno::XDEV) => {}
        Err(e) => {
            return Err(io(
                &format!("rename to {}:", to.shown.display()),
                &from.shown,
                e.into(),
            ))
        }
    }
    // Another filesystem: copy everything (owners, modes, ACLs, xattrs, hardlinks, links as
    // links) from the pinned source into the pinned side directory, put it in place, then
    // remove the original.
    partial.remove()?;
    rustix::fs::mkdirat(&to.dir, &partial.name, Mode::from_raw_mode(0o700))
        .map_err(|e| io("create", &partial.shown, e.into()))?;
    let dst = partial.open()?;
    let src = from.open()?;
    let src_id = rustix::fs::fstat(&src).map_err(|e| io("stat", &from.shown, e.into()))?;
    if DirId::of(&src_id) != from_id {
        return Err(Error::refused(
            RefusalKind::Handoff,
            format!(
                "{} was replaced while isolate moved it; nothing moved",
                from.shown.display()
            ),
        ));
    }
    let out = tied("cp", &[src.as_raw_fd(), dst.as_raw_fd()])
        .args([
            "-a",
            "--no-dereference",
            "--one-file-system",
            "--no-target-directory",
            "--",
        ])
        .arg(proc_fd(&src).join("."))
        .arg(proc_fd(&dst).join("."))
        .output()
        .map_err(|e| io("running cp -a on", &from.shown, e))?;
    if !out.status.success() {
        return Err(HandoffError::CopyFailed {
            from: from.shown.clone(),
            to: partial.shown.clone(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    // The copy is on disk before it is put in place.
    rustix::fs::syncfs(&dst).map_err(|e| io("syncfs", &partial.shown, e.into()))?;
    rustix::fs::renameat_with(
        &to.dir,
        &partial.name,
        &to.dir,
        &to.name,
        RenameFlags::NOREPLACE,
    )
    .map_err(|e| {
        io(
            &format!("rename to {}:", to.shown.display()),
            &partial.shown,
            e.into(),
        )
    })?;
    rustix::fs::fsync(&to.dir).map_err(|e| io("sync", &to.shown, e.into()))?;
    let copy = rustix::fs::fstat(&dst).map_err(|e| io("stat", &partial.shown, e.into()))?;
    if to.identity() != Some(DirId::of(&copy)) {
        return Err(HandoffError::NotOurCopy {
            copy: to.shown.clone(),
            original: from.shown.clone(),
        }
        .into());
    }
    // Only the directory that was copied is removed.
    if from.identity() == Some(from_id) {
        from.remove()?;
    }
    Ok(Moved::Copied)
}
