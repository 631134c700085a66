//! The draft written out: the header (legacy owner, where filesystem types came from), one
//! `[stacks.NAME]` block per compose project and one `[shares.NAME]` block per shared path,
//! every decision with its comment.
use super::draft::{Input, PathFacts, StackDraft, Use};
use super::text::{c, p, stack_name, toml_key, toml_string};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

pub(super) fn header(o: &mut String, input: &Input<'_>, n: usize) {
    let _ = writeln!(
        o,
        "# isolate policy drafted by `isolate init` from {n} compose project(s).\n\
         # Read every comment: a TODO needs your decision, a WARNING your attention. Then check it\n\
         # with `isolate plan` and apply one stack at a time (`isolate apply --stack NAME`).\n\
         # Variables came from --env files and each project's .env only, not from this shell."
    );
    if !input.interpolated_with.is_empty() {
        let _ = writeln!(
            o,
            "# TODO: every project was interpolated from --env {} too, but a stack's unit reads only\n\
             # its own env_files (one env file belongs to one stack): copy the variables a project\n\
             # needs from there into its .env.",
            c(&input
                .interpolated_with
                .iter()
                .map(|e| e.display().to_string())
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    match input.mountinfo {
        Some(src) => {
            let _ = writeln!(o, "# Filesystem types from {}.", c(src));
        }
        None => {
            let _ = writeln!(
                o,
                "# TODO: filesystem types unknown (no /proc/self/mountinfo under the root): make sure no\n\
                 # data path is on NFS, CIFS, virtiofs or FUSE, where isolate refuses to migrate."
            );
        }
    }
    let _ = writeln!(o);
    match input.legacy_owner {
        Some(l) if input.legacy_missing => {
            let _ = writeln!(
                o,
                "# TODO: --legacy-owner {} is not in this host's /etc/passwd, so it is left out (plan would\n\
                 # refuse it, and `auto` re-owns everything meanwhile). Name the user who runs the\n\
                 # containers today:\n\
                 # legacy_owner = {}",
                c(l),
                toml_string(l)
            );
        }
        Some(l) => {
            let _ = writeln!(
                o,
                "# The user whose rootless containers own the data today: `auto` shifts what lies in its\n\
                 # subordinate mapping to the same container ids of each stack and re-owns the rest.\n\
                 legacy_owner = {}",
                toml_string(l)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "# TODO: no --legacy-owner. Without it `auto` re-owns every file to the stack user\n\
                 # (container root); a container that runs as another uid (databases: 999) then loses\n\
                 # its files. If these containers ran rootless as one user, set it:\n\
                 # legacy_owner = \"USER\""
            );
        }
    }
    let _ = writeln!(
        o,
        "# user_prefix (\"{}\"), shared_group (\"stk-shared\") and [pools] are isolate's defaults.",
        c(input.user_prefix)
    );
}

pub(super) fn stack(o: &mut String, input: &Input<'_>, name: &str, sd: &StackDraft) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# compose project {} ({}): {}",
        c(&sd.project),
        p(&sd.file),
        c(&sd.services.join(", "))
    );
    let _ = writeln!(o, "[stacks.{}]", toml_key(name));
    o.push_str(&sd.handoff);
    if sd.data.is_empty() {
        let _ = writeln!(o, "data = []  # no bind mount of its own: an account only");
    } else {
        let _ = writeln!(o, "data = [");
        for (path, us) in &sd.data {
            let note = us
                .iter()
                .map(|u| match &u.uid {
                    (Some(n), why) => {
                        format!("{}, container uid {n} ({})", c(&u.describe()), c(why))
                    }
                    (None, why) => {
                        format!("{}, container uid unknown ({})", c(&u.describe()), c(why))
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(
                o,
                "  {},  # {note}",
                toml_string(&path.display().to_string())
            );
        }
        let _ = writeln!(o, "]");
    }
    match input.legacy_owner.filter(|_| !input.legacy_missing) {
        Some(_) => {
            let _ = writeln!(o, "migrate = \"auto\"");
        }
        None => {
            let _ = writeln!(
                o,
                "migrate = \"auto\"  # re-owns everything: see legacy_owner above"
            );
            let mut nonroot: Vec<String> = sd
                .data
                .values()
                .flatten()
                .filter_map(|u| match u.uid.0 {
                    Some(n) if n != 0 => Some(format!("{} (container uid {n})", u.service)),
                    _ => None,
                })
                .collect();
            nonroot.sort();
            nonroot.dedup();
            if !nonroot.is_empty() {
                let _ = writeln!(
                    o,
                    "# TODO: re-owned, the files of {} become container root's, which that service cannot\n\
                     # write as its own uid: set legacy_owner, or chown them inside the container after apply",
                    c(&nonroot.join(", "))
                );
            }
        }
    }
    if sd.data.values().flatten().any(|u| u.chown) {
        let _ = writeln!(
            o,
            "# `:U` makes podman chown the directory to the container user at every start: after the\n\
             # migration that is this stack's mapping, so it stays right."
        );
    }
    if !sd.reaches.is_empty() {
        let _ = writeln!(
            o,
            "# Reached before the split over a shared network; apply publishes each on the host's\n\
             # loopback and gives this stack's containers the way and the name (needs `compose` on both):"
        );
        let _ = writeln!(o, "reaches = [");
        for (e, why) in &sd.reaches {
            let _ = writeln!(o, "  {},  # {}", toml_string(e), c(why));
        }
        let _ = writeln!(o, "]");
    }
    for n in &sd.notes {
        let _ = writeln!(o, "# {n}");
    }
}

pub(super) fn share(
    o: &mut String,
    input: &Input<'_>,
    path: &Path,
    us: &[Use],
    library: Option<&String>,
    names: &mut BTreeSet<String>,
) {
    // Named after its last components, unique.
    let comps: Vec<String> = path
        .components()
        .filter_map(|x| match x {
            std::path::Component::Normal(s) => Some(stack_name(&s.to_string_lossy(), "x")),
            _ => None,
        })
        .collect();
    let mut name = comps.last().cloned().unwrap_or_else(|| "share".into());
    if names.contains(&name) && comps.len() > 1 {
        name = format!("{}-{}", comps[comps.len() - 2], name);
    }
    let base = name.clone();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    let stacks: BTreeSet<&str> = us.iter().map(|u| u.stack.as_str()).collect();
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# {} is {}",
        p(path),
        if let Some(why) = library {
            c(why)
        } else if stacks.len() > 1 {
            format!("mounted by {} stacks: a share", stacks.len())
        } else {
            "mounted by one stack, read-only: a share, not its data (migrating would re-own it)"
                .into()
        }
    );
    let _ = writeln!(o, "[shares.{}]", toml_key(&name));
    let _ = write!(o, "path = {}", toml_string(&path.display().to_string()));
    match input.facts.get(path) {
        Some(PathFacts {
            network_fs: Some(fs),
            ..
        }) => {
            let _ = writeln!(
                o,
                "  # WARNING: on {}: the share's ACLs have to be set on the file server",
                c(fs)
            );
        }
        _ => {
            let _ = writeln!(o);
        }
    }
    let chowned: Vec<String> = us
        .iter()
        .filter(|u| u.chown)
        .map(|u| u.describe())
        .collect();
    if !chowned.is_empty() {
        let _ = writeln!(
            o,
            "# WARNING: `:U` ({}) makes podman chown the whole share to that container's user at every\n\
             # start, over every other grant: drop `:U` from these mounts",
            c(&chowned.join(", "))
        );
    }
    // One grant per (stack, container uid); write wins over read.
    let mut grants: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
    for u in us {
        let grant = match u.uid.0 {
            Some(0) | None => u.stack.clone(),
            Some(n) => format!("{}:{n}", u.stack),
        };
        let why = match u.uid.0 {
            None => format!(
                "{}; TODO: container uid unknown ({}): `{}` means container root, write `{}:UID` if it runs as UID",
                u.describe(),
                u.uid.1,
                u.stack,
                u.stack
            ),
            Some(_) => format!("{}; uid from {}", u.describe(), u.uid.1),
        };
        let e = grants.entry(grant).or_insert((false, Vec::new()));
        e.0 |= !u.read_only;
        e.1.push(why);
    }
    for (key, write) in [("read", false), ("write", true)] {
        let list: Vec<(&String, &Vec<String>)> = grants
            .iter()
            .filter(|(_, (w, _))| *w == write)
            .map(|(g, (_, why))| (g, why))
            .collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(o, "{key} = [");
        for (g, why) in list {
            let _ = writeln!(o, "  {},  # {}", toml_string(g), c(&why.join("; ")));
        }
        let _ = writeln!(o, "]");
    }
}
