//! The limits as `isolate export nixos` declares them: `systemd.slices."user-UID".sliceConfig`
//! with the very `[Slice]` settings apply writes into the drop-in, so a rebuild keeps them and
//! NixOS renders the same lines (tests/nixos_limits.rs checks it with NixOS's own modules).
use super::dropin;
use super::schema::StackLimits;
use std::fmt::Write;

/// The Nix lines for one stack's slice (nothing when no limit is set). Values are plain
/// systemd words (digits, suffixes, `%`, `infinity`), quoted as Nix strings.
pub fn slice(w: &mut String, uid: u32, limits: &StackLimits) {
    let settings = dropin::settings(limits);
    if settings.is_empty() {
        return;
    }
    // `write!` to a String cannot fail.
    let _ = writeln!(
        w,
        "  # Its slice's limits: the [Slice] lines apply writes elsewhere into {}.",
        dropin::path(uid).display()
    );
    let _ = writeln!(w, "  systemd.slices.\"user-{uid}\".sliceConfig = {{");
    for (name, value) in &settings {
        let _ = writeln!(w, "    {name} = \"{value}\";");
    }
    let _ = writeln!(w, "  }};");
}
