//! `isolate export nixos` for a stack defined by quadlet units: on NixOS those units come from
//! the configuration (quadlet-nix), so a file apply moved into the stack user's quadlet
//! directory would be undone by the next rebuild, which writes the root-level declarations back
//! into /etc/containers/systemd. Instead the module declares each unit for the stack user with
//! quadlet-nix under home-manager (`home-manager.users.stk-NAME.virtualisation.quadlet.KIND.STEM`,
//! run by the stack user's own systemd manager, as apply runs them elsewhere), with `rawConfig`
//! holding exactly the file isolate's quadlet plan installs for the stack user
//! (`quadlet::rewrite::for_stack`: no `User=`/`UserNS=`
//! that only made sense rootful, `%h` resolved, file names and so `Pod=`/`Network=`/`.volume`
//! references unchanged), and names in comments the legacy declarations to delete. What cannot
//! be declared is said in a comment, never guessed.
use super::nixos::{comment, string};
use super::quadlet_sources::{QuadletSource, StackQuadlets};
use super::{Export, ExportStack};
use crate::error::Result;
use crate::quadlet::rewrite::{self, Origin};
use crate::quadlet::unit::parse_entries;
use crate::quadlet::{place, QuadletFile, QuadletKind};
use std::fmt::Write;
use std::path::Path;

/// quadlet-nix's attribute set for a kind of file.
fn attr_set(kind: QuadletKind) -> &'static str {
    match kind {
        QuadletKind::Container => "containers",
        QuadletKind::Pod => "pods",
        QuadletKind::Volume => "volumes",
        QuadletKind::Network => "networks",
        QuadletKind::Kube => "kubes",
        QuadletKind::Image => "images",
        QuadletKind::Build => "builds",
    }
}

/// The unit quadlet-nix gives a file (its `_serviceName`): it does not read `ServiceName=`.
fn quadlet_nix_service(kind: QuadletKind, stem: &str) -> String {
    match kind {
        QuadletKind::Container | QuadletKind::Kube => format!("{stem}.service"),
        k => format!("{stem}-{}.service", k.suffix()),
    }
}

/// The quadlet-nix option a line of a file comes from, for the comment on what changed.
fn typed_option(kind: QuadletKind, section: &str, key: &str) -> String {
    match section {
        "Service" => format!("serviceConfig.{key}"),
        "Unit" => format!("unitConfig.{key}"),
        s if s == kind.section() => {
            let option = match key {
                "UserNS" => "userns",
                "User" => "user",
                "Group" => "group",
                "Volume" => "volumes",
                "Mount" => "mounts",
                "Exec" => "exec",
                "Environment" => "environments",
                "EnvironmentFile" => "environmentFiles",
                "WorkingDir" => "workdir",
                other => other,
            };
            format!("{}Config.{option}", kind.suffix())
        }
        other => format!("[{other}] {key}="),
    }
}

/// A Nix indented string (`''...''`) holding exactly `text`, its lines indented by `indent`
/// spaces: `''`, `${` and tabs escaped. None when the text cannot be one that reads back
/// exactly (no final newline, control characters other than tab, or a lone `'` right before
/// an escape); the caller then writes a double-quoted string.
pub fn indented(text: &str, indent: usize) -> Option<String> {
    let other_control = text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t');
    if !text.ends_with('\n') || other_control || text.contains("'${") || text.contains("'\t") {
        return None;
    }
    let pad = " ".repeat(indent);
    let mut out = String::from("''\n");
    for line in text.split_terminator('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
        }
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("''") {
                out.push_str("'''");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("${") {
                out.push_str("''${");
                rest = r;
            } else if c == '\t' {
                out.push_str("''\\t");
                rest = &rest[1..];
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent.saturating_sub(2)));
    out.push_str("''");
    Some(out)
}

/// quadlet-nix's NixOS module, once, when any stack has quadlet units: it enables podman (whose
/// package brings the quadlet generator the stack users' managers run).
pub fn enable(w: &mut String, e: &Export) {
    if e.stacks.iter().all(|s| s.quadlets.files.is_empty()) {
        return;
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  # Quadlet stacks below are declared with quadlet-nix (github.com/SEIAROTg/quadlet-nix):\n  \
         # import its NixOS module (quadlet-nix.nixosModules.quadlet), home-manager's NixOS module,\n  \
         # and its home-manager module for the stack users, e.g.\n  \
         #   home-manager.sharedModules = [ quadlet-nix.homeManagerModules.quadlet ];\n  \
         # With no root-level quadlet left, this keeps podman and its quadlet generator enabled."
    );
    let _ = writeln!(w, "  virtualisation.quadlet.enable = true;");
}

