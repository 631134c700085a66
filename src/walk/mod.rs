// Ownership migration over a stack's data: a symlink-proof, one-filesystem, parallel walk
// (traversal) with the per-inode work (shift, reown, rollback, survey) kept separate.
// OWNED BY THE WALK HELPER: the entry points below are what plan/apply call.
//
// Rules per id (uid and gid separately): shift moves an id of the legacy mapping to the same
// container id in the stack mapping; ids already in the stack mapping are "already" (so a
// re-run converges); others stay ("outside"). reown makes every id the stack user's; auto
// shifts what it can and reowns the rest. Ids inside ACL entries and v3 capability rootids
// are only ever shifted (reowning them would merge distinct entries).
//
// Journal: the caller passes one file per migration (convention:
// ROOT/var/lib/isolate/journal/STACK-N.journal; its directory is created 0700). migrate
// appends, synced before the chowns of each batch, the original owner, permission bits and
// capability of every inode it reowns or whose setuid/setgid bits or capability a chown
// drops. rollback inverse-shifts everything, then applies the journal in order.
// Limitation: an inode that was already in the stack mapping before the first migrate is
// indistinguishable from a shifted one, so rollback moves it to the legacy mapping.
pub mod journal;
pub mod owners;
pub mod sys;
pub mod traverse;
pub mod xattr;

use crate::error::{Error, Result};
use crate::ids::{Mapping, Shift};
use indicatif::{ProgressBar, ProgressStyle};
use journal::{Journal, Record};
use owners::{Owners, Rules};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;
use sys::WalkSys;
use traverse::{is_race, Tally};

/// How a stack's data changes owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MigrateMode {
    /// Ids in the legacy mapping move to the same container id in the stack's mapping.
    Shift,
    /// Everything becomes the stack user (container root); original owners are journalled.
    Reown,
    /// Shift what is in the legacy mapping, reown the rest.
    Auto,
}

/// What one migration of one data path does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSpec {
    pub mode: MigrateMode,
    /// legacy mapping -> stack mapping
    pub shift: Shift,
    /// Stack user's uid/gid: the reown target (container root).
    pub target_uid: u32,
    pub target_gid: u32,
}

/// Read-only counts for `plan`: what a migration would do per rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    pub inodes: u64,
    pub shift: u64,
    pub reown: u64,
    pub already: u64,
    pub outside: u64,
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub outside_samples: Vec<PathBuf>,
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub mounts_skipped: Vec<PathBuf>,
}

/// Summary printed after a migration or rollback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Inodes seen (each hardlinked inode once; mount points not counted).
    pub inodes: u64,
    /// Inodes whose owner, ACL or capability was rewritten.
    pub changed: u64,
    /// Inodes with an id moved by the shift (and none reowned).
    pub shifted: u64,
    /// Inodes with an id reowned to the stack user.
    pub reowned: u64,
    pub skipped_already: u64,
    /// Inodes with an id outside the source mapping, left as it was.
    pub skipped_outside: u64,
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub outside_samples: Vec<PathBuf>,
    /// Entries that changed under the walk (removed, renamed, swapped for a symlink): skipped.
    pub skipped_raced: u64,
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub raced_samples: Vec<PathBuf>,
    /// Mount points inside the data path (relative paths), not crossed.
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub mounts_skipped: Vec<PathBuf>,
    /// Records written to (migrate) or applied from (rollback) the journal.
    pub journalled: u64,
    /// Journal records whose inode was gone or replaced (rollback; migrate's crash repair).
    pub journal_missing: u64,
    /// Bytes in regular files seen.
    pub bytes: u64,
    pub seconds: f64,
}

/// Whether and how to show progress. Shown on stderr only when it is a terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub enabled: bool,
    /// Inodes expected (e.g. `Survey::inodes` from `plan`): gives a bar with an ETA;
    /// without it a counter with the rate is shown.
    pub expected_inodes: Option<u64>,
}

impl Progress {
    pub fn off() -> Progress {
        Progress::default()
    }

    fn bar(&self) -> Option<ProgressBar> {
        use std::io::IsTerminal;
        if !self.enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let (bar, template) = match self.expected_inodes {
            Some(n) => (
                ProgressBar::new(n),
                "{wide_bar} {human_pos}/{human_len} inodes {rate} ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} {human_pos} inodes {rate} {elapsed}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0} files/s", state.per_sec());
                },
            ));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(bar)
    }
}

// statfs f_type values of filesystems where a local root cannot chown.
const NFS_SUPER_MAGIC: i64 = 0x6969;
const SMB_SUPER_MAGIC: i64 = 0x517b;
const CIFS_SUPER_MAGIC: i64 = 0xff53_4d42;
const SMB2_SUPER_MAGIC: i64 = 0xfe53_4d42;
const V9FS_MAGIC: i64 = 0x0102_1997;
/// FUSE, which virtiofs also reports.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

