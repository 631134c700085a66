//! The session part of a plan: linger (so the stack user's manager runs without a login) and
//! podman.socket in that manager, each planned only when it is not already so.
use super::{Draft, NoteKind, StackCtx, Step};
use crate::layout;

pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let (a, name) = (ctx.allocation, ctx.name());
    if !ctx.opts.systemd {
        draft.note(
            NoteKind::Skipped,
            Some(name),
            format!("linger and podman.socket for {} (--no-systemd)", a.user),
        );
        return;
    }
    let m = ctx.obs.managers.get(&a.user).cloned().unwrap_or_default();
    if !m.linger {
        draft.step(Step::EnableLinger {
            stack: name.to_string(),
            user: a.user.clone(),
            uid: a.uid,
        });
    }
    if !(m.socket_enabled && m.socket_active) {
        draft.step(Step::StartPodmanSocket {
            stack: name.to_string(),
            user: a.user.clone(),
            uid: a.uid,
            socket: layout::podman_socket(a.uid),
        });
    } else {
        draft.present(
            Some(name),
            format!("podman.socket of {} enabled and active", a.user),
        );
    }
}
