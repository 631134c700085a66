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
use crate::plan;
use crate::policy::Policy;
use crate::render::escape::path_text;
use crate::state::{MigrationPhase, State};
use crate::walk::sys::WalkSys;
use crate::walk::xattr;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A stack user's systemd and podman side as audit sees it; None where it cannot be asked
/// (no system bus): then no finding is made about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub linger: bool,
    pub manager_active: Option<bool>,
    pub socket_answers: Option<bool>,
}

/// Asks systemd and podman about a stack user (the CLI passes the real one, tests a fake).
pub trait LiveCheck {
    fn check(&self, user: &str, uid: u32) -> Liveness;
    /// Whether the compose project runs in the user's store (None: not asked here).
    fn project_runs(
        &self,
        _uid: u32,
        _project: &str,
    ) -> Option<crate::handoff::service::ProjectRuns> {
        None
    }
}

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
    let planned = crate::alloc::allocate(policy, acc, host.state, &[]).unwrap_or_default();
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

/// Overlapping lines of the host's subordinate id files.
fn subid_findings(acc: &Accounts) -> Vec<Finding> {
    let mut findings = Vec::new();
    let overlaps = crate::alloc::host_overlaps(acc);
    if !overlaps.is_empty() {
        let mut f = finding(
            FindingKind::SubidOverlap,
            None,
            None,
            overlaps.len() as u64,
            "overlapping lines in the subordinate id files".to_string(),
        );
        f.samples = overlaps
            .iter()
            .take(SAMPLES)
            .map(|m| path_text(Path::new(m)))
            .collect();
        findings.push(f);
    }

    findings
}

/// Each applied stack's systemd and podman side, and its compose service's project: an
/// installed service whose containers do not run is a finding, whatever the unit's state.
fn liveness_findings(policy: &Policy, host: &Host<'_>, infos: &[StackInfo]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for info in infos.iter().filter(|i| i.applied) {
        let live = host.live.check(&info.user, info.uid);
        let s = Some(info.stack.as_str());
        if !live.linger {
            findings.push(finding(
                FindingKind::LingerOff,
                s,
                None,
                1,
                format!(
                    "linger is off for {}: its containers stop at logout and do not start at boot",
                    info.user
                ),
            ));
        }
        if live.manager_active == Some(false) {
            findings.push(finding(
                FindingKind::ManagerDown,
                s,
                None,
                1,
                format!("user@{}.service is not active", info.uid),
            ));
        }
        if live.socket_answers == Some(false) {
            findings.push(finding(
                FindingKind::SocketDown,
                s,
                None,
                1,
                format!(
                    "{} does not answer GET /_ping",
                    layout::podman_socket(info.uid).display()
                ),
            ));
        }
        let installed = host
            .state
            .handoff
            .get(&info.stack)
            .and_then(|r| r.service.as_ref());
        if let (Some(svc), Some(sp)) = (installed, policy.stacks.get(&info.stack)) {
            let project = sp.handoff.project_of(&sp.name);
            if let Some(crate::handoff::service::ProjectRuns::No(why)) =
                host.live.project_runs(info.uid, &project)
            {
                findings.push(finding(
                    FindingKind::ServiceNotRunning,
                    s,
                    None,
                    1,
                    format!(
                        "{} of {} is installed, but project {project} does not run: {why}",
                        svc.unit, info.user
                    ),
                ));
            }
        }
    }

    findings
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

/// Data paths isolation closed whose top a uid outside the stack can traverse again.
fn closed_findings(
    audited: &[Audited],
    book: &IdBook,
    closed: &crate::isolation::record::Record,
    chains: &Chains,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in audited
        .iter()
        .filter(|a| a.kind == PathKind::Data && closed.closed_top(&a.name, &a.path).is_some())
    {
        let (Some(maps), Some(top)) = (book.stacks.get(&a.name), top(chains, &a.path)) else {
            continue;
        };
        if top.traversable_by_outsiders(maps) {
            findings.push(finding(
                FindingKind::ClosedPathOpen,
                Some(&a.name),
                Some(&a.path),
                1,
                format!("{}: closed, yet ids outside the stack can traverse it (x for others, a foreign owner or group, or an ACL entry naming an id outside the stack)", path_text(&a.path)),
            ));
        }
    }

    findings
}

