//! Moving a named volume's data directory from the legacy user's store to the stack user's:
//! a rename on the same filesystem, else a copy (to a side directory, renamed into place once
//! complete) and then removal of the original. Every state a kill -9 can leave is one a re-run
//! finishes from; the state file says which direction the move was going.
use crate::error::{Error, Result};
use crate::ids::IdMaps;
use crate::migration::MigrateMode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a volume's hand-off stands (in the state file, written before each phase starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumePhase {
    /// The data is on its way from the legacy store to the staging directory.
    Moving,
    /// In staging; its owners are being shifted (the walk's journal records it).
    Shifting,
    /// Shifted; on its way into the stack's store.
    Placing,
    Done,
    /// Rollback: on its way from the stack's store back to staging.
    Unplacing,
    /// Rollback: owners going back.
    Unshifting,
    /// Rollback: the data on its way back to the legacy store.
    MovingBack,
}

/// One named volume handed to a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    /// The legacy store's data directory (`.../volumes/NAME/_data`).
    pub from: PathBuf,
    /// The stack store's data directory.
    pub to: PathBuf,
    /// Where the owners are shifted, below isolate's root-owned state directory.
    pub staging: PathBuf,
    pub phase: VolumePhase,
    pub mode: MigrateMode,
    pub from_maps: IdMaps,
    pub to_maps: IdMaps,
    /// The walk's journal (relative to the root).
    pub journal: PathBuf,
}

/// How the data went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moved {
    Renamed,
    Copied,
    /// A previous, interrupted run had already moved it.
    AlreadyThere,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

/// The side directory a cross-filesystem copy is built in before it is renamed into place.
pub fn partial_of(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".isolate-partial");
    to.with_file_name(name)
}

/// Removes what an interrupted cross-filesystem copy into `to` left.
pub fn discard_partial(to: &Path) -> Result<()> {
    remove_tree(&partial_of(to))
}

/// Refuses a path with a symbolic link in a directory above it: the stores' directories
/// belong to their users, who could point one elsewhere.
fn refuse_links_above(p: &Path) -> Result<()> {
    let Some(parent) = p.parent() else {
        return Ok(());
    };
    let mut at = PathBuf::from("/");
    for c in parent.components().skip(1) {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Failed(format!(
                    "{} is a symbolic link; isolate never moves a volume through one",
                    at.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("stat", &at, e)),
        }
    }
    Ok(())
}

/// A directory that is really a directory (not a symbolic link to one).
fn is_real_dir(p: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_dir() => Ok(true),
        Ok(_) => Err(Error::Failed(format!(
            "{} is not a directory (a symbolic link or file stands there); left as is",
            p.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("stat", p, e)),
    }
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(p)
        .map_err(|e| io("list", p, e))?
        .next()
        .is_none())
}

/// A command that is killed when isolate dies (kill -9 included): an orphaned `cp` or `rm`
/// would go on writing while the re-run repairs the same directory.
fn tied(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// Removes a tree without following links or leaving its filesystem.
fn remove_tree(p: &Path) -> Result<()> {
    if !is_real_dir(p)? {
        return Ok(());
    }
    let out = tied("rm")
        .arg("-rf")
        .arg("--one-file-system")
        .arg("--")
        .arg(p)
        .output()
        .map_err(|e| io("running rm -rf on", p, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "rm -rf {}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

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

/// Whether `p` is a directory that holds something.
pub fn holds_data(p: &Path) -> Result<bool> {
    Ok(is_real_dir(p)? && !is_empty_dir(p)?)
}

/// Refuses a target directory that already holds something (a volume the stack made itself).
pub fn check_target(to: &Path) -> Result<()> {
    if is_real_dir(to)? && !is_empty_dir(to)? {
        return Err(Error::Failed(format!(
            "{} already holds data; isolate never mixes two volumes' data",
            to.display()
        )));
    }
    Ok(())
}

/// Moves directory `from` to `to`. `to` may be missing or an empty directory (which the
/// move replaces). Re-runnable after a crash at any point:
/// - `from` gone and `to` present: already moved;
/// - a side copy left over: thrown away and made again;
/// - `from` and a non-empty `to` both present while `resuming`: the copy was complete and
///   renamed into place (that rename is the copy's commit point), only the removal of `from`
///   was cut short.
pub fn move_dir(from: &Path, to: &Path, resuming: bool) -> Result<Moved> {
    for p in [from, to] {
        refuse_links_above(p)?;
    }
    let partial = partial_of(to);
    let from_there = is_real_dir(from)?;
    let to_there = is_real_dir(to)?;
    if !from_there {
        return if to_there {
            remove_tree(&partial)?;
            Ok(Moved::AlreadyThere)
        } else {
            Err(Error::Failed(format!(
                "neither {} nor {} exists: the volume's data is gone",
                from.display(),
                to.display()
            )))
        };
    }
    if to_there && !is_empty_dir(to)? {
        if resuming {
            remove_tree(from)?;
            return Ok(Moved::AlreadyThere);
        }
        return Err(Error::Failed(format!(
            "{} already holds data; isolate never mixes two volumes' data",
            to.display()
        )));
    }
    if to_there {
        std::fs::remove_dir(to).map_err(|e| io("remove the empty", to, e))?;
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => return Ok(Moved::Renamed),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => return Err(io(&format!("rename to {}:", to.display()), from, e)),
    }
    // Another filesystem: copy everything (owners, modes, ACLs, xattrs, hardlinks, links as
    // links) into the side directory, put it in place, then remove the original.
    remove_tree(&partial)?;
    let out = tied("cp")
        .args([
            "-a",
            "--no-dereference",
            "--one-file-system",
            "--no-target-directory",
            "--",
        ])
        .arg(from)
        .arg(&partial)
        .output()
        .map_err(|e| io("running cp -a on", from, e))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "cp -a {} {}: {}",
            from.display(),
            partial.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    sync_dir(&partial)?;
    std::fs::rename(&partial, to)
        .map_err(|e| io(&format!("rename to {}:", to.display()), &partial, e))?;
    if let Some(parent) = to.parent() {
        sync_dir(parent)?;
    }
    remove_tree(from)?;
    Ok(Moved::Copied)
}

/// syncfs of the filesystem holding `p`: the copy is on disk before it is put in place.
fn sync_dir(p: &Path) -> Result<()> {
    let f = std::fs::File::open(p).map_err(|e| io("open", p, e))?;
    rustix::fs::syncfs(&f).map_err(|e| io("syncfs", p, e.into()))
}
