//! The `quadlets` key of a stack: the quadlet unit files (`.container`, `.pod`, `.volume`, ...)
//! that define it instead of compose files, and the checks on them that need no host.
use crate::policy::{Problem, StackPolicy};

/// The file suffixes the quadlet generator reads.
pub const QUADLET_SUFFIXES: &[&str] = &[
    "container",
    "pod",
    "volume",
    "network",
    "kube",
    "image",
    "build",
];

/// Problems of one stack's `quadlets`.
pub fn check(s: &StackPolicy) -> Vec<Problem> {
    let h = &s.handoff;
    let mut out = Vec::new();
    for (i, q) in h.quadlets.iter().enumerate() {
        let p = &q.value;
        let shown = p.display();
        if let Some(why) = super::handoff::file_path_problem("quadlet file", p) {
            out.push(Problem::new(q.span.clone(), why));
            continue;
        }
        let suffix = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        let stem = p.file_stem().and_then(|e| e.to_str()).unwrap_or("");
        if stem.is_empty() || !QUADLET_SUFFIXES.contains(&suffix) {
            out.push(Problem::new(
                q.span.clone(),
                format!("quadlet file {shown} is not a quadlet unit (.container, .pod, .volume, .network, .kube, .image or .build)"),
            ));
            continue;
        }
        let earlier = &h.quadlets[..i];
        if earlier.iter().any(|x| x.value == *p) {
            out.push(Problem::new(
                q.span.clone(),
                format!("quadlet file {shown} is listed twice"),
            ));
        } else if earlier.iter().any(|x| x.value.file_name() == p.file_name()) {
            out.push(Problem::new(
                q.span.clone(),
                format!("quadlet file {shown} has the name of another of the stack's quadlet files; they all go into one directory"),
            ));
        }
    }
    if let Some(first) = h.quadlets.first() {
        if !h.compose.is_empty() {
            out.push(Problem::new(
                first.span.clone(),
                format!(
                    "stack `{}` names both `compose` files and `quadlets`: a stack is one or the other",
                    s.name
                ),
            ));
        }
        if let Some(service) = h.service.as_ref().filter(|x| x.value) {
            out.push(Problem::new(
                service.span.clone(),
                format!(
                    "stack `{}` asks for a compose service and names `quadlets`: its quadlet units are its service",
                    s.name
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::policy::Policy;
    use std::path::Path;

    fn errors(text: &str) -> Vec<String> {
        match Policy::parse(Path::new("policy.toml"), text) {
            Err(Error::Policy(lines)) => lines,
            Err(e) => panic!("not a policy error: {e}"),
            Ok(_) => panic!("policy was accepted"),
        }
    }

    #[test]
    fn a_quadlet_stack_parses() {
        let p = Policy::parse(
            Path::new("p.toml"),
            "legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\nquadlets = [\"/home/alice/.config/containers/systemd/app.pod\", \"/home/alice/.config/containers/systemd/web.container\"]\n",
        )
        .unwrap();
        let q: Vec<String> = p.stacks["app"]
            .handoff
            .quadlets
            .iter()
            .map(|q| q.value.display().to_string())
            .collect();
        assert_eq!(
            q,
            vec![
                "/home/alice/.config/containers/systemd/app.pod",
                "/home/alice/.config/containers/systemd/web.container"
            ]
        );
    }

    #[test]
    fn bad_quadlets_are_refused_with_their_position() {
        let text = "legacy_owner = \"alice\"\n[stacks.app]\ndata = [\"/srv/app\"]\nquadlets = [\"web.container\", \"/q/web.service\", \"/q/a.pod\", \"/r/a.pod\", \"/q/a.pod\"]\n[stacks.both]\ndata = [\"/srv/both\"]\ncompose = [\"/srv/both.yaml\"]\nservice = true\nquadlets = [\"/q/b.container\"]\n";
        assert_eq!(
            errors(text),
            vec![
                "policy.toml:4:13: quadlet file \"web.container\" is a relative path; it must be absolute",
                "policy.toml:4:30: quadlet file /q/web.service is not a quadlet unit (.container, .pod, .volume, .network, .kube, .image or .build)",
                "policy.toml:4:60: quadlet file /r/a.pod has the name of another of the stack's quadlet files; they all go into one directory",
                "policy.toml:4:72: quadlet file /q/a.pod is listed twice",
                "policy.toml:8:11: stack `both` asks for a compose service and names `quadlets`: its quadlet units are its service",
                "policy.toml:9:13: stack `both` names both `compose` files and `quadlets`: a stack is one or the other",
            ]
        );
    }
}
