//! The findings that come from the host and the policy rather than from one inode: closed
//! tops others can search again, share entries that differ from the grants, overlapping
//! subordinate lines, and the access matrix against the policy's intent.
use super::*;

/// Overlapping lines of the host's subordinate id files.
pub(super) fn subid_findings(acc: &Accounts) -> Vec<Finding> {
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

/// Data paths isolation closed whose top a uid outside the stack can traverse again.
pub(super) fn closed_findings(
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
pub(super) fn share_findings(
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
pub(super) fn matrix(
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

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    #[allow(unused_imports)]
    use crate::audit::access::{AclEntry, TAG_MASK, TAG_USER};
    #[allow(unused_imports)]
    use crate::audit::attribution::tests::book;
    #[allow(unused_imports)]
    use crate::isolation::record::{ClosedTop, Record};

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
