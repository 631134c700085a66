//! The judgement of a stack's preconditions (pure, over `Facts`): each path its compose reads
//! in place must be reachable by the stack user as apply leaves it (its uid, its group and the
//! groups it is a member of; search permission on every directory down to it, read permission
//! on the path itself unless apply hands it over), and its compose command must be installed.
//! Each failure is a refusal naming the path or command and the fix.
use super::{Draft, StackCtx};
use crate::model::RefusalKind;
use crate::preconditions::{Facts, Node, Read};

const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

/// The stack user as its unit runs: uid and every gid it holds after apply.
pub struct Who<'a> {
    pub user: &'a str,
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// Whether `who` has every permission bit of `want` (4 read, 2 write, 1 search) on `n`, by
/// the kernel's rule: owner, else a named user entry, else the groups, else others; with an
/// ACL, named entries and groups are limited by its mask.
pub fn allows(n: &Node, who: &Who<'_>, want: u32) -> bool {
    if who.uid == 0 {
        return true;
    }
    let has = |bits: u32| bits & want == want;
    if n.uid == who.uid {
        return has((n.mode >> 6) & 7);
    }
    let Some(acl) = &n.acl else {
        return if who.gids.contains(&n.gid) {
            has((n.mode >> 3) & 7)
        } else {
            has(n.mode & 7)
        };
    };
    let mask = acl
        .iter()
        .find(|e| e.tag == ACL_MASK)
        .map_or(7, |e| u32::from(e.perm));
    if let Some(e) = acl.iter().find(|e| e.tag == ACL_USER && e.id == who.uid) {
        return has(u32::from(e.perm) & mask);
    }
    let mut in_a_group = false;
    for e in acl {
        let gid = match e.tag {
            ACL_GROUP_OBJ => n.gid,
            ACL_GROUP => e.id,
            _ => continue,
        };
        if who.gids.contains(&gid) {
            in_a_group = true;
            if has(u32::from(e.perm) & mask) {
                return true;
            }
        }
    }
    if in_a_group {
        return false;
    }
    has(acl
        .iter()
        .find(|e| e.tag == ACL_OTHER)
        .map_or(n.mode & 7, |e| u32::from(e.perm)))
}

/// Adds the refusals of the stack's preconditions.
pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    if !ctx.opts.systemd {
        return;
    }
    let Some(facts) = ctx.obs.preconditions.get(ctx.name()) else {
        return;
    };
    let a = ctx.allocation;
    let mut gids = vec![a.gid];
    for g in &ctx.obs.accounts.group {
        if g.members.iter().any(|m| m == &a.user) && !gids.contains(&g.gid) {
            gids.push(g.gid);
        }
    }
    if let Some(g) = ctx.obs.accounts.group(&ctx.policy.shared_group.value) {
        gids.push(g.gid);
    }
    let who = Who {
        user: &a.user,
        uid: a.uid,
        gids,
    };
    draft
        .refusals
        .extend_texts(RefusalKind::Preconditions, refusals(ctx, facts, &who));
}

fn owner(ctx: &StackCtx<'_>, uid: u32) -> String {
    ctx.obs
        .accounts
        .passwd
        .iter()
        .find(|u| u.uid == uid)
        .map_or_else(|| format!("uid {uid}"), |u| u.name.clone())
}

/// The refusals, one per unreachable path and one for a missing command.
pub fn refusals(ctx: &StackCtx<'_>, facts: &Facts, who: &Who<'_>) -> Vec<String> {
    let s = ctx.stack;
    let mut out = Vec::new();
    if let Some(c) = facts.command.as_ref().filter(|c| c.found.is_none()) {
        let searched: Vec<String> = c
            .searched
            .iter()
            .map(|p| p.parent().unwrap_or(p).display().to_string())
            .collect();
        out.push(format!(
            "stack `{}`: its compose unit runs `{}`, which is not installed (not in {}): install it (Debian: `apt install {}`), or name the compose command with `compose_command` in [stacks.{}]",
            s.name,
            c.name,
            searched.join(", "),
            if c.name.ends_with("docker") { "docker-compose-plugin" } else { "podman-compose" },
            s.name
        ));
    }
    for r in &facts.reads {
        if let Some(refusal) = unreachable(ctx, r, who) {
            out.push(refusal);
        }
    }
    out
}

fn unreachable(ctx: &StackCtx<'_>, r: &Read, who: &Who<'_>) -> Option<String> {
    let s = ctx.stack;
    let handed_over = s.handoff.env_files.iter().any(|e| e.value == r.path);
    // Directories isolate gives the stack (its data paths) are its own after apply.
    let given = |p: &std::path::Path| s.data.iter().any(|d| p.starts_with(&d.value));
    let what = format!(
        "stack `{}`: its compose unit runs as {} and reads {} {} (named in {})",
        s.name,
        who.user,
        r.kind,
        r.path.display(),
        r.named_in.display()
    );
    let last = r.nodes.len().saturating_sub(1);
    for (i, n) in r.nodes.iter().enumerate() {
        if given(&n.path) {
            return None;
        }
        if i == last && r.complete {
            if handed_over {
                return None;
            }
            let want = if n.dir { 5 } else { 4 };
            if allows(n, who, want) {
                return None;
            }
            return Some(format!(
                "{what}, which {} cannot read ({}, owner {}, mode {:04o}): {}",
                who.user,
                if n.dir { "a directory" } else { "a file" },
                owner(ctx, n.uid),
                n.mode,
                if r.kind == "env file" {
                    format!(
                        "name it in `env_files` of [stacks.{}] (apply hands it over to {})",
                        s.name, who.user
                    )
                } else {
                    format!(
                        "let {} read it: `chmod o+r{} {}`",
                        who.user,
                        if n.dir { "x" } else { "" },
                        n.path.display()
                    )
                }
            ));
        }
        if !allows(n, who, 1) {
            return Some(format!(
                "{what}, but {} (owner {}, mode {:04o}{}) does not let {} through: `chmod o+x {}` (or, for {} alone, `setfacl -m u:{}:x {}`), or move the project out of it",
                n.path.display(),
                owner(ctx, n.uid),
                n.mode,
                if n.acl.is_some() { ", with an ACL" } else { "" },
                who.user,
                n.path.display(),
                who.user,
                who.uid,
                n.path.display()
            ));
        }
    }
    match &r.missing {
        Some(gone) if !handed_over => Some(format!(
            "{what}, which does not exist ({} is missing): create it, or take it out of the compose file",
            gone.display()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
