//! Ownership migration over a stack's data: the entry points plan and apply call
//! (`check_data_path`, `survey`, `migrate`, `rollback`, `create_data_dir`), built from a
//! symlink-proof, one-mount, parallel traversal (`traverse`) that carries per-inode actions
//! (`action/`), a write-ahead journal (`journal`) and a verification pass.
//!
//! Rules per id (uid and gid separately): shift moves an id of the legacy mapping to the same
//! container id in the stack mapping; ids already in the stack mapping are "already" (so a
//! re-run converges); others stay ("outside"). reown makes every id the stack user's; auto
//! shifts what it can and reowns the rest. Ids inside ACL entries and v3 capability rootids
//! are only ever shifted (reowning them would merge distinct entries).
//!
//! Journal: the caller passes one file per migration. migrate appends, synced before the
//! changes of each batch, the identity (inode number and creation time), original owner,
//! permission bits and capability of every inode it reowns, whose setuid/setgid bits or
//! capability a chown drops, or whose capability it rewrites; after the change it appends
//! the inode's ctime. Every later change isolate makes to a privileged journalled inode
//! (each step of its migration, the crash repair's, a rollback's) appends the ctime it left,
//! so isolate's own changes never count as someone else's. setuid/setgid bits and
//! capabilities are given back (by the crash repair or a rollback) only where the ctime is
//! one isolate left (any write, chmod, chown or link change moves ctime, and userspace
//! cannot set it back); otherwise the owner comes back without them, the file is listed
//! and the step is not done. A record applies only to the inode it was written for.
//! Limitation: a kill in the microseconds between a change and its line leaves that file
//! unproven: withheld and listed, never given back on a guess.
//! Limitation: an inode that was already in the stack mapping before the first migrate is
//! indistinguishable from a shifted one, so rollback moves it to the legacy mapping.
pub mod action;
pub mod journal;
mod links;
mod replay;
pub mod rules;
pub mod sys;
pub mod threads;
pub mod traverse;
pub mod xattr;

use crate::error::{Error, Result};
use crate::ids::Mapping;
use crate::migration::{MigrateMode, MigrationSpec, OutsideLinks};
use action::migrate::Migrate;
use action::rollback::Rollback;
use action::survey::{Survey as SurveyAction, SurveyTally};
use indicatif::{ProgressBar, ProgressStyle};
use rules::Rules;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;
use sys::WalkSys;
pub use traverse::Samples;
use traverse::{Counts, Walked};

/// Read-only counts for `plan`: what a migration would do per rule, and what it could not.
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
    /// chattr +i / +a inodes the migration would have to change: it cannot.
    #[serde(default)]
    pub immutable: Samples,
    /// Inodes with links outside the data path: never changed.
    #[serde(default)]
    pub outside_links: Samples,
    /// ACLs whose entries would collide once mapped.
    #[serde(default)]
    pub acl_unmapped: Samples,
}

