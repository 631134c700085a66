//! What observe finds for isolation, as plain data for plan (tests build it by hand), and
//! the pure helpers plan and apply share: every known stack mapping, a top's closed form.
use super::closed::{self, Closing, Top};
use super::grants::OwnedIds;
use super::steps::{ClosureFacts, ShareFacts, TopFacts};
use crate::alloc::Allocated;
use crate::ids::IdMaps;
use crate::state::State;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What observe found for isolation, as plain data.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub record: super::record::Record,
    /// Per migrated data path of a closed stack: its top and owners, or why it was not seen.
    pub closures: BTreeMap<(String, PathBuf), Result<ClosureFacts, String>>,
    /// Per data path: an ancestor directory its stack user cannot traverse (why, in words).
    pub untraversable: BTreeMap<(String, PathBuf), String>,
    pub shares: BTreeMap<String, ShareFacts>,
}

/// Every stack mapping isolate knows: recorded ones, then those this run allocates.
pub fn known_maps(state: &State, allocs: &BTreeMap<String, Allocated>) -> BTreeMap<String, IdMaps> {
    let mut maps: BTreeMap<String, IdMaps> = state
        .stacks
        .iter()
        .map(|(n, r)| (n.clone(), r.allocation.maps()))
        .collect();
    for (n, a) in allocs {
        maps.entry(n.clone()).or_insert_with(|| a.allocation.maps());
    }
    maps
}

/// The closed form of a top as observed, or None when it already is closed.
pub fn closing_of(
    stack: &str,
    maps: &BTreeMap<String, IdMaps>,
    facts: &ClosureFacts,
    shared_gid: Option<u32>,
) -> Option<(Option<super::acl::Acl>, Vec<u32>)> {
    let own = maps.get(stack)?;
    let others = OwnedIds::new(maps.iter().filter(|(n, _)| *n != stack).map(|(_, m)| m));
    let c = Closing {
        stack: own,
        others: &others,
        owners: &facts.owners,
        shared_gid,
    };
    let top = top_of(&facts.top);
    Some((
        closed::closed_top(&c, &top),
        closed::entered_by(&c, facts.top.uid),
    ))
}

pub fn top_of(t: &TopFacts) -> Top<'_> {
    Top {
        perm: t.perm,
        uid: t.uid,
        gid: t.gid,
        access: t.acl_access.as_deref(),
    }
}
