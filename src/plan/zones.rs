//! A warning for each stack whose subordinate range lies where the host's own allocators
//! (shadow's useradd, NixOS's automatic ranges) hand out ranges: they may give those ids to a
//! user whose line isolate cannot see yet, or (NixOS) without looking at undeclared lines.
use super::{Draft, NoteKind, StackCtx};
use crate::alloc::Source;

pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let a = ctx.allocation;
    for z in ctx.obs.subid_zones.iter().filter(|z| z.overlaps(&a.subids)) {
        let advice = if ctx.allocated.source == Source::New {
            "Pin `subid_start` in the default pool (from 1879048192) or set [pools] apart"
        } else {
            "This range is recorded and never moves: keep that allocator away from it (login.defs SUB_UID_MIN/SUB_UID_MAX; on NixOS, declare the stack users with `isolate export nixos`)"
        };
        draft.note(
            NoteKind::Warning,
            Some(ctx.name()),
            format!(
                "stack `{}`: subordinate ids {} lie where {} hands out ranges on its own; it may give them to a user whose line isolate does not see yet. {advice}",
                ctx.name(),
                a.subids,
                z.allocator
            ),
        );
    }
}