impl Survey {
    /// What apply will not be able to change, one line each (empty when nothing).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let list = |s: &Samples| {
            s.samples
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.mounts_skipped.is_empty() {
            out.push(format!(
                "{} mount point(s) inside the data are not crossed and stay unmigrated: {}",
                self.mounts_skipped.len(),
                self.mounts_skipped
                    .iter()
                    .take(traverse::SAMPLES)
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.immutable.is_empty() {
            out.push(format!(
                "{} immutable or append-only file(s) (chattr +i/+a) cannot change owner: {}",
                self.immutable.count,
                list(&self.immutable)
            ));
        }
        if !self.outside_links.is_empty() {
            out.push(format!(
                "{} file(s) with hardlinks outside the data path are never changed: {}",
                self.outside_links.count,
                list(&self.outside_links)
            ));
        }
        if !self.acl_unmapped.is_empty() {
            out.push(format!(
                "{} ACL(s) hold entries that would collide once mapped: {}",
                self.acl_unmapped.count,
                list(&self.acl_unmapped)
            ));
        }
        out
    }
}

/// Summary printed after a migration or rollback. Its "left" counts come from a read-only
/// verification walk made after the change.
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
    /// Entries that changed under the walk (removed, renamed, swapped for a symlink, or not
    /// the inode planned once pinned): skipped.
    pub skipped_raced: u64,
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub raced_samples: Vec<PathBuf>,
    /// Mount points inside the data path (relative paths), not crossed.
    #[serde(serialize_with = "crate::render::escape::json_paths")]
    pub mounts_skipped: Vec<PathBuf>,
    /// Inodes with links outside the data path, never changed.
    #[serde(default)]
    pub outside_links: Samples,
    /// Whether the policy accepts them (`outside_hardlinks = "skip"`).
    #[serde(default)]
    pub outside_links_accepted: bool,
    /// Inodes a syscall failed on, with the first messages.
    #[serde(default)]
    pub failed: Samples,
    #[serde(default)]
    pub failure_messages: Vec<String>,
    /// chattr +i / +a inodes that needed a change.
    #[serde(default)]
    pub immutable: Samples,
    /// ACLs whose entries would have collided once mapped: left as they were.
    #[serde(default)]
    pub acl_unmapped: Samples,
    /// Files that lack the setuid/setgid bits or capability the journal says they had,
    /// because they changed since isolate last changed them (or cannot be proven not to):
    /// rollback gave their owner back without them; migrate's crash repair left them.
    #[serde(default)]
    pub privilege_withheld: Samples,
    /// What the verification walk found still in the source mapping afterwards.
    #[serde(default)]
    pub left: Samples,
    /// Records written to (migrate) or applied from (rollback) the journal.
    pub journalled: u64,
    /// Journal records whose inode was gone or replaced (rollback; migrate's crash repair).
    pub journal_missing: u64,
    /// Bytes in regular files seen.
    pub bytes: u64,
    pub seconds: f64,
}

fn list(s: &Samples) -> String {
    let mut text = s
        .samples
        .iter()
        .map(|p| {
            if p.as_os_str().is_empty() {
                ".".to_string()
            } else {
                p.display().to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if s.count > s.samples.len() as u64 {
        text.push_str(", ...");
    }
    text
}

impl Summary {
    /// Why the step is not done, one line each; empty when it is.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.left.is_empty() {
            out.push(format!(
                "{} inode(s) are still in the source mapping: {}",
                self.left.count,
                list(&self.left)
            ));
        }
        if self.skipped_raced > 0 {
            let raced = Samples {
                count: self.skipped_raced,
                samples: self.raced_samples.clone(),
            };
            out.push(format!(
                "{} entries changed under the walk and were not touched: {}",
                self.skipped_raced,
                list(&raced)
            ));
        }
        if !self.mounts_skipped.is_empty() {
            let mounts = Samples {
                count: self.mounts_skipped.len() as u64,
                samples: self.mounts_skipped.clone(),
            };
            out.push(format!(
                "{} mount point(s) inside the data were not crossed: {}; unmount them (or \
                 migrate each on its own) and apply again",
                self.mounts_skipped.len(),
                list(&mounts)
            ));
        }
        if !self.outside_links.is_empty() && !self.outside_links_accepted {
            out.push(format!(
                "{} file(s) have hardlinks outside the data path and were not changed: {}; \
                 remove those links (or set outside_hardlinks = \"skip\" for the stack)",
                self.outside_links.count,
                list(&self.outside_links)
            ));
        }
        if !self.immutable.is_empty() {
            out.push(format!(
                "{} immutable or append-only file(s) could not change: {}; `chattr -i -a` them \
                 and apply again",
                self.immutable.count,
                list(&self.immutable)
            ));
        }
        if !self.acl_unmapped.is_empty() {
            out.push(format!(
                "{} ACL(s) hold entries that would collide once mapped (left unchanged): {}",
                self.acl_unmapped.count,
                list(&self.acl_unmapped)
            ));
        }
        if !self.privilege_withheld.is_empty() {
            out.push(format!(
                "{} file(s) did not get their setuid/setgid bits or capability back, because \
                 they changed since isolate last changed them (so their content may not be \
                 what it was): {}; if you trust them, put the bits back by hand (chmod, \
                 setcap) and run again",
                self.privilege_withheld.count,
                list(&self.privilege_withheld)
            ));
        }
        if !self.failed.is_empty() {
            out.push(format!(
                "{} inode(s) failed: {}",
                self.failed.count,
                self.failure_messages.join("; ")
            ));
        }
        out
    }

    /// Takes the verification walk's findings: what is left, and entries it could not
    /// look at (raced), which leave the result uncertain.
    fn verify(&mut self, found: Walked<SurveyTally>) {
        self.left = found.tally.pending;
        let raced = found.counts.raced;
        self.skipped_raced += raced.count;
        let room = traverse::SAMPLES.saturating_sub(self.raced_samples.len());
        self.raced_samples
            .extend(raced.samples.into_iter().take(room));
    }

    fn from_walk(counts: Counts, decisions: SurveyTally, journalled: u64) -> Summary {
        Summary {
            inodes: counts.inodes,
            changed: counts.changed,
            shifted: decisions.shift,
            reowned: decisions.reown,
            skipped_already: decisions.already,
            skipped_outside: decisions.outside.count,
            outside_samples: decisions.outside.samples,
            skipped_raced: counts.raced.count,
            raced_samples: counts.raced.samples,
            mounts_skipped: counts.mounts_skipped,
            outside_links: counts.outside_links,
            failed: counts.failed,
            failure_messages: counts.failure_messages,
            immutable: decisions.immutable,
            acl_unmapped: decisions.acl_unmapped,
            journalled,
            bytes: counts.bytes,
            ..Summary::default()
        }
    }
}

/// Whether and how to show progress. Shown on stderr only when it is a terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub enabled: bool,
    /// Inodes expected (`Survey::inodes` from `plan`): gives a bar with an ETA;
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
            Some(n) if n > 0 => (
                ProgressBar::new(n),
                "{wide_bar} {human_pos}/{human_len} inodes {rate} ETA {eta}",
            ),
            _ => (
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

/// Why a path cannot be opened as a trusted directory.
fn open_error(what: &str, path: &Path, e: Errno) -> Error {
    match e {
        Errno::NOENT => Error::Refused(format!("{what} {} does not exist", path.display())),
        Errno::NOTDIR => Error::Refused(format!(
            "{what} {} is not a directory (or a symbolic link stands in it)",
            path.display()
        )),
        Errno::LOOP => Error::Refused(format!(
            "{what} {} goes through a symbolic link; isolate never follows one: \
             name the real directory in the policy",
            path.display()
        )),
        Errno::INVAL => Error::Refused(format!(
            "{what} {} is not in normal form (no `.` or `..`)",
            path.display()
        )),
        e => Error::io(format!("open {what} {}", path.display()), e.into()),
    }
}

/// Opens `path` (absolute, normal form) one component at a time without following a
/// symlink, refusing it unless every directory above it is owned by root and writable by
/// no one else: whoever can write a parent can swap the directory for another between any
/// check and any use (a sticky world-writable directory like /tmp is not enough: the owner
/// of an entry may rename it). `what` names the path in messages ("data path", "share").
/// With `--root`, the root's own ancestors and those inside it are checked alike.
pub fn open_trusted(sys: &dyn WalkSys, path: &Path, what: &str) -> Result<OwnedFd> {
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "{what} {} is not absolute",
            path.display()
        )));
    }
    let mut fd = sys
        .open_root(Path::new("/"))
        .map_err(|e| open_error(what, path, e))?;
    let mut here = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => continue,
            Component::Normal(name) => {
                check_parent(sys, &fd, &here, path, what)?;
                let name = CString::new(name.as_bytes())
                    .map_err(|_| open_error(what, path, Errno::INVAL))?;
                fd = sys
                    .open_dir(fd.as_fd(), &name)
                    .map_err(|e| open_error(what, path, e))?;
                here.push(std::ffi::OsStr::from_bytes(name.as_bytes()));
            }
            _ => return Err(open_error(what, path, Errno::INVAL)),
        }
    }
    Ok(fd)
}

