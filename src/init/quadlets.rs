//! `isolate init --quadlets DIR`: stacks drafted from a quadlet directory (the legacy user's
//! `~/.config/containers/systemd/`, her `/etc/containers/systemd/users/UID/`, or root's
//! `/etc/containers/systemd/`). Each pod becomes a stack with the containers in it and what
//! they name; a container or kube file outside a pod is a stack of its own. Files are read
//! with the rights of the user who controls them, like compose files.
use super::read::{Files, Rights};
use crate::error::{Error, Result};
use crate::layout::Root;
use crate::quadlet::draft::{self, DraftStack};
use crate::quadlet::QuadletFile;
use std::path::{Path, PathBuf};

/// How many quadlet files one directory may hold for init (a homelab has a few dozen).
const MAX_FILES: usize = 500;

/// The quadlet files of `dir` (as the host names it), sorted by name.
pub fn read_dir(root: &Root, rights: &Rights, dir: &Path) -> Result<Vec<QuadletFile>> {
    let shown = dir.display();
    let entries = std::fs::read_dir(root.at(dir))
        .map_err(|e| Error::Usage(format!("--quadlets {shown}: {e}")))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::quadlet::QuadletKind::of_file_name(n).is_some())
        .collect();
    names.sort();
    if names.len() > MAX_FILES {
        return Err(Error::Usage(format!(
            "--quadlets {shown}: more than {MAX_FILES} quadlet files; name a smaller directory"
        )));
    }
    let mut out = Vec::new();
    for n in names {
        let path = dir.join(&n);
        let mut files =
            Files::for_project(rights, &root.at(&path)).map_err(|e| Error::Usage(e.to_string()))?;
        let text = files
            .read(&root.at(&path))
            .map_err(|e| Error::Usage(e.to_string()))?;
        out.extend(QuadletFile::new(&n, &text));
    }
    Ok(out)
}

/// The drafted stacks of `dir` as policy text; a name already in `taken` gets `-2`, `-3`, ...
pub fn render(
    dir: &Path,
    stacks: &[DraftStack],
    legacy_owner: Option<&str>,
    taken: &mut Vec<String>,
) -> String {
    let mut out = String::new();
    for s in stacks {
        let base = super::text::stack_name(&s.name, "stk-");
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        taken.push(name.clone());
        out.push_str(&format!(
            "\n# from the quadlet files in {} ({} and what it names)\n[stacks.{name}]\n",
            dir.display(),
            s.files
                .first()
                .and_then(|f| f.file_name())
                .map_or(String::new(), |f| f.to_string_lossy().into_owned())
        ));
        out.push_str(&format!("data = {}\n", list(&s.data)));
        if legacy_owner.is_some() {
            out.push_str("migrate = \"shift\"\n");
        }
        out.push_str(&format!("quadlets = {}\n", list(&s.files)));
    }
    out
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "[]".to_string();
    }
    let items: Vec<String> = paths
        .iter()
        .map(|p| format!("  {},", super::text::toml_string(&p.display().to_string())))
        .collect();
    format!("[\n{}\n]", items.join("\n"))
}

/// The stacks of every directory, rendered after the compose drafts (`taken`: their names).
pub fn draft_dirs(
    root: &Root,
    dirs: &[PathBuf],
    home_of_dir: &dyn Fn(&Path) -> PathBuf,
    legacy_owner: Option<&str>,
    taken: &mut Vec<String>,
) -> Result<String> {
    let rights = Rights::new(root.path());
    let mut out = String::new();
    for d in dirs {
        let files = read_dir(root, &rights, d)?;
        let stacks = draft::stacks(d, &files, &home_of_dir(d));
        out.push_str(&render(d, &stacks, legacy_owner, taken));
    }
    Ok(out)
}

/// What `%h` meant to the units of a quadlet directory: the home of the user whose home holds
/// it, of the uid in `/etc/containers/systemd/users/UID`, else root's.
pub(super) fn quadlet_home(
    accounts: Option<&crate::host::accounts::Accounts>,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let Some(a) = accounts else {
        return std::path::PathBuf::from("/root");
    };
    let by_uid = dir
        .strip_prefix(crate::quadlet::place::USERS_DIR)
        .ok()
        .and_then(|rest| rest.to_str()?.split('/').next()?.parse::<u32>().ok())
        .and_then(|uid| a.user_by_uid(uid));
    let by_home = a
        .passwd
        .iter()
        .filter(|u| u.home != "/" && dir.starts_with(&u.home))
        .max_by_key(|u| u.home.len());
    by_uid.or(by_home).map_or_else(
        || std::path::PathBuf::from("/root"),
        |u| std::path::PathBuf::from(&u.home),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_renders_as_one_stack_with_its_files_and_data() {
        let dir = Path::new("/home/alice/.config/containers/systemd");
        let stacks = vec![DraftStack {
            name: "App".into(),
            files: vec![dir.join("App.pod"), dir.join("web.container")],
            data: vec!["/srv/app/conf".into()],
        }];
        let mut taken = vec!["app".to_string()];
        assert_eq!(
            render(dir, &stacks, Some("alice"), &mut taken),
            "\n# from the quadlet files in /home/alice/.config/containers/systemd (App.pod and what it names)\n[stacks.app-2]\ndata = [\n  \"/srv/app/conf\",\n]\nmigrate = \"shift\"\nquadlets = [\n  \"/home/alice/.config/containers/systemd/App.pod\",\n  \"/home/alice/.config/containers/systemd/web.container\",\n]\n"
        );
        assert_eq!(taken, vec!["app", "app-2"]);
    }
}
