//! The account part of a plan: the shared group, the stack's recorded allocation, its own
//! group, its user, its membership in the shared group and its subordinate ids.
use super::nixos::account_step;
use super::{Draft, StackCtx, Step};
use crate::alloc::Source;
use crate::host::accounts::etc::SubidFile;
use crate::layout;
use crate::model::RefusalKind;
use crate::observe::Observed;
use crate::policy::Policy;

/// The group every stack user joins, created once before any stack's steps.
pub fn shared_group(draft: &mut Draft, policy: &Policy, obs: &Observed) {
    let group = &policy.shared_group.value;
    match obs.accounts.group(group) {
        Some(g) => draft.present(None, format!("group {group} (gid {})", g.gid)),
        None => account_step(
            draft,
            obs,
            Step::CreateGroup {
                group: group.clone(),
                // A gid recorded by `export nixos` is kept; otherwise groupadd picks one.
                gid: obs
                    .state
                    .shared_group
                    .as_ref()
                    .filter(|g| &g.name == group)
                    .map(|g| g.gid),
            },
        ),
    }
}

pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let (acc, a, name) = (&ctx.obs.accounts, ctx.allocation, ctx.name());
    let source = ctx.allocated.source;
    if source == Source::New || source == Source::Adopted {
        draft.step(Step::RecordAllocation {
            stack: name.to_string(),
            user: a.user.clone(),
            uid: a.uid,
            gid: a.gid,
            subids: a.subids,
        });
    }
    match acc.group_by_gid(a.gid) {
        Some(g) if g.name == a.user || source == Source::Adopted => {}
        Some(g) => draft.refusals.push(
            RefusalKind::Accounts,
            format!(
                "stack `{name}`: gid {} belongs to group `{}`, not `{}`",
                a.gid, g.name, a.user
            ),
        ),
        None => account_step(
            draft,
            ctx.obs,
            Step::CreateGroup {
                group: a.user.clone(),
                gid: Some(a.gid),
            },
        ),
    }
    match acc.user(&a.user) {
        Some(u) if u.uid == a.uid => {
            draft.present(Some(name), format!("user {} (uid {})", a.user, a.uid))
        }
        Some(u) => draft.refusals.push(
            RefusalKind::Accounts,
            format!(
                "stack `{name}`: user {} has uid {}, but isolate recorded {}",
                a.user, u.uid, a.uid
            ),
        ),
        None => {
            if let Some(other) = acc.user_by_uid(a.uid) {
                draft.refusals.push(
                    RefusalKind::Accounts,
                    format!(
                        "stack `{name}`: uid {} now belongs to user `{}`",
                        a.uid, other.name
                    ),
                );
            }
            account_step(
                draft,
                ctx.obs,
                Step::CreateUser {
                    stack: name.to_string(),
                    user: a.user.clone(),
                    uid: a.uid,
                    gid: a.gid,
                    home: layout::home(&a.user),
                    shell: ctx.obs.nologin.clone(),
                },
            );
        }
    }
    let group = &ctx.policy.shared_group.value;
    let member = acc
        .group(group)
        .is_some_and(|g| g.members.contains(&a.user));
    if !member {
        account_step(
            draft,
            ctx.obs,
            Step::AddToGroup {
                stack: name.to_string(),
                user: a.user.clone(),
                group: group.clone(),
            },
        );
    }
    let has = |f: &SubidFile| f.ranges_of(&a.user, Some(a.uid)).contains(&a.subids);
    let (subuid, subgid) = (!has(&acc.subuid), !has(&acc.subgid));
    if subuid || subgid {
        account_step(
            draft,
            ctx.obs,
            Step::AddSubids {
                stack: name.to_string(),
                user: a.user.clone(),
                subids: a.subids,
                subuid,
                subgid,
            },
        );
    } else {
        draft.present(
            Some(name),
            format!(
                "subordinate ids {}:{}:{}",
                a.user, a.subids.start, a.subids.count
            ),
        );
    }
}
