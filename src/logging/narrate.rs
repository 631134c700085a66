//! apply says what it waits for: one line per wait (the user manager, podman.socket, the
//! compose project) naming it and its timeout, and on a terminal a spinner counting the time
//! left. Off unless the command line turns it on (text output, not --quiet): JSON output,
//! tests and library callers stay silent.
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const OFF: u8 = 0;
const LINES: u8 = 1;
const COUNTDOWN: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(OFF);

/// Turns narration on (`terminal`: with a countdown) or off.
pub fn enable(on: bool, terminal: bool) {
    let mode = match (on, terminal) {
        (false, _) => OFF,
        (true, false) => LINES,
        (true, true) => COUNTDOWN,
    };
    MODE.store(mode, Ordering::Relaxed);
}

/// One wait in progress; its line ends when it is dropped.
pub struct Wait {
    bar: Option<ProgressBar>,
    started: Instant,
    what: String,
}

/// The line of a wait: what is waited for, and for how long at most.
pub fn line(what: &str, timeout: Duration) -> String {
    format!("waiting for {what} (up to {} s)", timeout.as_secs())
}

/// Starts narrating a wait for `what`, at most `timeout`.
pub fn wait(what: impl Into<String>, timeout: Duration) -> Wait {
    let what = what.into();
    let started = Instant::now();
    let bar = match MODE.load(Ordering::Relaxed) {
        OFF => None,
        LINES => {
            eprintln!("{}", line(&what, timeout));
            None
        }
        _ => {
            let bar = ProgressBar::new_spinner();
            let style =
                ProgressStyle::with_template("{spinner} {msg}: {elapsed} so far, {left} left")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key(
                        "left",
                        move |s: &ProgressState, out: &mut dyn std::fmt::Write| {
                            let _ =
                                write!(out, "{} s", timeout.saturating_sub(s.elapsed()).as_secs());
                        },
                    );
            bar.set_style(style);
            bar.set_message(format!("waiting for {what}"));
            bar.enable_steady_tick(Duration::from_millis(200));
            Some(bar)
        }
    };
    Wait { bar, started, what }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            eprintln!(
                "waited {} s for {}",
                self.started.elapsed().as_secs(),
                self.what
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wait_line_names_what_and_how_long() {
        assert_eq!(
            super::line(
                "user@1800.service (the user manager of stk-app)",
                std::time::Duration::from_secs(30)
            ),
            "waiting for user@1800.service (the user manager of stk-app) (up to 30 s)"
        );
    }
}
