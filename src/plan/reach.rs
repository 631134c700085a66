//! The `reaches` part of a plan: a stack's override step (or a note that it is as it should
//! be), pure from the policy and the observed facts.
use super::{Draft, Note, NoteKind, StackCtx, Step};
use crate::model::RefusalKind;
use crate::policy::reach::takes_part;
use crate::reach::plan::{ConfFile, ReachStep};
use crate::reach::{
    allocate_ports, conf_path, override_path, render_override, targets, Networking, OverrideInput,
};
use std::collections::BTreeMap;

fn note(stack: &str, kind: NoteKind, message: String) -> Note {
    Note {
        kind,
        stack: Some(stack.to_string()),
        message,
    }
}

/// The stack's override step (or a note that it is as it should be), and warnings about
/// connections the compose files show that the policy does not declare.
pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>) {
    let (policy, s, obs) = (ctx.policy, ctx.stack, ctx.obs);
    let facts = &obs.reach;
    // Undeclared: another stack joins one of the external networks this one joins.
    if let Some(mine) = facts.joins.get(&s.name) {
        for (other, theirs) in &facts.joins {
            if other == &s.name {
                continue;
            }
            let shared: Vec<&String> = mine.intersection(theirs).collect();
            let declared = s.reaches.iter().any(|r| &r.value.stack == other)
                || policy
                    .stacks
                    .get(other)
                    .is_some_and(|o| o.reaches.iter().any(|r| r.value.stack == s.name));
            if !shared.is_empty() && !declared {
                draft.plan.notes.push(note(
                    &s.name,
                    NoteKind::Warning,
                    format!(
                        "stacks `{}` and `{other}` join the external podman network {} in their compose files: after the split they live in different users' network namespaces and no longer reach each other; declare the path with `reaches = [\"STACK:SERVICE:PORT\"]` on the stack that connects (isolate init drafts it)",
                        s.name,
                        shared.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    if !takes_part(policy, &s.name) {
        return;
    }
    if s.handoff.compose.is_empty() {
        let (what, with) = if s.reaches.is_empty() {
            (
                "is reached by other stacks (`reaches`)",
                "publishes its port",
            )
        } else {
            ("has `reaches`", "gives its containers the way out")
        };
        draft.refusals.push(RefusalKind::Reach, format!(
            "stack `{}` {what} but no `compose`: the override that {with} is added to its compose files; name them",
            s.name
        ));
        return;
    }
    let all = targets(policy);
    let (ports, new_all) = allocate_ports(&facts.record, all.keys().map(String::as_str));
    let compose = obs.handoff.get(&s.name).map(|h| &h.compose);
    let mut input = OverrideInput {
        stack: s.name.clone(),
        ..Default::default()
    };
    for (key, (r, who)) in &all {
        if r.stack == s.name {
            input
                .published
                .push((r.service.clone(), r.port, ports[key], who.clone()));
            if let Some(c) = compose {
                if !c.services.is_empty() && !c.services.iter().any(|sv| sv.name == r.service) {
                    draft.refusals.push(RefusalKind::Reach, format!(
                        "stack `{}`: `reaches` entries name service `{}` of it ({}), which its compose files do not declare (services: {})",
                        s.name,
                        r.service,
                        who.join(", "),
                        c.services.iter().map(|sv| sv.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    for r in &s.reaches {
        let port = ports[&r.value.to_string()];
        if port != r.value.port {
            draft.plan.notes.push(note(
                &s.name,
                NoteKind::Warning,
                format!(
                    "{} is published on host port {port} (port {} is another target's): `{}` must reach it as {}:{port}",
                    r.value, r.value.port, s.name, r.value.service
                ),
            ));
        }
        input.reaches.push((r.value.clone(), port));
    }
    if let Some(c) = compose {
        input.external_networks = c
            .external_networks
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        if !s.reaches.is_empty() {
            let joined: Vec<String> = c
                .services
                .iter()
                .filter(|sv| {
                    sv.networks
                        .iter()
                        .any(|n| c.external_networks.contains_key(n))
                })
                .map(|sv| sv.name.clone())
                .collect();
            input.reaching_services = if joined.is_empty() {
                c.services
                    .iter()
                    .filter(|sv| sv.network_mode.is_none())
                    .map(|sv| sv.name.clone())
                    .collect()
            } else {
                joined
            };
        }
    }
    let net = Networking::for_podman(facts.podman_major);
    let text = render_override(&input, net);
    // Only the entries about this stack's paths are recorded by its step.
    let new_ports: BTreeMap<String, u16> = new_all
        .into_iter()
        .filter(|(k, _)| {
            all.get(k)
                .is_some_and(|(r, who)| r.stack == s.name || who.contains(&s.name))
        })
        .collect();
    let conf = (!s.reaches.is_empty()).then(|| {
        let a = ctx.allocation;
        let home = crate::handoff::service::home_of(&obs.accounts, a);
        ConfFile {
            path: conf_path(&home),
            home,
            uid: a.uid,
            gid: a.gid,
            text: net.containers_conf(),
        }
    });
    let conf_as_wanted = match &conf {
        None => true,
        Some(c) => facts.confs.get(&s.name).cloned().flatten().as_deref() == Some(c.text.as_str()),
    };
    let warnings = super::reach_legacy::plan_target(draft, ctx);
    let current = facts.overrides.get(&s.name).cloned().flatten();
    if current.as_deref() == Some(text.as_str()) && new_ports.is_empty() && conf_as_wanted {
        draft.plan.notes.push(note(
            &s.name,
            NoteKind::Present,
            format!(
                "reach override {} as the policy wants",
                override_path(&s.name).display()
            ),
        ));
    } else {
        draft.step(Step::Reach(ReachStep {
            stack: s.name.clone(),
            path: override_path(&s.name),
            text,
            new_ports,
            gid: ctx.allocation.gid,
            conf,
            warnings,
        }));
    }
    // After the reach step, which records the host ports the legacy publish uses.
    if !s.reaches.is_empty() {
        super::reach_legacy::plan_reacher(draft, ctx, &ports);
    }
}
