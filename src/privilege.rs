//! apply and rollback change owners, ACLs and file capabilities as root: check up front that
//! this process may, instead of failing halfway through a tree.
use crate::error::{Error, Result};
use caps::{CapSet, Capability};

/// The capabilities a migration and the account tools need.
pub const NEEDED: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_SETFCAP,
];

pub fn check() -> Result<()> {
    let euid = rustix::process::geteuid();
    let effective = caps::read(None, CapSet::Effective)
        .map_err(|e| Error::Failed(format!("reading this process's capabilities: {e}")))?;
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|c| !effective.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !euid.is_root() || !missing.is_empty() {
        let mut why = Vec::new();
        if !euid.is_root() {
            why.push(format!(
                "runs as uid {} (shadow's tools need root)",
                euid.as_raw()
            ));
        }
        if !missing.is_empty() {
            why.push(format!("lacks {}", missing.join(", ")));
        }
        return Err(Error::Privilege(format!(
            "this process {}; run it as root, e.g. `sudo isolate apply`",
            why.join(" and ")
        )));
    }
    Ok(())
}
