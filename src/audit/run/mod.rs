//! Runs an audit: builds the id book and the per-path contexts from the policy, the host's
//! accounts and isolate's state, walks every data path and share read-only, then adds the
//! host-wide findings and the access matrix. Nothing here writes anything.
use super::access::{self, InodeFacts};
use super::attribution::{IdBook, IdKind, Scope};
use super::inspect::{Hits, Inspector, SAMPLES};
use super::intent::{self, Target};
use super::model::*;
use crate::audit::tree_walk::{walk_tree, TreeAudit};
use crate::error::Result;
use crate::host::accounts::Accounts;
use crate::ids::IdMaps;
use crate::layout::{self, Root};
use crate::model::escape::path_text;
use crate::plan;
use crate::policy::Policy;
use crate::state::{MigrationPhase, State};
use crate::walk::sys::WalkSys;
use crate::walk::xattr;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

mod findings;
mod live;
mod units;
mod usage;
use findings::{closed_findings, matrix, share_findings, subid_findings};
use live::liveness_findings;
pub use live::{LiveCheck, Liveness, SessionCheck};
pub use usage::slices_only;

/// What the audit reads of the host.
pub struct Host<'a> {
    pub root: &'a Root,
    pub accounts: &'a Accounts,
    pub state: &'a State,
    /// What isolation closed (ROOT/var/lib/isolate/isolation.json).
    pub isolation: &'a crate::isolation::record::Record,
    pub live: &'a dyn LiveCheck,
}

/// One path of the policy to walk.
struct Audited {
    path: PathBuf,
    kind: PathKind,
    /// The data path's stack, or the share's name.
    name: String,
    /// Stacks whose ids belong here (applied ones only: others have no mapping yet).
    own: Vec<String>,
    migrated: bool,
}

/// The groups a user's processes hold: its primary group and every group listing it.
fn groups_of(acc: &Accounts, user: &str, primary: u32) -> Vec<u32> {
    let mut out = vec![primary];
    out.extend(
        acc.group
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.gid),
    );
    out
}

fn hits_finding(
    kind: FindingKind,
    stack: Option<&str>,
    path: &Path,
    hits: &Hits,
    detail: String,
) -> Finding {
    Finding {
        kind,
        severity: kind.severity(),
        stack: stack.map(str::to_string),
        path: Some(path.display().to_string()),
        count: hits.count,
        samples: {
            // Sorted: the walk's parallel batches find them in no fixed order.
            let mut s: Vec<String> = hits
                .samples
                .iter()
                .map(|rel| path_text(&path.join(rel)))
                .collect();
            s.sort();
            s
        },
        detail,
    }
}

fn finding(
    kind: FindingKind,
    stack: Option<&str>,
    path: Option<&Path>,
    count: u64,
    detail: String,
) -> Finding {
    Finding {
        kind,
        severity: kind.severity(),
        stack: stack.map(str::to_string),
        path: path.map(|p| p.display().to_string()),
        count,
        samples: Vec::new(),
        detail,
    }
}

fn describe(kind: FindingKind, path: &Path) -> String {
    let p = path_text(path);
    match kind {
        FindingKind::OtherStackIds => {
            format!("{p}: inodes owned (uid or gid) by another stack's ids")
        }
        FindingKind::LegacyAfterMigration => {
            format!("{p}: inodes still in the legacy mapping though the migration is done")
        }
        FindingKind::WorldWritable => format!("{p}: files or directories anyone can write"),
        FindingKind::SetuidSetgid => format!("{p}: setuid or setgid files"),
        FindingKind::FileCapability => format!("{p}: files with capabilities"),
        FindingKind::AclOtherStack => format!("{p}: ACL entries naming another stack's ids"),
        FindingKind::HardlinkOutside => {
            format!("{p}: hardlinked inodes with links outside this path")
        }
        FindingKind::MountSkipped => format!("{p}: mount points inside, not audited"),
        _ => p,
    }
}

/// Stats one directory and reads its access ACL, by its absolute path (ancestors of policy
/// paths are the administrator's, so the real open follows no symlink but trusts the names).
fn facts_of(sys: &dyn WalkSys, path: &Path) -> std::result::Result<InodeFacts, String> {
    let fd = sys
        .open_root(path)
        .map_err(|e| format!("open {}: {}", path_text(path), std::io::Error::from(e)))?;
    use rustix::fd::AsFd;
    let st = sys
        .stat(fd.as_fd(), c"")
        .map_err(|e| format!("stat {}: {}", path_text(path), std::io::Error::from(e)))?;
    let acl = sys
        .get_xattr(fd.as_fd(), c"", xattr::ACL_ACCESS)
        .map_err(|e| {
            format!(
                "read the ACL of {}: {}",
                path_text(path),
                std::io::Error::from(e)
            )
        })?
        .and_then(|v| access::parse_acl(&v));
    Ok(InodeFacts {
        uid: st.uid,
        gid: st.gid,
        perm: st.perm(),
        acl,
    })
}