fn check_parent(
    sys: &dyn WalkSys,
    fd: &OwnedFd,
    dir: &Path,
    path: &Path,
    what: &str,
) -> Result<()> {
    let st = sys
        .stat(fd.as_fd(), c"")
        .map_err(|e| Error::io(format!("stat {}", dir.display()), e.into()))?;
    if st.uid == 0 && st.perm() & 0o022 == 0 {
        return Ok(());
    }
    let d = dir.display();
    Err(Error::Refused(format!(
        "{what} {}: the directory {d} above it is owned by uid {} with mode {:04o}; whoever \
         can write it could swap the {what} for another directory while isolate works. Make \
         every directory above the {what} owned by root and writable only by root \
         (`chown root: {d} && chmod go-w {d}`), or move the data below such a directory",
        path.display(),
        st.uid,
        st.perm()
    )))
}

/// Opens the data path after refusing one the walk must not touch: missing, not a
/// directory, below a directory someone else can write, or on a network/FUSE filesystem
/// where chown by a local root fails.
fn open_data_path(sys: &dyn WalkSys, path: &Path) -> Result<OwnedFd> {
    let fd = open_trusted(sys, path, "data path")?;
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

/// Refuses paths the walk must not touch: missing, not a directory, swappable parents,
/// network/FUSE filesystems.
pub fn check_data_path(sys: &dyn WalkSys, path: &Path) -> Result<()> {
    open_data_path(sys, path).map(drop)
}

/// Whether a data path does not exist yet but can be created safely: its parent is a
/// trusted directory (root-owned and writable by no one else, up to `/`) without an entry of
/// that name. Errors are the parent's refusals.
pub fn data_path_missing(sys: &dyn WalkSys, path: &Path) -> Result<bool> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let dir = open_trusted(sys, parent, "data path")?;
    check_parent(sys, &dir, parent, path, "data path")?;
    let name =
        CString::new(name.as_bytes()).map_err(|_| open_error("data path", path, Errno::INVAL))?;
    Ok(sys.stat(dir.as_fd(), &name) == Err(Errno::NOENT))
}