/// Shares whose top directory's named user entries (of stack ids) differ from the grants.
fn share_findings(
    policy: &Policy,
    audited: &[Audited],
    book: &IdBook,
    chains: &Chains,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in audited.iter().filter(|a| a.kind == PathKind::Share) {
        let Some(top) = top(chains, &a.path) else {
            continue;
        };
        let want =
            intent::share_acl_users(&policy.shares[&a.name], |s| book.stacks.get(s).cloned());
        // Only entries of stack ids are isolate's to compare: an administrator's own entries
        // (ids outside every stack mapping) are left alone, as the share ACL writer leaves them.
        let have: BTreeMap<u32, Access> = access::named_user_access(top)
            .into_iter()
            .filter(|(id, _)| book.stack_of(IdKind::Uid, *id).is_some())
            .collect();
        let mut diffs = Vec::new();
        for id in want
            .keys()
            .chain(have.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (w, h) = (
                want.get(id).copied().unwrap_or_default(),
                have.get(id).copied(),
            );
            if h != Some(w) {
                diffs.push(format!(
                    "user:{id} grants {} but the policy gives {}",
                    h.map_or("no entry", |a| a.name()),
                    w.name()
                ));
            }
        }
        if !diffs.is_empty() {
            let mut f = finding(
                FindingKind::ShareAclMismatch,
                None,
                Some(&a.path),
                diffs.len() as u64,
                format!("share {}: ACL entries differ from the grants", a.name),
            );
            f.samples = diffs.into_iter().take(SAMPLES).collect();
            findings.push(f);
        }
    }

    findings
}

/// The access matrix, each selected stack against every policy path, and a finding for every
/// cell where the prediction is not the intent.
fn matrix(
    policy: &Policy,
    host: &Host<'_>,
    book: &IdBook,
    infos: &[StackInfo],
    targets: &[(PathBuf, PathKind, Target<'_>)],
    chains: &Chains,
    findings: &mut Vec<Finding>,
) -> Vec<MatrixCell> {
    let acc = host.accounts;
    let legacy = book.legacy.as_ref();
    let mut matrix = Vec::new();
    for info in infos {
        // An applied stack runs as its own user; one not applied yet still runs as the legacy owner.
        let (maps, groups): (IdMaps, Vec<u32>) = if info.applied {
            (
                book.stacks[&info.stack].clone(),
                groups_of(acc, &info.user, info.gid),
            )
        } else if let Some((name, l)) = legacy {
            (l.clone(), groups_of(acc, name, l.gid.root))
        } else {
            continue;
        };
        for (p, kind, target) in targets {
            let Some(Some(chain)) = chains.get(p) else {
                continue;
            };
            let (predicted, via) = access::stack_reach(chain, &maps, &groups);
            let intended = intent::intended(policy, &info.stack, *target);
            let path = p.display().to_string();
            if predicted != intended {
                let kind_f = if predicted > intended {
                    FindingKind::AccessAbovePolicy
                } else {
                    FindingKind::AccessBelowPolicy
                };
                findings.push(finding(
                    kind_f,
                    Some(&info.stack),
                    Some(p),
                    1,
                    match via {
                        Some(c) => format!(
                            "{} can {} {} (as container uid {c}), the policy gives {}",
                            info.stack,
                            predicted.name(),
                            path_text(p),
                            intended.name()
                        ),
                        None => format!(
                            "{} cannot reach {}, the policy gives {}",
                            info.stack,
                            path_text(p),
                            intended.name()
                        ),
                    },
                ));
            }
            matrix.push(MatrixCell {
                stack: info.stack.clone(),
                path,
                kind: *kind,
                predicted,
                intended,
                via_container_uid: via,
            });
        }
    }

    matrix
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
    let paths = audited
        .iter()
        .map(|a| walk_path(sys, host, &book, a, &mut findings))
        .collect();
    findings.extend(subid_findings(host.accounts));
    findings.extend(liveness_findings(policy, host, &infos));
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
    })
}