/// The directories from the audited root down to `path` (both included).
fn chain_paths(root: &Root, path: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.path().to_path_buf()];
    let mut cur = PathBuf::from("/");
    for c in path.components() {
        if let std::path::Component::Normal(part) = c {
            cur.push(part);
            out.push(root.at(&cur));
        }
    }
    out
}

/// Every mapping the host knows (recorded stacks, also ones that left the policy, and the
/// legacy owner) and its account names.
fn id_book(policy: &Policy, host: &Host<'_>) -> IdBook {
    let acc = host.accounts;
    let legacy = plan::data::legacy_maps(policy, acc);
    let legacy_name = policy.legacy_owner.as_ref().map(|l| l.value.clone());
    IdBook {
        stacks: host
            .state
            .stacks
            .iter()
            .map(|(name, rec)| (name.clone(), rec.allocation.maps()))
            .collect(),
        legacy: legacy_name.zip(legacy),
        users: acc.passwd.iter().map(|u| (u.uid, u.name.clone())).collect(),
        groups: acc.group.iter().map(|g| (g.gid, g.name.clone())).collect(),
    }
}

/// The selected stacks: recorded ones (applied) and the allocation apply would make for others.
fn stack_infos(
    policy: &Policy,
    host: &Host<'_>,
    selected: &dyn Fn(&str) -> bool,
) -> Vec<StackInfo> {
    let (acc, selected) = (host.accounts, selected);
    // Not stopped by an allocation apply would refuse (the audit reports the host as it is;
    // plan and apply refuse with positions): stacks not applied are left out, logged at debug.
    let planned = crate::alloc::allocate(policy, acc, host.state, &[]).unwrap_or_else(|e| {
        tracing::debug!("stacks not applied yet are left out: their allocation fails: {e}");
        Default::default()
    });
    let mut infos = Vec::new();
    for name in policy.stacks.keys().filter(|s| selected(s)) {
        let (a, applied) = match host.state.stacks.get(name) {
            Some(r) => (r.allocation.clone(), true),
            None => match planned.get(name) {
                Some(p) => (p.allocation.clone(), false),
                None => continue,
            },
        };
        infos.push(StackInfo {
            stack: name.clone(),
            user: a.user.clone(),
            uid: a.uid,
            gid: a.gid,
            subid_start: a.subids.start,
            subid_count: a.subids.count,
            applied,
        });
    }

    infos
}

/// The paths to walk: the selected stacks' data paths, and the shares granting one of them.
fn audited_paths(
    policy: &Policy,
    state: &State,
    book: &IdBook,
    stacks: &[String],
    selected: &dyn Fn(&str) -> bool,
) -> Vec<Audited> {
    let mut audited = Vec::new();
    for s in policy.stacks.values().filter(|s| selected(&s.name)) {
        for d in &s.data {
            audited.push(Audited {
                path: d.value.clone(),
                kind: PathKind::Data,
                name: s.name.clone(),
                own: book
                    .stacks
                    .contains_key(&s.name)
                    .then(|| s.name.clone())
                    .into_iter()
                    .collect(),
                migrated: matches!(
                    state.migration(&s.name, &d.value).map(|m| m.phase),
                    Some(MigrationPhase::Done)
                ),
            });
        }
    }
    for share in policy.shares.values() {
        let granted: Vec<String> = intent::share_grants(share)
            .into_keys()
            .map(|(s, _)| s)
            .collect();
        if !stacks.is_empty() && !granted.iter().any(|g| selected(g)) {
            continue;
        }
        audited.push(Audited {
            path: share.path.value.clone(),
            kind: PathKind::Share,
            name: share.name.clone(),
            own: granted
                .into_iter()
                .filter(|g| book.stacks.contains_key(g))
                .collect(),
            migrated: false,
        });
    }

    audited
}