/// Creates a new stack's data path: `mkdirat` relative to its pinned, verified parent,
/// owned by the stack's container root, mode 0750. Something that appeared there since
/// the plan is an error (it may hold data to migrate: plan again).
pub fn create_data_dir(sys: &dyn WalkSys, path: &Path, uid: u32, gid: u32) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Refused(format!(
            "data path {} has no parent directory",
            path.display()
        )));
    };
    let dir = open_trusted(sys, parent, "data path")?;
    check_parent(sys, &dir, parent, path, "data path")?;
    let name =
        CString::new(name.as_bytes()).map_err(|_| open_error("data path", path, Errno::INVAL))?;
    match sys.mkdir(dir.as_fd(), &name, 0o700) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(Error::failed(AppearedSincePlan {
                path: path.to_path_buf(),
            }))
        }
        Err(e) => return Err(Error::io(format!("create {}", path.display()), e.into())),
    }
    let created = sys
        .open_dir(dir.as_fd(), &name)
        .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))?;
    sys.chown(created.as_fd(), c"", uid, gid)
        .and_then(|()| sys.chmod(created.as_fd(), c"", 0o750))
        .map_err(|e| Error::io(format!("set the owner of {}", path.display()), e.into()))
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

fn rules_of(spec: &MigrationSpec) -> Rules {
    Rules::new(&spec.shift, spec.mode, spec.target_uid, spec.target_gid)
}

fn inverse_rules(spec: &MigrationSpec) -> Rules {
    let inverse = spec.shift.inverse();
    Rules::new(
        &inverse,
        MigrateMode::Shift,
        inverse.to.uid.root,
        inverse.to.gid.root,
    )
}

fn survey_walk(sys: &dyn WalkSys, path: &Path, rules: Rules) -> Result<Walked<SurveyTally>> {
    let root = open_data_path(sys, path)?;
    traverse::walk(sys, path, root, &SurveyAction { rules }, None)
}