/// Without a system bus: only the linger file can be seen; manager and socket stay unknown.
impl LiveCheck for crate::host::session::OfflineSession<'_> {
    fn check(&self, user: &str, _uid: u32) -> Liveness {
        Liveness {
            linger: self.root.linger_file(user).exists(),
            ..Liveness::default()
        }
    }
}

#[cfg(test)]
mod tests {
    //! The findings that come from the host and the policy rather than from one inode, each
    //! from hand-built facts (the root-run test covers them again on a real tree).
    use super::*;
    use crate::audit::access::{AclEntry, TAG_MASK, TAG_USER};
    use crate::audit::attribution::tests::book;
    use crate::isolation::record::{ClosedTop, Record};

    fn policy() -> Policy {
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

    fn dir(uid: u32, gid: u32, perm: u32, named: &[(u32, u8)]) -> InodeFacts {
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

    fn audited(path: &str, kind: PathKind, name: &str) -> Audited {
        Audited {
            path: path.into(),
            kind,
            name: name.into(),
            own: vec![name.into()],
            migrated: true,
        }
    }

    fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Option<String>)> {
        findings.iter().map(|f| (f.kind, f.stack.clone())).collect()
    }

    struct Live;
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

    fn info(stack: &str, uid: u32, applied: bool) -> StackInfo {
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

    #[test]
    fn a_closed_top_that_others_can_search_again() {
        let closed = Record {
            closed: [(
                "immich".to_string(),
                vec![ClosedTop {
                    path: "/srv/immich".into(),
                    ino: 1,
                    perm: 0o750,
                    acl_access: None,
                }],
            )]
            .into(),
            ..Record::default()
        };
        let paths = [
            audited("/srv/immich", PathKind::Data, "immich"),
            audited("/srv/paperless", PathKind::Data, "paperless"),
        ];
        let chains = |immich: InodeFacts| -> Chains {
            [
                (
                    "/srv/immich".into(),
                    Some(vec![dir(0, 0, 0o755, &[]), immich]),
                ),
                // Open, but isolation never closed it: no finding.
                (
                    "/srv/paperless".into(),
                    Some(vec![dir(0, 0, 0o755, &[]), dir(801, 851, 0o755, &[])]),
                ),
            ]
            .into()
        };
        let b = book();
        assert!(closed_findings(
            &paths,
            &b,
            &closed,
            &chains(dir(800, 850, 0o750, &[(200_998, 1)]))
        )
        .is_empty());
        for reopened in [
            dir(800, 850, 0o751, &[]),
            dir(800, 850, 0o750, &[(265_999, 1)]),
        ] {
            assert_eq!(
                kinds(&closed_findings(&paths, &b, &closed, &chains(reopened))),
                vec![(FindingKind::ClosedPathOpen, Some("immich".into()))]
            );
        }
    }

    #[test]
    fn a_share_whose_entries_differ_from_its_grants() {
        let p = policy();
        let b = book();
        let paths = [audited("/srv/media", PathKind::Share, "media")];
        // immich write = its user 800 rwx; paperless:1000 read = 266535 r-x.
        let right = dir(0, 0, 0o770, &[(800, 7), (266_535, 5), (4242, 4)]);
        let chains =
            |top: InodeFacts| -> Chains { [("/srv/media".into(), Some(vec![top]))].into() };
        assert!(
            share_findings(&p, &paths, &b, &chains(right)).is_empty(),
            "an admin's entry (4242) is not compared"
        );
        let wrong = dir(0, 0, 0o770, &[(800, 5), (200_998, 7)]);
        let f = share_findings(&p, &paths, &b, &chains(wrong));
        assert_eq!(kinds(&f), vec![(FindingKind::ShareAclMismatch, None)]);
        assert_eq!(
            f[0].samples,
            vec![
                "user:800 grants read but the policy gives write",
                "user:200998 grants write but the policy gives none",
                "user:266535 grants no entry but the policy gives read",
            ]
        );
    }

    #[test]
    fn overlapping_subordinate_lines() {
        let accounts = |subuid: &str| Accounts {
            subuid: crate::host::accounts::etc::parse_subid(Path::new("/etc/subuid"), subuid)
                .unwrap(),
            ..Accounts::default()
        };
        let f = subid_findings(&accounts("a:100000:65536\nb:165535:10\n"));
        assert_eq!(
            (kinds(&f), f[0].count),
            (vec![(FindingKind::SubidOverlap, None)], 1)
        );
        assert!(subid_findings(&accounts("a:100000:65536\n")).is_empty());
    }

    #[test]
    fn linger_manager_socket_and_service_of_applied_stacks_only() {
        let (acc, mut state, isolation) =
            (Accounts::default(), State::default(), Record::default());
        // Both have a service installed; paperless's project does not run.
        for stack in ["immich", "paperless"] {
            state.handoff.insert(
                stack.into(),
                crate::handoff::HandoffRecord {
                    service: Some(crate::handoff::service::ServiceRecord {
                        unit: format!("isolate-compose-{stack}.service"),
                        path: "/x".into(),
                    }),
                    ..Default::default()
                },
            );
        }
        let root = Root::new("/nonexistent");
        let host = Host {
            root: &root,
            accounts: &acc,
            state: &state,
            isolation: &isolation,
            live: &Live,
        };
        let f = liveness_findings(
            &policy(),
            &host,
            &[
                info("immich", 800, true),
                info("paperless", 801, true),
                info("new", 802, false),
            ],
        );
        let immich = Some("immich".to_string());
        assert_eq!(
            kinds(&f),
            vec![
                (FindingKind::LingerOff, immich.clone()),
                (FindingKind::ManagerDown, immich.clone()),
                (FindingKind::SocketDown, immich),
                (FindingKind::ServiceNotRunning, Some("paperless".into())),
            ],
            "unknown (None) is no finding, a stack not applied has nothing to check"
        );
    }

    #[test]
    fn reach_above_and_below_the_policy() {
        let p = policy();
        let b = book();
        let (acc, state, isolation) = (Accounts::default(), State::default(), Record::default());
        let root = Root::new("/nonexistent");
        let host = Host {
            root: &root,
            accounts: &acc,
            state: &state,
            isolation: &isolation,
            live: &Live,
        };
        let slash = dir(0, 0, 0o755, &[]);
        let chains: Chains = [
            // immich's own data, closed: write for immich.
            (
                "/srv/immich".into(),
                Some(vec![slash.clone(), dir(800, 850, 0o750, &[])]),
            ),
            // paperless's data left world-readable: immich reads it (above), paperless writes.
            (
                "/srv/paperless".into(),
                Some(vec![slash.clone(), dir(801, 851, 0o755, &[])]),
            ),
            // The share without its entries: immich only reads (below write).
            (
                "/srv/media".into(),
                Some(vec![slash, dir(0, 0, 0o755, &[])]),
            ),
        ]
        .into();
        let targets = targets(&p);
        let mut findings = Vec::new();
        let cells = matrix(
            &p,
            &host,
            &b,
            &[info("immich", 800, true)],
            &targets,
            &chains,
            &mut findings,
        );
        let got: Vec<_> = cells
            .iter()
            .map(|c| (c.path.as_str(), c.predicted, c.intended))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/srv/immich", Access::Write, Access::Write),
                ("/srv/paperless", Access::Read, Access::None),
                ("/srv/media", Access::Read, Access::Write),
            ]
        );
        let found: Vec<_> = findings
            .iter()
            .map(|f| (f.kind, f.path.clone().unwrap()))
            .collect();
        assert_eq!(
            found,
            vec![
                (FindingKind::AccessAbovePolicy, "/srv/paperless".to_string()),
                (FindingKind::AccessBelowPolicy, "/srv/media".to_string()),
            ]
        );
    }
}
