//! On NixOS (`/etc/NIXOS` under the root) accounts and subordinate ids are the configuration's:
//! a rebuild rewrites /etc/subuid and /etc/subgid from declared users only (also with
//! `users.mutableUsers = true`). So the account steps become a list of what the configuration
//! must declare (`isolate export nixos`), and apply refuses until it does.
use super::{Draft, NoteKind, Plan, Step};
use crate::error::Error;
use crate::model::RefusalKind;
use crate::observe::Observed;

/// What to run on NixOS when accounts are missing.
pub const HOWTO: &str = "run `isolate export nixos --output /etc/nixos/isolate-stacks.nix`, add that file to `imports` in /etc/nixos/configuration.nix, run `nixos-rebuild switch`, then `isolate apply` again";

/// An account step: planned, or on NixOS listed as missing from the host's configuration.
pub fn account_step(draft: &mut Draft, obs: &Observed, step: Step) {
    if obs.nixos {
        let line = step.to_string();
        draft
            .plan
            .nixos_missing
            .push(line.trim_start_matches(['+', ' ']).to_string());
    } else {
        draft.step(step);
    }
}

/// The note that says what to declare, once every stack was planned.
pub fn note_missing(draft: &mut Draft) {
    if draft.plan.nixos_missing.is_empty() {
        return;
    }
    let missing = draft.plan.nixos_missing.join("; ");
    draft.note(
        NoteKind::Warning,
        None,
        format!(
            "NixOS host: accounts and subordinate ids are declared in its configuration (a rebuild rewrites /etc/subuid and /etc/subgid from it). Not declared yet: {missing}. To declare them: {HOWTO}"
        ),
    );
}

impl Plan {
    /// The refusal apply gives on NixOS while accounts are missing (exit 2, nothing changed).
    pub fn nixos_refusal(&self) -> Option<Error> {
        if self.nixos_missing.is_empty() {
            return None;
        }
        Some(Error::refused(RefusalKind::NixOs, format!(
            "this is a NixOS host (/etc/NIXOS): its configuration declares accounts and subordinate ids, and a rebuild would undo any isolate created. Not declared yet: {}.\n{HOWTO}",
            self.nixos_missing.join("; ")
        )))
    }
}
