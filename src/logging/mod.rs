//! Where isolate's log records go: structured records to the journal when isolate runs
//! unattended (a unit, a timer, a pipe), human-readable lines on stderr when a person watches.
//! What a command waits for is narrated to that person (`narrate`). Records carry `ISOLATE_STACK=` and `ISOLATE_STEP=` in the journal (see [`step_span`]).
pub mod narrate;

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable that overrides the level (tracing's filter syntax, e.g. `debug`
/// or `isolate::walk=trace`); it wins over `--verbose` and `--quiet`.
pub const LOG_ENV: &str = "ISOLATE_LOG";
/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// Prefix of isolate's own journal fields: a span or event field `stack` becomes `ISOLATE_STACK`.
pub const JOURNAL_FIELD_PREFIX: &str = "ISOLATE";

/// How much to log, from `--verbose` (repeatable) and `--quiet`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verbosity {
    pub verbose: u8,
    pub quiet: bool,
}

impl Verbosity {
    /// The level for a destination whose default is `default`: `--quiet` shows errors only,
    /// each `--verbose` one level more.
    pub fn level(self, default: LevelFilter) -> LevelFilter {
        if self.quiet {
            return LevelFilter::ERROR;
        }
        let order = [
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ];
        let start = order.iter().position(|l| *l == default).unwrap_or(1);
        order[(start + usize::from(self.verbose)).min(order.len() - 1)]
    }
}

/// Where records go, decided once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destinations {
    /// Human-readable lines on stderr.
    pub stderr: bool,
    /// Structured records to journald.
    pub journal: bool,
}

/// What start-up knows about stderr and the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Surroundings {
    pub stderr_is_terminal: bool,
    /// systemd connected stderr to the journal (`JOURNAL_STREAM` names stderr's device and inode).
    pub stderr_is_journal: bool,
    pub journal_socket_exists: bool,
}

impl Surroundings {
    /// Looks at this process's stderr, environment and the journal socket.
    pub fn detect() -> Surroundings {
        let stderr = std::io::stderr();
        let stderr_is_journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .and_then(|v| {
                let (dev, ino) = v.split_once(':')?;
                let meta = std::fs::metadata("/proc/self/fd/2").ok()?;
                Some(dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()))
            })
            .unwrap_or(false);
        Surroundings {
            stderr_is_terminal: stderr.is_terminal(),
            stderr_is_journal,
            journal_socket_exists: Path::new(JOURNAL_SOCKET).exists(),
        }
    }

    /// A terminal gets lines only; a unit (stderr already is the journal) gets records only, so
    /// nothing is logged twice; a pipe or file gets lines and, when journald runs, records too.
    pub fn destinations(self) -> Destinations {
        if self.stderr_is_terminal || !self.journal_socket_exists {
            return Destinations {
                stderr: true,
                journal: false,
            };
        }
        Destinations {
            stderr: !self.stderr_is_journal,
            journal: true,
        }
    }
}

/// The filter for one destination: `ISOLATE_LOG` when set, else the verbosity applied to the
/// destination's default (warnings on stderr, informational records in the journal).
fn filter(verbosity: Verbosity, default: LevelFilter) -> EnvFilter {
    match EnvFilter::try_from_env(LOG_ENV) {
        Ok(f) => f,
        Err(_) => EnvFilter::default().add_directive(verbosity.level(default).into()),
    }
}

/// Installs the global subscriber. A journal that cannot be reached falls back to stderr.
pub fn init(verbosity: Verbosity) {
    let mut dest = Surroundings::detect().destinations();
    let journal = if dest.journal {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_field_prefix(Some(JOURNAL_FIELD_PREFIX.into()))
                    .with_filter(filter(verbosity, LevelFilter::INFO)),
            ),
            Err(_) => {
                dest.stderr = true;
                None
            }
        }
    } else {
        None
    };
    let lines = dest.stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .without_time()
            .with_filter(filter(verbosity, LevelFilter::WARN))
    });
    let _ = tracing_subscriber::registry()
        .with(journal)
        .with(lines)
        .try_init();
}

/// The span for records about one stack outside apply's steps (status, audit).
pub fn stack_span(stack: &str) -> tracing::Span {
    tracing::info_span!("stack", stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around(terminal: bool, journal_stream: bool, socket: bool) -> Destinations {
        Surroundings {
            stderr_is_terminal: terminal,
            stderr_is_journal: journal_stream,
            journal_socket_exists: socket,
        }
        .destinations()
    }

    #[test]
    fn a_terminal_gets_lines_only() {
        let d = around(true, false, true);
        assert!(d.stderr && !d.journal);
    }

    #[test]
    fn a_unit_gets_journal_records_only() {
        let d = around(false, true, true);
        assert!(!d.stderr && d.journal);
    }

    #[test]
    fn a_pipe_gets_both_when_journald_runs() {
        let d = around(false, false, true);
        assert!(d.stderr && d.journal);
        let d = around(false, false, false);
        assert!(d.stderr && !d.journal);
    }

    #[test]
    fn verbose_and_quiet_move_the_level() {
        let v = |verbose, quiet| Verbosity { verbose, quiet };
        assert_eq!(v(0, false).level(LevelFilter::WARN), LevelFilter::WARN);
        assert_eq!(v(1, false).level(LevelFilter::WARN), LevelFilter::INFO);
        assert_eq!(v(2, false).level(LevelFilter::WARN), LevelFilter::DEBUG);
        assert_eq!(v(9, false).level(LevelFilter::WARN), LevelFilter::TRACE);
        assert_eq!(v(0, false).level(LevelFilter::INFO), LevelFilter::INFO);
        assert_eq!(v(3, true).level(LevelFilter::INFO), LevelFilter::ERROR);
    }
}