/// For the export's summary line: the quadlet stacks declared, what to delete, what is not.
pub fn summary(e: &Export) -> String {
    let stacks: Vec<&str> = e
        .stacks
        .iter()
        .filter(|s| !s.quadlets.files.is_empty())
        .map(|s| s.stack.as_str())
        .collect();
    if stacks.is_empty() {
        return String::new();
    }
    let unread = e
        .stacks
        .iter()
        .flat_map(|s| &s.quadlets.files)
        .filter(|f| f.text.is_err())
        .count();
    let mut out = format!(
        "; quadlet units of {} declared for home-manager with quadlet-nix: delete the legacy declarations the module names",
        stacks.join(", ")
    );
    if unread > 0 {
        out.push_str(&format!(
            "; {unread} quadlet file(s) NOT declared, unreadable (the module says why)"
        ));
    }
    out
}

/// What declared a legacy file, for the comment naming what to delete.
fn legacy_declaration(
    path: &Path,
    kind: QuadletKind,
    stem: &str,
    owner: Option<&str>,
) -> Result<String> {
    let attr = format!(
        "virtualisation.quadlet.{}.{}",
        attr_set(kind),
        string(stem)?
    );
    let shown = comment(&path.display().to_string());
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok(if parent == Path::new(place::ROOTFUL_DIR) {
        format!("{attr}  ({shown}, root's)")
    } else if parent.ends_with(".config/containers/systemd") {
        let owner = owner.map_or_else(|| Ok("OWNER".to_string()), string)?;
        format!("home-manager.users.{owner}.{attr}  ({shown})")
    } else {
        format!("whatever writes {shown} (quadlet-nix writes no file there; e.g. environment.etc)")
    })
}

/// The declarations of a stack's quadlet units for its user; nothing for a stack without.
pub fn stack(w: &mut String, s: &ExportStack) -> Result<()> {
    let q: &StackQuadlets = &s.quadlets;
    if q.files.is_empty() {
        return Ok(());
    }
    let user = string(&s.user)?;
    let mut delete = Vec::new();
    let mut body = String::new();
    for f in &q.files {
        file(&mut body, &mut delete, q, f)?;
    }
    let _ = writeln!(
        w,
        "  # The quadlet units of stack {}, for {}'s own systemd manager (rootless, lingering: see\n  \
         # linger above), with quadlet-nix under home-manager (not `rootlessConfig.uid`, which runs\n  \
         # them as system units). Delete the declarations of the legacy units, or the next rebuild\n  \
         # writes them back and both copies start:",
        comment(&s.stack),
        comment(&s.user)
    );
    for d in &delete {
        let _ = writeln!(w, "  #   {d}");
    }
    let _ = writeln!(
        w,
        "  # home-manager links them into {}'s ~/.config/containers/systemd/, a directory the stack\n  \
         # user owns (elsewhere isolate's quadlet plan puts them, root-owned, in /etc/containers/systemd/users/{}/\n  \
         # where podman has it).\n  \
         # autoStart = false: the rebuild installs them and starts none (home-manager would start\n  \
         # them at once, before the data and volumes are the stack user's, and the stack would\n  \
         # start on a new empty volume); each file's own [Install] starts it at boot through\n  \
         # podman's quadlet generator.",
        comment(&s.user),
        s.uid
    );
    let _ = writeln!(
        w,
        "  home-manager.users.{user} = {{ osConfig, lib, ... }}: {{"
    );
    let _ = writeln!(
        w,
        "    home.stateVersion = lib.mkDefault osConfig.system.stateVersion;"
    );
    w.push_str(&body);
    let _ = writeln!(w, "  }};");
    Ok(())
}

