//! What plan needs to know for the disk budget: for each selected stack with `disk_max`, the
//! facts of each of its data trees through the port. Never writes.
use super::plan::Tree;
use super::port::QuotaPort;
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::model::Selection;
use crate::policy::select::selected;
use crate::policy::Policy;
use std::collections::BTreeMap;

/// The budget in bytes a stack's policy asks for (None: no `disk_max`).
pub fn disk_max(stack: &crate::policy::StackPolicy) -> Option<u64> {
    stack.limits.disk_max.as_ref().and_then(|d| d.value.bytes)
}

pub fn observe(
    root: &Root,
    port: &dyn QuotaPort,
    policy: &Policy,
    opts: &Selection,
) -> Result<BTreeMap<String, Vec<Tree>>> {
    let mut out = BTreeMap::new();
    for stack in selected(policy, opts) {
        if disk_max(stack).is_none() {
            continue;
        }
        let trees = stack
            .data
            .iter()
            .map(|d| {
                let facts = port.look(&root.at(&d.value)).map_err(Error::failed)?;
                Ok(Tree {
                    path: d.value.clone(),
                    facts,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.insert(stack.name.clone(), trees);
    }
    Ok(out)
}