/// Walks one path and turns what it found into its report and findings.
fn walk_path(
    sys: &dyn WalkSys,
    host: &Host<'_>,
    book: &IdBook,
    a: &Audited,
    findings: &mut Vec<Finding>,
) -> PathReport {
    let stack = (a.kind == PathKind::Data).then_some(a.name.as_str());
    let inspector = Inspector::new(book, &a.own, a.migrated);
    let on_host = host.root.at(&a.path);
    let scope = match a.kind {
        PathKind::Data => Scope::Data { stack: &a.name },
        PathKind::Share => Scope::Share { granted: &a.own },
    };
    let mut report = PathReport {
        path: a.path.display().to_string(),
        kind: a.kind,
        stack: stack.map(str::to_string),
        share: (a.kind == PathKind::Share).then(|| a.name.clone()),
        walked: false,
        inodes: 0,
        bytes: 0,
        uid_classes: BTreeMap::new(),
        gid_classes: BTreeMap::new(),
        uids: Vec::new(),
        gids: Vec::new(),
    };
    match walk_tree(sys, &on_host, &inspector) {
        Err(e) => findings.push(finding(
            FindingKind::Unreadable,
            stack,
            Some(&a.path),
            1,
            path_text(Path::new(&e.to_string())),
        )),
        Ok(TreeAudit {
            tally,
            outside_links,
            unreadable,
            unreadable_messages,
            mounts_skipped,
            inodes,
            bytes,
        }) => {
            report.walked = true;
            report.inodes = inodes;
            report.bytes = bytes;
            report.uids = tally.rows(book, IdKind::Uid, scope);
            report.gids = tally.rows(book, IdKind::Gid, scope);
            for (rows, classes) in [
                (&report.uids, &mut report.uid_classes),
                (&report.gids, &mut report.gid_classes),
            ] {
                for r in rows {
                    classes
                        .entry(r.owner.class().to_string())
                        .or_default()
                        .add(&Counts {
                            inodes: r.inodes,
                            bytes: r.bytes,
                        });
                }
            }
            let mut hits = tally.hits;
            if outside_links.count > 0 {
                hits.insert(FindingKind::HardlinkOutside, outside_links);
            }
            if !mounts_skipped.is_empty() {
                hits.insert(
                    FindingKind::MountSkipped,
                    Hits {
                        count: mounts_skipped.len() as u64,
                        samples: mounts_skipped.into_iter().take(SAMPLES).collect(),
                    },
                );
            }
            for (kind, h) in &hits {
                findings.push(hits_finding(
                    *kind,
                    stack,
                    &a.path,
                    h,
                    describe(*kind, &a.path),
                ));
            }
            if unreadable.count > 0 {
                let mut f = hits_finding(
                    FindingKind::Unreadable,
                    stack,
                    &a.path,
                    &unreadable,
                    format!(
                        "{}: entries that could not be read (first: {})",
                        path_text(&a.path),
                        unreadable_messages
                            .first()
                            .map_or(String::new(), |m| path_text(Path::new(m)))
                    ),
                );
                f.count = unreadable.count;
                findings.push(f);
            }
        }
    }
    report
}

/// Every policy path with its kind and what it is in the policy's intent.
fn targets(policy: &Policy) -> Vec<(PathBuf, PathKind, Target<'_>)> {
    policy
        .stacks
        .values()
        .flat_map(|s| {
            s.data.iter().map(move |d| {
                (
                    d.value.clone(),
                    PathKind::Data,
                    Target::Data { owner: &s.name },
                )
            })
        })
        .chain(policy.shares.values().map(|s| {
            (
                s.path.value.clone(),
                PathKind::Share,
                Target::Share { name: &s.name },
            )
        }))
        .collect()
}

/// Per policy path, the facts of every directory from the root down to it (each directory
/// read once); None when one of them cannot be read.
fn chains(
    sys: &dyn WalkSys,
    root: &Root,
    targets: &[(PathBuf, PathKind, Target<'_>)],
) -> BTreeMap<PathBuf, Option<Vec<InodeFacts>>> {
    let mut dir_facts: BTreeMap<PathBuf, Option<InodeFacts>> = BTreeMap::new();
    let mut chains = BTreeMap::new();
    for (p, _, _) in targets {
        let chain: Option<Vec<InodeFacts>> = chain_paths(root, p)
            .into_iter()
            .map(|dir| {
                dir_facts
                    .entry(dir.clone())
                    .or_insert_with(|| facts_of(sys, &dir).ok())
                    .clone()
            })
            .collect();
        chains.insert(p.clone(), chain);
    }
    chains
}

type Chains = BTreeMap<PathBuf, Option<Vec<InodeFacts>>>;

fn top<'c>(chains: &'c Chains, path: &Path) -> Option<&'c InodeFacts> {
    chains.get(path)?.as_ref()?.last()
}

