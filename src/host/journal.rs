//! The last journal lines of a unit, put into the error when a wait on it fails: a start that
//! times out says why (compose's own error, a permission denied) instead of only its state.
//! Behind a trait: tests pass a fake; the real one runs journalctl as root.
use crate::error::Error;
use crate::layout::Root;

/// How many lines an error shows.
pub const LINES: usize = 15;

/// Which unit's journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A system unit (`user@UID.service`).
    System(String),
    /// A unit of the user manager of `uid`.
    User { uid: u32, unit: String },
}

impl Unit {
    /// The journalctl matches that select its lines: a user unit's own output and what its
    /// manager says about it.
    pub fn args(&self) -> Vec<String> {
        match self {
            Unit::System(u) => vec![format!("--unit={u}")],
            Unit::User { uid, unit } => vec![
                format!("_UID={uid}"),
                format!("_SYSTEMD_USER_UNIT={unit}"),
                "+".into(),
                format!("_UID={uid}"),
                format!("USER_UNIT={unit}"),
            ],
        }
    }

    /// The command an admin types to see more.
    pub fn command(&self) -> String {
        format!("journalctl {}", self.args().join(" "))
    }
}

pub trait JournalTail {
    /// The last `n` lines of `unit`'s journal (empty when none can be read).
    fn tail(&self, unit: &Unit, n: usize) -> Vec<String>;
}

/// journalctl of the host (or of `--root`'s journal directory).
pub struct Journalctl<'a> {
    pub root: &'a Root,
}

impl JournalTail for Journalctl<'_> {
    fn tail(&self, unit: &Unit, n: usize) -> Vec<String> {
        let mut cmd = std::process::Command::new("journalctl");
        cmd.args(["--no-pager", "--quiet", "--output=short-iso", "-n"])
            .arg(n.to_string());
        if !self.root.is_host() {
            cmd.arg(format!("--root={}", self.root.path().display()));
        }
        cmd.args(unit.args());
        match cmd.output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// `err` with the last journal lines of `unit` after it (its cause kept); `err` as it is
/// when the journal has none.
pub fn annotate(err: Error, journal: &dyn JournalTail, unit: &Unit) -> Error {
    let lines = journal.tail(unit, LINES);
    if lines.is_empty() {
        return err;
    }
    let journal = format!(
        "last journal lines (`{}`):\n  {}",
        unit.command(),
        crate::model::escape::lines(&lines.join("\n")).replace('\n', "\n  ")
    );
    Error::WithJournal {
        cause: Box::new(err),
        journal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<String>);
    impl JournalTail for Fake {
        fn tail(&self, unit: &Unit, n: usize) -> Vec<String> {
            assert_eq!(n, LINES);
            assert_eq!(
                unit,
                &Unit::User {
                    uid: 1800,
                    unit: "isolate-compose-app.service".into()
                }
            );
            self.0.clone()
        }
    }

    #[test]
    fn a_failed_wait_carries_the_units_last_lines_and_keeps_its_cause() {
        let unit = Unit::User {
            uid: 1800,
            unit: "isolate-compose-app.service".into(),
        };
        let cause = Error::Failed("manager of uid 1800: timed out after 300s waiting for isolate-compose-app.service to be active: ActiveState \"activating\"".into());
        let e = annotate(
            cause,
            &Fake(vec![
                "2026-12-03T12:00:00+0000 host podman-compose[1]: PermissionError: [Errno 13] Permission denied: '/home/alice/seed/.env'".into(),
            ]),
            &unit,
        );
        assert_eq!(e.exit_code(), crate::error::EXIT_FAILURE);
        assert_eq!(e.code(), "failed");
        assert_eq!(
            e.to_string(),
            "manager of uid 1800: timed out after 300s waiting for isolate-compose-app.service to be active: ActiveState \"activating\"\n\
             last journal lines (`journalctl _UID=1800 _SYSTEMD_USER_UNIT=isolate-compose-app.service + _UID=1800 USER_UNIT=isolate-compose-app.service`):\n  \
             2026-12-03T12:00:00+0000 host podman-compose[1]: PermissionError: [Errno 13] Permission denied: '/home/alice/seed/.env'"
        );
        assert!(
            matches!(e, Error::WithJournal { ref cause, .. } if matches!(**cause, Error::Failed(_)))
        );
    }
}
