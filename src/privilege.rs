//! apply and rollback change owners, ACLs and file capabilities as root: check up front that
//! this process may, and that its root is the host's root, instead of failing halfway through
//! a tree or "succeeding" inside a user namespace where nothing real changes.
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

/// The facts the check reads about this process, behind a trait so tests answer them.
pub trait ProcessFacts {
    fn euid(&self) -> u32;
    fn effective_caps(&self) -> Result<Vec<Capability>>;
    /// The text of `/proc/self/uid_map`.
    fn uid_map(&self) -> Result<String>;
}

/// The running process, as the kernel reports it.
pub struct ThisProcess;

impl ProcessFacts for ThisProcess {
    fn euid(&self) -> u32 {
        rustix::process::geteuid().as_raw()
    }
    fn effective_caps(&self) -> Result<Vec<Capability>> {
        caps::read(None, CapSet::Effective)
            .map(|s| s.into_iter().collect())
            .map_err(|source| Error::host(CapsUnreadable { source }))
    }
    fn uid_map(&self) -> Result<String> {
        std::fs::read_to_string("/proc/self/uid_map")
            .map_err(|e| Error::io("reading /proc/self/uid_map", e))
    }
}

/// True when `uid_map` is the initial user namespace's map: one line, every id to itself.
pub fn is_initial_namespace(uid_map: &str) -> bool {
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// Refuses (exit 2) unless this process is root in the initial user namespace with every
/// capability in [`NEEDED`].
pub fn check_with(facts: &dyn ProcessFacts) -> Result<()> {
    let map = facts.uid_map()?;
    if !is_initial_namespace(&map) {
        let shown: Vec<String> = map
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        return Err(Error::Privilege(format!(
            "this process runs in a user namespace (/proc/self/uid_map is `{}`, not `0 0 4294967295`): \
             its root owns nothing on the host, so nothing real would change; \
             run isolate as root outside any user namespace",
            shown.join("; ")
        )));
    }
    let euid = facts.euid();
    let effective = facts.effective_caps()?;
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|c| !effective.contains(c))
        .map(|c| c.to_string())
        .collect();
    if euid != 0 || !missing.is_empty() {
        let mut why = Vec::new();
        if euid != 0 {
            why.push(format!("runs as uid {euid} (shadow's tools need root)"));
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

/// [`check_with`] on this process.
pub fn check() -> Result<()> {
    check_with(&ThisProcess)
}

/// This process's capability sets cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("reading this process's capabilities: {source}")]
pub struct CapsUnreadable {
    #[source]
    pub source: caps::errors::CapsError,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Facts {
        euid: u32,
        caps: Vec<Capability>,
        map: &'static str,
    }

    impl ProcessFacts for Facts {
        fn euid(&self) -> u32 {
            self.euid
        }
        fn effective_caps(&self) -> Result<Vec<Capability>> {
            Ok(self.caps.clone())
        }
        fn uid_map(&self) -> Result<String> {
            Ok(self.map.to_string())
        }
    }

    const HOST_MAP: &str = "         0          0 4294967295\n";

    #[test]
    fn root_in_the_initial_namespace_passes() {
        let f = Facts {
            euid: 0,
            caps: NEEDED.to_vec(),
            map: HOST_MAP,
        };
        check_with(&f).unwrap();
    }

    #[test]
    fn root_with_every_capability_in_a_user_namespace_is_refused() {
        let f = Facts {
            euid: 0,
            caps: NEEDED.to_vec(),
            map: "         0       1000          1\n",
        };
        let e = check_with(&f).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "missing privilege: this process runs in a user namespace (/proc/self/uid_map is \
             `0 1000 1`, not `0 0 4294967295`): its root owns nothing on the host, so nothing \
             real would change; run isolate as root outside any user namespace"
        );
    }

    #[test]
    fn only_the_full_identity_map_is_initial() {
        assert!(is_initial_namespace(HOST_MAP));
        assert!(is_initial_namespace("0 0 4294967295"));
        assert!(!is_initial_namespace("0 0 1\n"));
        assert!(!is_initial_namespace("0 0 4294967294\n"));
        assert!(!is_initial_namespace("0 0 1000\n1000 1000 4294966295\n"));
        assert!(!is_initial_namespace(""));
    }

    #[test]
    fn missing_root_and_capabilities_are_named() {
        let f = Facts {
            euid: 1000,
            caps: vec![Capability::CAP_CHOWN],
            map: HOST_MAP,
        };
        assert_eq!(
            check_with(&f).unwrap_err().to_string(),
            "missing privilege: this process runs as uid 1000 (shadow's tools need root) and \
             lacks CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_SETFCAP; \
             run it as root, e.g. `sudo isolate apply`"
        );
    }
}
