//! The units that would undo an applied stack's isolation (`preconditions::units`): one
//! finding per unit line, its sample the file and line, its detail the same sentence plan
//! warns with (the fix included).
use super::*;
use crate::preconditions::units::{judge, scan_for, StackView, Undo};

/// One finding per line of a unit that would undo an applied stack's isolation.
pub(super) fn undoing_findings(
    policy: &Policy,
    host: &Host<'_>,
    infos: &[StackInfo],
) -> Vec<Finding> {
    let applied: Vec<&StackInfo> = infos.iter().filter(|i| i.applied).collect();
    if applied.is_empty() {
        return Vec::new();
    }
    let scan = scan_for(host.root, policy, host.accounts);
    let nixos = host.root.is_nixos();
    let mut out = Vec::new();
    for info in applied {
        let Some(s) = policy.stacks.get(&info.stack) else {
            continue;
        };
        for u in judge(&scan, &StackView::of(s, &info.user, info.uid), nixos) {
            let path = match &u.undo {
                Undo::Chown { data } => Some(data.clone()),
                Undo::Compose { .. } => None,
            };
            let mut f = finding(
                FindingKind::UndoingUnit,
                Some(&info.stack),
                path.as_deref(),
                1,
                u.message(),
            );
            f.samples = vec![u.at()];
            out.push(f);
        }
    }
    out
}