/// Read-only walk: what `migrate` would do, per rule, and what it could not change.
pub fn survey(sys: &dyn WalkSys, path: &Path, spec: &MigrationSpec) -> Result<Survey> {
    check_spec(spec)?;
    let Walked { counts, tally } = survey_walk(sys, path, rules_of(spec))?;
    Ok(Survey {
        inodes: counts.inodes,
        shift: tally.shift,
        reown: tally.reown,
        already: tally.already,
        outside: tally.outside.count,
        outside_samples: tally.outside.samples,
        mounts_skipped: counts.mounts_skipped,
        immutable: tally.immutable,
        outside_links: counts.outside_links,
        acl_unmapped: tally.acl_unmapped,
    })
}

fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Migrates the owners under `path` by `spec`. Re-runnable after a crash at any point: it
/// first repairs what a previous run's journal says may have been cut short (setuid bits
/// and capabilities a chown dropped), then walks; ids already in the target mapping are
/// left, so the walk converges. Then a read-only walk counts what is still in the source
/// mapping. The summary's `problems()` say why the migration is not done, if it is not.
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
    let rules = rules_of(spec);
    let proofs = replay::Proofs::read(journal_path)?;
    let mut after = replay::AfterLines::new(journal_path, proofs.valid_len);
    let repaired =
        replay::repair_after_crash(sys, root.as_fd(), path, &rules, &proofs, &mut after)?;
    let journal = after
        .into_journal()
        .map_err(|e| Error::io(format!("open journal {}", journal_path.display()), e))?;
    let action = Migrate {
        rules: rules.clone(),
        journal: &journal,
    };
    let bar = progress.bar();
    let walked = traverse::walk(sys, path, root, &action, bar.as_ref());
    finish(bar);
    let Walked { counts, tally } = walked?;
    journal
        .sync()
        .map_err(|e| Error::io(format!("write journal {}", journal_path.display()), e))?;
    let mut summary = Summary::from_walk(counts, tally.decisions, tally.journalled);
    summary.changed += repaired.changed;
    summary.journal_missing = repaired.missing;
    summary.privilege_withheld = repaired.withheld;
    summary.outside_links_accepted = spec.outside_links == OutsideLinks::Skip;
    summary.verify(survey_walk(sys, path, rules)?);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Undoes `migrate`. First, journalled files that had setuid/setgid bits or a capability
/// and are provably unchanged since isolate last changed them (same inode, same creation
/// time, ctime one that isolate journalled after its own change: the migration's, or an
/// interrupted rollback's) get everything back, each step journalled. Then every id in the
/// stack mapping goes back to the legacy mapping (ACL entries too; chown drops privileges
/// and this phase never restores them, so it does not chown a proven one the first phase
/// could not reach). Then every journalled inode that is still the file its record was
/// written for gets its owner and mode back (a proven one everything), without
/// setuid/setgid bits or capability otherwise (those are reported, and the rollback is not
/// done). A
/// verification walk counts what is left in the stack mapping. Re-runnable; the journal is
/// kept.
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
    let proofs = replay::Proofs::read(journal_path)?;
    let mut after = replay::AfterLines::new(journal_path, proofs.valid_len);
    replay::restore_proven(sys, root.as_fd(), path, &proofs, &mut after)?;
    let rules = inverse_rules(spec);
    let bar = progress.bar();
    let walked = traverse::walk(
        sys,
        path,
        root,
        &Rollback {
            rules: rules.clone(),
            proofs: &proofs,
        },
        bar.as_ref(),
    );
    finish(bar);
    let Walked { counts, tally } = walked?;
    let mut summary = Summary::from_walk(counts, tally.decisions, 0);
    let root = open_data_path(sys, path)?;
    let restored = replay::restore(sys, root.as_fd(), path, journal_path, &proofs, &mut after)?;
    summary.journalled = restored.restored;
    summary.journal_missing = restored.missing;
    summary.changed += restored.changed;
    summary.privilege_withheld = restored.withheld;
    summary.failed.merge(restored.failed);
    summary.failure_messages.extend(restored.failure_messages);
    summary.verify(survey_walk(sys, path, rules)?);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A data path to create that exists now but did not when planned.
#[derive(Debug, thiserror::Error)]
#[error("data path {} exists now but did not when planned; run plan again", path.display())]
pub struct AppearedSincePlan {
    pub path: std::path::PathBuf,
}
