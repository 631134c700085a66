//! The quadlet files of the stacks `isolate export nixos` declares: read from where the policy
//! names them (or from the copy apply parked after moving them), with the rights of the user
//! who controls each path, as `init` reads them: a legacy user who links her quadlet file to
//! a root-only file gets no root-only text into the module. What cannot be read is kept as
//! its reason, for the module to say.
use super::Export;
use crate::host::accounts::Accounts;
use crate::init::read::{Files, Rights};
use crate::layout::Root;
use crate::policy::Policy;
use std::path::PathBuf;

/// One quadlet file the policy names for a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuadletSource {
    /// The path the policy names.
    pub path: PathBuf,
    /// Its text (from the path, else from apply's parked copy), or why it could not be read.
    pub text: Result<String, String>,
}

/// A stack's quadlet files and whose they were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackQuadlets {
    /// The policy's `legacy_owner` (None: the policy names none).
    pub legacy_owner: Option<String>,
    /// Her home on this host, which `%h` meant in her units (None: the host has no such user).
    pub legacy_home: Option<String>,
    pub files: Vec<QuadletSource>,
}

/// Reads the quadlet files of every exported stack still in the policy that names some.
pub fn attach(root: &Root, policy: &Policy, acc: &Accounts, export: &mut Export) {
    let rights = Rights::new(root.path());
    let owner = policy.legacy_owner.as_ref().map(|o| o.value.clone());
    let legacy_home = owner
        .as_deref()
        .and_then(|o| acc.user(o))
        .map(|u| u.home.to_string());
    for s in &mut export.stacks {
        let Some(p) = policy.stacks.get(&s.stack) else {
            continue;
        };
        if p.handoff.quadlets.is_empty() {
            continue;
        }
        s.quadlets = StackQuadlets {
            legacy_owner: owner.clone(),
            legacy_home: legacy_home.clone(),
            files: p
                .handoff
                .quadlets
                .iter()
                .map(|q| QuadletSource {
                    path: q.value.clone(),
                    text: read(root, &rights, &s.stack, &q.value),
                })
                .collect(),
        };
    }
}

fn read(
    root: &Root,
    rights: &Rights,
    stack: &str,
    path: &std::path::Path,
) -> Result<String, String> {
    match Files::per_file(rights).read(&root.at(path)) {
        Ok(text) => Ok(text),
        Err(e) if e.is_not_found() => {
            let Some(name) = path.file_name() else {
                return Err(e.to_string());
            };
            let parked = crate::quadlet::place::parked_dir(stack).join(name);
            Files::per_file(rights)
                .read(&root.at(&parked))
                .map_err(|p| format!("{e}; and apply parked no copy of it ({p})"))
        }
        Err(e) => Err(e.to_string()),
    }
}