/// Audits the policy's data paths and shares (of `stacks`, all when empty).
pub fn audit(
    sys: &dyn WalkSys,
    policy: &Policy,
    host: &Host<'_>,
    stacks: &[String],
) -> Result<Report> {
    let started = Instant::now();
    let opts = plan::Options {
        stacks: stacks.to_vec(),
        ..plan::Options::default()
    };
    plan::check_selection(policy, &opts)?;
    let selected = |s: &str| stacks.is_empty() || stacks.iter().any(|x| x == s);
    let book = id_book(policy, host);
    let infos = stack_infos(policy, host, &selected);
    let audited = audited_paths(policy, host.state, &book, stacks, &selected);
    let mut findings = Vec::new();
    let paths: Vec<PathReport> = audited
        .iter()
        .map(|a| walk_path(sys, host, &book, a, &mut findings))
        .collect();
    let disk = usage::disk_usage(sys, host, &infos, &paths, &mut findings);
    findings.extend(subid_findings(host.accounts));
    findings.extend(liveness_findings(policy, host, &infos));
    findings.extend(units::undoing_findings(policy, host, &infos));
    let targets = targets(policy);
    let chains = chains(sys, host.root, &targets);
    findings.extend(closed_findings(&audited, &book, host.isolation, &chains));
    findings.extend(share_findings(policy, &audited, &book, &chains));
    let matrix = matrix(
        policy,
        host,
        &book,
        &infos,
        &targets,
        &chains,
        &mut findings,
    );
    findings.sort_by(|a, b| {
        (std::cmp::Reverse(a.severity), a.kind, &a.stack, &a.path).cmp(&(
            std::cmp::Reverse(b.severity),
            b.kind,
            &b.stack,
            &b.path,
        ))
    });
    let usage = usage::slices(host.root, &infos);
    let completed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        completed_at,
        duration_seconds: started.elapsed().as_secs_f64(),
        legacy_owner: policy.legacy_owner.as_ref().map(|l| l.value.clone()),
        stacks: infos,
        paths,
        matrix,
        findings,
        reaches: Vec::new(),
        usage: Some(usage),
        disk,
    })
}

#[cfg(test)]
mod tests {
    //! The findings that come from the host and the policy rather than from one inode, each
    //! from hand-built facts (the root-run test covers them again on a real tree).
    use super::*;
    use crate::audit::access::{AclEntry, TAG_MASK, TAG_USER};

    pub(super) fn policy() -> Policy {
        Policy::parse(
            Path::new("p.toml"),
            r#"
legacy_owner = "alice"
[stacks.immich]
data = ["/srv/immich"]
[stacks.paperless]
data = ["/srv/paperless"]
[shares.media]
path = "/srv/media"
write = ["immich"]
read = ["paperless:1000"]
"#,
        )
        .unwrap()
    }

    pub(super) fn dir(uid: u32, gid: u32, perm: u32, named: &[(u32, u8)]) -> InodeFacts {
        let mut acl: Vec<AclEntry> = named
            .iter()
            .map(|&(id, perm)| AclEntry {
                tag: TAG_USER,
                perm,
                id,
            })
            .collect();
        if !acl.is_empty() {
            acl.push(AclEntry {
                tag: TAG_MASK,
                perm: 7,
                id: 0,
            });
        }
        InodeFacts {
            uid,
            gid,
            perm,
            acl: (!acl.is_empty()).then_some(acl),
        }
    }

    pub(super) fn audited(path: &str, kind: PathKind, name: &str) -> Audited {
        Audited {
            path: path.into(),
            kind,
            name: name.into(),
            own: vec![name.into()],
            migrated: true,
        }
    }

    pub(super) fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Option<String>)> {
        findings.iter().map(|f| (f.kind, f.stack.clone())).collect()
    }

    pub(super) struct Live;
    impl LiveCheck for Live {
        fn check(&self, user: &str, _: u32) -> Liveness {
            match user {
                "stk-immich" => Liveness {
                    linger: false,
                    manager_active: Some(false),
                    socket_answers: Some(false),
                },
                _ => Liveness {
                    linger: true,
                    manager_active: None,
                    socket_answers: None,
                },
            }
        }
        fn project_runs(&self, uid: u32, _: &str) -> Option<crate::handoff::service::ProjectRuns> {
            use crate::handoff::service::ProjectRuns;
            Some(match uid {
                801 => ProjectRuns::No("not running: paperless_web_1 (created)".into()),
                _ => ProjectRuns::Yes,
            })
        }
    }

    pub(super) fn info(stack: &str, uid: u32, applied: bool) -> StackInfo {
        StackInfo {
            stack: stack.into(),
            user: format!("stk-{stack}"),
            uid,
            gid: uid + 50,
            subid_start: 200_000,
            subid_count: 65_536,
            applied,
        }
    }
}
