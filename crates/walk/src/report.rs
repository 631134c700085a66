//! What a walk reports: `Survey`, the read-only counts `plan` shows (what a migration would
//! do per rule, and what it could not), and `Summary`, what a migration or rollback did and
//! what its verification walk found left, with the reasons it is not done.
use crate::action::survey::SurveyTally;
use crate::traverse::{self, Counts, Samples, Walked};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Read-only counts for `plan`: what a migration would do per rule, and what it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    pub inodes: u64,
    pub shift: u64,
    pub reown: u64,
    pub already: u64,
    pub outside: u64,
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
    pub outside_samples: Vec<PathBuf>,
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
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
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
    pub outside_samples: Vec<PathBuf>,
    /// Entries that changed under the walk (removed, renamed, swapped for a symlink, or not
    /// the inode planned once pinned): skipped.
    pub skipped_raced: u64,
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
    pub raced_samples: Vec<PathBuf>,
    /// Mount points inside the data path (relative paths), not crossed.
    #[serde(serialize_with = "isolate_model::escape::json_paths")]
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
    pub(crate) fn verify(&mut self, found: Walked<SurveyTally>) {
        self.left = found.tally.pending;
        let raced = found.counts.raced;
        self.skipped_raced += raced.count;
        let room = traverse::SAMPLES.saturating_sub(self.raced_samples.len());
        self.raced_samples
            .extend(raced.samples.into_iter().take(room));
    }

    pub(crate) fn from_walk(counts: Counts, decisions: SurveyTally, journalled: u64) -> Summary {
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
