//! The progress a walk shows on stderr when it is a terminal: a bar with an ETA when `plan`
//! counted the inodes, a counter with the rate otherwise.
use indicatif::{ProgressBar, ProgressStyle};

/// Whether and how to show progress. Shown on stderr only when it is a terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub enabled: bool,
    /// Inodes expected (`Survey::inodes` from `plan`): gives a bar with an ETA;
    /// without it a counter with the rate is shown.
    pub expected_inodes: Option<u64>,
}

impl Progress {
    pub fn off() -> Progress {
        Progress::default()
    }

    pub(crate) fn bar(&self) -> Option<ProgressBar> {
        use std::io::IsTerminal;
        if !self.enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let (bar, template) = match self.expected_inodes {
            Some(n) if n > 0 => (
                ProgressBar::new(n),
                "{wide_bar} {human_pos}/{human_len} inodes {rate} ETA {eta}",
            ),
            _ => (
                ProgressBar::new_spinner(),
                "{spinner} {human_pos} inodes {rate} {elapsed}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0} files/s", state.per_sec());
                },
            ));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(bar)
    }
}

pub(crate) fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