fn remote_fs_name(fs_type: i64) -> Option<&'static str> {
    match fs_type {
        NFS_SUPER_MAGIC => Some("NFS"),
        SMB_SUPER_MAGIC | CIFS_SUPER_MAGIC | SMB2_SUPER_MAGIC => Some("CIFS/SMB"),
        V9FS_MAGIC => Some("9p"),
        FUSE_SUPER_MAGIC => Some("FUSE (or virtiofs)"),
        _ => None,
    }
}

/// Opens the data path after refusing one the walk must not touch: missing, not a
/// directory, or on a network/FUSE filesystem where chown by a local root fails.
fn open_data_path(sys: &dyn WalkSys, path: &Path) -> Result<OwnedFd> {
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "data path {} is not absolute",
            path.display()
        )));
    }
    let fd = match sys.open_root(path) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            return Err(Error::Refused(format!(
                "data path {} does not exist",
                path.display()
            )))
        }
        Err(Errno::NOTDIR) => {
            return Err(Error::Refused(format!(
                "data path {} is not a directory (or a symbolic link stands in it)",
                path.display()
            )))
        }
        Err(Errno::LOOP) => {
            return Err(Error::Refused(format!(
                "data path {} goes through a symbolic link; isolate never follows one: \
                 name the real directory in the policy",
                path.display()
            )))
        }
        Err(Errno::INVAL) => {
            return Err(Error::Refused(format!(
                "data path {} is not in normal form (no `.` or `..`)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Error::io(
                format!("open data path {}", path.display()),
                e.into(),
            ))
        }
    };
    let fs_type = sys
        .fs_type(fd.as_fd())
        .map_err(|e| Error::io(format!("statfs {}", path.display()), e.into()))?;
    if let Some(fs) = remote_fs_name(fs_type) {
        return Err(Error::Refused(format!(
            "data path {} is on {fs}: chown there fails with EPERM or is not kept \
             (the server owns the ids); run the migration on the file server itself \
             (shift or reown the export there), or move the data to a local filesystem first",
            path.display()
        )));
    }
    Ok(fd)
}

/// Refuses paths the walk must not touch: missing, not a directory, network/FUSE filesystems.
pub fn check_data_path(sys: &dyn WalkSys, path: &Path) -> Result<()> {
    open_data_path(sys, path).map(drop)
}

fn describe(mapping: &Mapping) -> String {
    let mut text = mapping.root.to_string();
    for r in &mapping.ranges {
        text.push_str(&format!(" + {r}"));
    }
    text
}

/// Refuses a spec whose shift is not reversible: source and target mappings overlap.
pub fn check_spec(spec: &MigrationSpec) -> Result<()> {
    let (from, to) = (&spec.shift.from, &spec.shift.to);
    // Reown with no legacy mapping: nothing is shifted (the identity), everything journalled.
    if spec.mode == MigrateMode::Reown && from == to {
        return Ok(());
    }
    for (what, a, b) in [("uid", &from.uid, &to.uid), ("gid", &from.gid, &to.gid)] {
        if a.overlaps(b) {
            return Err(Error::Refused(format!(
                "the legacy {what} mapping ({}) overlaps the stack's {what} mapping ({}): \
                 shifting between them would not be reversible; give the stack a subordinate \
                 range that does not overlap the legacy owner's",
                describe(a),
                describe(b)
            )));
        }
    }
    Ok(())
}

