//! Units that would undo a stack's isolation (`preconditions::units`): each is a warning
//! naming the unit, its file and line, and the fix. Not a refusal: the unit is the admin's,
//! may be disabled, masked or about to go in the same deploy (on NixOS the Nix change and
//! `services.isolate.apply` land in one `nixos-rebuild switch`), and apply's own work is not
//! harmed until it starts; audit keeps reporting it as a finding while it is there.
use super::{Draft, NoteKind, StackCtx};
use crate::preconditions::units::{judge, StackView};

pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let view = StackView::of(ctx.stack, &ctx.allocation.user, ctx.allocation.uid);
    for u in judge(&ctx.obs.units, &view, ctx.obs.nixos) {
        draft.note(NoteKind::Warning, Some(ctx.name()), u.message());
    }
}