/// One file's declaration (or the comment saying why there is none) into `w`, and what to
/// delete into `delete`.
fn file(
    w: &mut String,
    delete: &mut Vec<String>,
    q: &StackQuadlets,
    f: &QuadletSource,
) -> Result<()> {
    let shown = comment(&f.path.display().to_string());
    let name = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(kind) = QuadletKind::of_file_name(name) else {
        let _ = writeln!(w, "    # {shown}: not declared, not a quadlet file name");
        return Ok(());
    };
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    delete.push(legacy_declaration(
        &f.path,
        kind,
        stem,
        q.legacy_owner.as_deref(),
    )?);
    let text = match &f.text {
        Ok(t) => t,
        Err(why) => {
            let _ = writeln!(
                w,
                "    # {shown}: NOT DECLARED, it could not be read: {}",
                comment(why)
            );
            return Ok(());
        }
    };
    let legacy = QuadletFile {
        name: name.to_string(),
        kind,
        text: text.clone(),
    };
    let home = match &q.legacy_home {
        Some(h) => h.clone(),
        None if text.contains("%h") => {
            let _ = writeln!(
                w,
                "    # {shown}: NOT DECLARED, its %h meant the home of the legacy owner ({}), whom this host does not know",
                comment(q.legacy_owner.as_deref().unwrap_or("the policy names no legacy_owner"))
            );
            return Ok(());
        }
        None => String::new(),
    };
    let r = rewrite::for_stack(&legacy, &Origin { home });
    let installed = QuadletFile {
        text: r.text.clone(),
        ..legacy.clone()
    };
    let _ = writeln!(
        w,
        "    # {}: the file isolate's quadlet plan installs for the stack user, byte for byte (rawConfig;\n    \
         # quadlet-nix's typed options would add lines it lacks, e.g. a name, Restart=, TimeoutStartSec=).",
        comment(name)
    );
    if !r.changes.is_empty() {
        let _ = writeln!(
            w,
            "    # Changed from the legacy file (marked `# isolate:` in it); moving your typed options instead, change:"
        );
        let entries = legacy.entries();
        for c in &r.changes {
            let option = entries
                .iter()
                .find(|e| e.line + 1 == c.line)
                .map(|e| typed_option(kind, &e.section, &e.key))
                .unwrap_or_default();
            let action = if r.text.contains(&format!("# isolate: removed {:?}", c.was)) {
                "removed"
            } else {
                "rewritten"
            };
            let _ = writeln!(
                w,
                "    #   line {} {} ({option}): {action} ({})",
                c.line,
                comment(&format!("{:?}", c.was)),
                comment(&c.why)
            );
        }
    }
    let targets: Vec<String> = parse_entries(&r.text)
        .into_iter()
        .filter(|e| e.section == "Install" && e.key == "WantedBy")
        .flat_map(|e| {
            e.value
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    // Volumes, networks, images and builds start with what needs them; a container in a pod
    // with its pod (podman 5's StartWithPod=).
    let started_alone = match kind {
        QuadletKind::Pod | QuadletKind::Kube => true,
        QuadletKind::Container => !legacy.references().iter().any(|r| r.key == "Pod"),
        _ => false,
    };
    if targets.is_empty() && started_alone {
        let _ = writeln!(
            w,
            "    # No [Install] WantedBy=: nothing starts it at boot (quadlet-nix's root-level autoStart did);\n    \
             # if it should start, give it `autoStart = true` in your configuration once the stack has moved."
        );
    }
    if targets.iter().any(|t| t != "default.target") {
        let _ = writeln!(
            w,
            "    # [Install] WantedBy={}: a user manager has only its own targets (default.target, not multi-user.target).",
            comment(&targets.join(" "))
        );
    }
    let service = installed.service_name();
    let theirs = quadlet_nix_service(kind, stem);
    if service != theirs {
        let _ = writeln!(
            w,
            "    # ServiceName= makes it {}, while quadlet-nix names it {}: its drop-in and restart on change miss the unit.",
            comment(&service),
            comment(&theirs)
        );
    }
    let raw = match indented(&r.text, 8) {
        Some(t) => t,
        None => string(&r.text)?,
    };
    let _ = writeln!(
        w,
        "    virtualisation.quadlet.{}.{} = {{",
        attr_set(kind),
        string(stem)?
    );
    let _ = writeln!(w, "      autoStart = lib.mkDefault false;");
    let _ = writeln!(w, "      rawConfig = {raw};");
    let _ = writeln!(w, "    }};");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates a Nix expression to JSON; None without Nix.
    fn nix_eval_json(expr: &str) -> Option<serde_json::Value> {
        let out = match std::process::Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "-E", expr])
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("nix-instantiate: {e}"),
        };
        assert!(
            out.status.success(),
            "{}\n{expr}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    const TEXTS: &[&str] = &[
        "[Container]\nImage=x\n",
        "''\n'''\n''''x''\n",
        "${a} $${b} $$ $ {c} ''${d}\n",
        "'$x' 'a' '\n",
        "\ttab\n  spaced\n   \n\n\nlast\n",
        "back\\slash ''\\n ''\\t\n",
        "Ünïcødé ✓\n",
        "x'${y}\n",
        "no final newline",
        "cr\r\n",
        "q'\tr\n",
    ];

    #[test]
    fn indented_strings_read_back_exactly_or_are_not_used() {
        let list: Vec<String> = TEXTS
            .iter()
            .map(|t| indented(t, 8).unwrap_or_else(|| string(t).unwrap()))
            .collect();
        assert!(indented(TEXTS[0], 8).is_some() && indented(TEXTS[4], 8).is_some());
        for t in &TEXTS[7..] {
            assert_eq!(indented(t, 8), None, "{t:?}");
        }
        let Some(got) = nix_eval_json(&format!("[\n{}\n]", list.join("\n"))) else {
            eprintln!("SKIPPED indented_strings_read_back_exactly_or_are_not_used: nix-instantiate is not installed");
            return;
        };
        let want: Vec<serde_json::Value> = TEXTS.iter().map(|s| (*s).into()).collect();
        assert_eq!(got, serde_json::Value::Array(want));
    }

    fn stack_with(files: Vec<QuadletSource>, owner: &str, home: Option<&str>) -> ExportStack {
        ExportStack {
            stack: "app".into(),
            user: "stk-app".into(),
            uid: 70001,
            gid: 70001,
            subids: crate::ids::SubidRange::new(0x7000_0000, 65_536).unwrap(),
            home: "/var/lib/isolate/home/stk-app".into(),
            description: "isolate stack app".into(),
            data: vec![],
            orphaned: false,
            user_units: vec![],
            plugged: Default::default(),
            quadlets: StackQuadlets {
                legacy_owner: Some(owner.into()),
                legacy_home: home.map(str::to_string),
                files,
            },
        }
    }

    fn source(path: &str, text: Result<&str, &str>) -> QuadletSource {
        QuadletSource {
            path: path.into(),
            text: text.map(str::to_string).map_err(str::to_string),
        }
    }

    #[test]
    fn a_users_units_name_her_home_manager_declarations_and_what_cannot_be_declared_is_said() {
        let s = stack_with(
            vec![
                source(
                    "/home/alice/.config/containers/systemd/web.container",
                    Ok("[Container]\nImage=x\nVolume=%h/web:/w\nUserNS=auto\n[Service]\nUser=alice\n[Install]\nWantedBy=default.target\n"),
                ),
                source(
                    "/etc/containers/systemd/users/1000/front.container",
                    Ok("[Container]\nImage=y\nServiceName=front-svc\n[Install]\nWantedBy=multi-user.target\n"),
                ),
                source("/home/alice/.config/containers/systemd/gone.volume", Err("no such file")),
            ],
            "alice",
            Some("/home/alice"),
        );
        let mut w = String::new();
        stack(&mut w, &s).unwrap();
        for want in [
            "  #   home-manager.users.\"alice\".virtualisation.quadlet.containers.\"web\"  (/home/alice/.config/containers/systemd/web.container)\n",
            "  #   whatever writes /etc/containers/systemd/users/1000/front.container (quadlet-nix writes no file there; e.g. environment.etc)\n",
            "  #   home-manager.users.\"alice\".virtualisation.quadlet.volumes.\"gone\"",
            "    #   line 3 \"Volume=%h/web:/w\" (containerConfig.volumes): rewritten (%h meant /home/alice, the legacy owner's home; data keeps its path)\n",
            "    #   line 4 \"UserNS=auto\" (containerConfig.userns): removed",
            "    #   line 6 \"User=alice\" (serviceConfig.User): removed",
            "    # ServiceName= makes it front-svc.service, while quadlet-nix names it front.service",
            // The quadlet rewrite makes multi-user.target the user manager's default.target.
            "    #   line 5 \"WantedBy=multi-user.target\" ([Install] WantedBy=): rewritten (a user manager has no multi-user.target",
            "        WantedBy=default.target\n",
            "    # /home/alice/.config/containers/systemd/gone.volume: NOT DECLARED, it could not be read: no such file\n",
            "        Volume=/home/alice/web:/w\n",
            "  home-manager.users.\"stk-app\" = { osConfig, lib, ... }: {\n",
        ] {
            assert!(w.contains(want), "{want}\n---\n{w}");
        }
        assert!(
            !w.contains("virtualisation.quadlet.volumes.\"gone\" ="),
            "{w}"
        );

        // Without the legacy owner's home a %h cannot be resolved: said, not guessed.
        let s = stack_with(
            vec![source(
                "/srv/q/web.container",
                Ok("[Container]\nVolume=%h/x:/x\n"),
            )],
            "ghost",
            None,
        );
        let mut w = String::new();
        stack(&mut w, &s).unwrap();
        assert!(
            w.contains("NOT DECLARED, its %h meant the home of the legacy owner (ghost)"),
            "{w}"
        );
        assert!(!w.contains("rawConfig"), "{w}");
    }
}