fn summary(tally: Tally, started: Instant) -> Summary {
    Summary {
        inodes: tally.inodes,
        changed: tally.changed,
        shifted: tally.shift,
        reowned: tally.reown,
        skipped_already: tally.already,
        skipped_outside: tally.outside,
        outside_samples: tally.outside_samples,
        skipped_raced: tally.raced,
        raced_samples: tally.raced_samples,
        mounts_skipped: tally.mounts_skipped,
        journalled: tally.journalled,
        journal_missing: 0,
        bytes: tally.bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Read-only walk: what `migrate` would do, per rule. An inode counts once as reown (some
/// id reowned), else shift (some id shifted), else already; `outside` counts inodes with
/// any id outside the source mapping (they may also count as shift).
pub fn survey(sys: &dyn WalkSys, path: &Path, spec: &MigrationSpec) -> Result<Survey> {
    check_spec(spec)?;
    let root = open_data_path(sys, path)?;
    let action = Owners {
        rules: Rules::new(&spec.shift, spec.mode, spec.target_uid, spec.target_gid),
        journal: None,
        read_only: true,
    };
    let tally = traverse::walk(sys, path, root, &action, None)?;
    Ok(Survey {
        inodes: tally.inodes,
        shift: tally.shift,
        reown: tally.reown,
        already: tally.already,
        outside: tally.outside,
        outside_samples: tally.outside_samples,
        mounts_skipped: tally.mounts_skipped,
    })
}

/// Migrates the owners under `path` by `spec`. Re-runnable after a crash at any point: it
/// first repairs what a previous run's journal says may have been cut short (setuid bits
/// and capabilities a chown dropped), then walks; ids already in the target mapping are
/// left, so the walk converges. Reowned inodes are journalled to `journal` (synced before
/// their chown); the journal is appended to, never truncated but for a torn last record.
pub fn migrate(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
) -> Result<Summary> {
    let started = Instant::now();
    check_spec(spec)?;
    let root = open_data_path(sys, path)?;
    let rules = Rules::new(&spec.shift, spec.mode, spec.target_uid, spec.target_gid);
    let mut resolver = Resolver::new(sys, root.as_fd());
    let mut repair = Tally::default();
    let mut missing = 0;
    let valid_len = journal::read(journal_path, |record| {
        repair_after_crash(&mut resolver, &rules, &record, &mut missing, &mut repair)
            .map_err(|f| std::io::Error::other(traverse::failure_error(path, f).to_string()))
    })
    .map_err(|e| Error::io(format!("read journal {}", journal_path.display()), e))?;
    drop(resolver);
    let journal = Journal::open(journal_path, valid_len)
        .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))?;
    let action = Owners {
        rules,
        journal: Some(&journal),
        read_only: false,
    };
    let bar = progress.bar();
    let tally = traverse::walk(sys, path, root, &action, bar.as_ref())?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut summary = summary(tally, started);
    summary.changed += repair.changed;
    summary.journal_missing = missing;
    Ok(summary)
}

/// Undoes `migrate`: every id in the stack mapping goes back to the legacy mapping (ACL
/// entries and capability rootids too), then every journalled inode gets exactly its
/// journalled owner, permission bits and capability back. Re-runnable; the journal is kept
/// (the caller archives or removes it once it has recorded the rollback).
pub fn rollback(
    sys: &dyn WalkSys,
    path: &Path,
    spec: &MigrationSpec,
    journal_path: &Path,
    progress: &Progress,
) -> Result<Summary> {
    let started = Instant::now();
    check_spec(spec)?;
    let root = open_data_path(sys, path)?;
    let phase_two_root = root
        .try_clone()
        .map_err(|e| Error::io("duplicate the data path fd", e))?;
    let inverse = spec.shift.inverse();
    let action = Owners {
        rules: Rules::new(
            &inverse,
            MigrateMode::Shift,
            inverse.to.uid.root,
            inverse.to.gid.root,
        ),
        journal: None,
        read_only: false,
    };
    let bar = progress.bar();
    let tally = traverse::walk(sys, path, root, &action, bar.as_ref())?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut summary = summary(tally, started);
    let mut resolver = Resolver::new(sys, phase_two_root.as_fd());
    let (mut restored, mut missing) = (0u64, 0u64);
    journal::read(journal_path, |record| {
        restore(&mut resolver, &record, &mut restored, &mut missing)
            .map_err(|f| std::io::Error::other(traverse::failure_error(path, f).to_string()))
    })
    .map_err(|e| {
        Error::io(
            format!("roll back from journal {}", journal_path.display()),
            e,
        )
    })?;
    summary.journalled = restored;
    summary.journal_missing = missing;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Finds journalled paths again, fd-relative from the data path, never following a symlink
/// or crossing a mount; keeps the last parent directory open (records come per directory).
struct Resolver<'a> {
    sys: &'a dyn WalkSys,
    root: BorrowedFd<'a>,
    parent: Option<(PathBuf, OwnedFd)>,
}

impl<'a> Resolver<'a> {
    fn new(sys: &'a dyn WalkSys, root: BorrowedFd<'a>) -> Self {
        Resolver {
            sys,
            root,
            parent: None,
        }
    }

    /// Runs `f` on (directory, name) of `rel`; Err when a component is gone or not a plain
    /// directory any more.
    fn at<T>(
        &mut self,
        rel: &Path,
        f: impl FnOnce(BorrowedFd<'_>, &CStr) -> T,
    ) -> std::result::Result<T, Errno> {
        let Some(name) = rel.file_name() else {
            return if rel.as_os_str().is_empty() {
                Ok(f(self.root, c""))
            } else {
                Err(Errno::NOENT)
            };
        };
        let name = CString::new(name.as_bytes()).map_err(|_| Errno::INVAL)?;
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        if parent_rel.as_os_str().is_empty() {
            return Ok(f(self.root, &name));
        }
        if self.parent.as_ref().map(|(p, _)| p.as_path()) != Some(parent_rel) {
            self.parent = None;
            let mut dir: Option<OwnedFd> = None;
            for component in parent_rel.components() {
                let Component::Normal(part) = component else {
                    return Err(Errno::NOENT);
                };
                let part = CString::new(part.as_bytes()).map_err(|_| Errno::INVAL)?;
                let base = dir.as_ref().map(|d| d.as_fd()).unwrap_or(self.root);
                dir = Some(self.sys.open_subdir(base, &part)?);
            }
            self.parent = Some((parent_rel.to_path_buf(), dir.ok_or(Errno::NOENT)?));
        }
        let (_, dir) = self.parent.as_ref().expect("just opened");
        Ok(f(dir.as_fd(), &name))
    }
}

fn record_failure(op: &'static str, record: &Record, errno: Errno) -> traverse::Failure {
    traverse::Failure {
        op,
        rel: record.path.clone(),
        errno,
    }
}

/// Finishes what a crashed run may have left half done on one journalled inode: it was
/// chowned (its owner is what the rules give) but its setuid bits or capability were not
/// put back yet.
fn repair_after_crash(
    resolver: &mut Resolver<'_>,
    rules: &Rules,
    record: &Record,
    missing: &mut u64,
    tally: &mut Tally,
) -> std::result::Result<(), traverse::Failure> {
    let sys = resolver.sys;
    let outcome = resolver.at(&record.path, |dir, name| {
        let st = sys.stat(dir, name).map_err(|e| ("stat", e))?;
        if st.ino != record.ino {
            return Err(("stat", Errno::NOENT));
        }
        let owner = rules.owner(record.uid, record.gid);
        if owner == (record.uid, record.gid) || owner != (st.uid, st.gid) {
            return Ok(());
        }
        if let Some(caps) = &record.caps {
            let expected = rules.cap(caps);
            let current = sys
                .get_xattr(dir, name, xattr::CAPABILITY)
                .map_err(|e| ("read security.capability of", e))?;
            if current.as_deref() != Some(&expected[..]) {
                sys.set_xattr(dir, name, xattr::CAPABILITY, &expected)
                    .map_err(|e| ("write security.capability of", e))?;
                tally.changed += 1;
            }
        }
        if !st.is_symlink() && record.perm & 0o6000 != 0 && st.perm() != record.perm {
            sys.chmod(dir, name, record.perm)
                .map_err(|e| ("chmod", e))?;
            tally.changed += 1;
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => Ok(()),
        Err(e) | Ok(Err((_, e))) if is_race(e) => {
            *missing += 1;
            Ok(())
        }
        Err(e) => Err(record_failure("open", record, e)),
        Ok(Err((op, e))) => Err(record_failure(op, record, e)),
    }
}

/// Puts one journalled inode back exactly: owner, permission bits, capability.
fn restore(
    resolver: &mut Resolver<'_>,
    record: &Record,
    restored: &mut u64,
    missing: &mut u64,
) -> std::result::Result<(), traverse::Failure> {
    let sys = resolver.sys;
    let outcome = resolver.at(&record.path, |dir, name| {
        let st = sys.stat(dir, name).map_err(|e| ("stat", e))?;
        if st.ino != record.ino {
            return Err(("stat", Errno::NOENT));
        }
        if (st.uid, st.gid) != (record.uid, record.gid) {
            sys.chown(dir, name, record.uid, record.gid)
                .map_err(|e| ("chown", e))?;
        }
        if let Some(caps) = &record.caps {
            let current = sys
                .get_xattr(dir, name, xattr::CAPABILITY)
                .map_err(|e| ("read security.capability of", e))?;
            if current.as_deref() != Some(&caps[..]) {
                sys.set_xattr(dir, name, xattr::CAPABILITY, caps)
                    .map_err(|e| ("write security.capability of", e))?;
            }
        }
        if !st.is_symlink() {
            // chown above may have cleared setuid/setgid: compare with what was there.
            let now = sys.stat(dir, name).map_err(|e| ("stat", e))?;
            if now.perm() != record.perm {
                sys.chmod(dir, name, record.perm)
                    .map_err(|e| ("chmod", e))?;
            }
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => {
            *restored += 1;
            Ok(())
        }
        Err(e) | Ok(Err((_, e))) if is_race(e) => {
            *missing += 1;
            Ok(())
        }
        Err(e) => Err(record_failure("open", record, e)),
        Ok(Err((op, e))) => Err(record_failure(op, record, e)),
    }
}
