//! Units that would undo isolation: a system unit, or a unit of the legacy user's own manager,
//! whose ExecStartPre/ExecStart/ExecStartPost hands a stack's data back (`chown`, `chgrp`,
//! `setfacl`, also under `podman unshare`, `sudo` or `sh -c`) or runs the stack's compose
//! project as another user than the stack's. Such a unit is the homelab's NixOS service with
//! `preStart = "chown -R 1000:1000 ${dataRoot}/app"`: at its next start every migrated file is
//! the legacy user's again. Observation reads the unit files, their drop-ins and the scripts
//! they run (`scan`, through `read`); the judgement is pure (`judge`). Plan warns with the unit,
//! its file and line and the fix; audit reports a finding.
pub mod commands;
pub mod read;
pub mod syntax;

use read::Links;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use syntax::Directive;

/// Where system units are installed, in systemd's order of precedence.
pub const SYSTEM_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Where a user keeps her own units, below her home.
pub const USER_DIR: &str = ".config/systemd/user";

/// The Exec directives whose commands run at every start.
pub const START_KEYS: [&str; 3] = ["ExecStartPre", "ExecStart", "ExecStartPost"];

/// Whose manager runs a unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    System,
    /// The manager of this (legacy) user.
    User {
        user: String,
    },
}

/// One unit as read: its main file and drop-ins, their directives in the order systemd reads
/// them, and the text of each script its Exec lines run (system units only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub scope: Scope,
    pub directives: Vec<Directive>,
    pub scripts: BTreeMap<PathBuf, String>,
}

/// Every unit that could run at a start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub units: Vec<Unit>,
}

/// Reads the system's service units and those of `legacy` (name, home), if any.
pub fn scan(root: &crate::layout::Root, legacy: Option<(&str, &Path)>) -> Scan {
    let mut units: Vec<Unit> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let dirs: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
    for dir in &dirs {
        for name in read::list(root, dir, Links::InRoot) {
            if !name.ends_with(".service") || !seen.insert(name.clone()) {
                continue;
            }
            if let Some(u) = unit(root, &dirs, &name, Scope::System, Links::InRoot) {
                units.push(u);
            }
        }
    }
    if let Some((user, home)) = legacy {
        let dirs = vec![home.join(USER_DIR)];
        for name in read::list(root, &dirs[0], Links::Refused) {
            if !name.ends_with(".service") {
                continue;
            }
            let scope = Scope::User {
                user: user.to_string(),
            };
            if let Some(u) = unit(root, &dirs, &name, scope, Links::Refused) {
                units.push(u);
            }
        }
    }
    Scan { units }
}

/// [`scan`] with the policy's legacy owner, when the host has that account.
pub fn scan_for(
    root: &crate::layout::Root,
    policy: &crate::policy::Policy,
    accounts: &crate::host::accounts::Accounts,
) -> Scan {
    let legacy = policy
        .legacy_owner
        .as_ref()
        .and_then(|l| accounts.user(&l.value));
    scan(
        root,
        legacy.map(|u| (u.name.as_str(), Path::new(u.home.as_str()))),
    )
}

/// A unit's main file (the first of `dirs` that has it) and every drop-in (`NAME.d/*.conf` of
/// every dir, by file name), read; None when the main file is not a readable regular file (a
/// masked unit links to /dev/null; an empty file is masked too).
fn unit(
    root: &crate::layout::Root,
    dirs: &[PathBuf],
    name: &str,
    scope: Scope,
    links: Links,
) -> Option<Unit> {
    let (main, text) = dirs
        .iter()
        .map(|d| d.join(name))
        .find_map(|p| read::text(root, &p, links).map(|t| (p, t)))
        .filter(|(_, t)| !t.trim().is_empty())?;
    let mut directives = syntax::directives(&main, &text);
    let mut dropins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in dirs {
        let dir = d.join(format!("{name}.d"));
        for f in read::list(root, &dir, links) {
            if f.ends_with(".conf") {
                dropins.entry(f.clone()).or_insert_with(|| dir.join(&f));
            }
        }
    }
    for path in dropins.values() {
        if let Some(t) = read::text(root, path, links) {
            directives.extend(syntax::directives(path, &t));
        }
    }
    let mut scripts = BTreeMap::new();
    if scope == Scope::System {
        for line in exec_directives(&directives)
            .iter()
            .flat_map(|d| syntax::exec_lines(&d.value))
        {
            let program = PathBuf::from(&line.words[0]);
            if program.is_absolute() && !scripts.contains_key(&program) {
                if let Some(t) = read::script(root, &program, Links::InRoot) {
                    scripts.insert(program, t);
                }
            }
        }
    }
    Some(Unit {
        name: name.to_string(),
        scope,
        directives,
        scripts,
    })
}

/// The `[Service]` Exec directives that run at a start, as systemd keeps them: an empty value
/// clears what came before it (a drop-in's `ExecStartPre=` removes the vendor's lines).
pub fn exec_directives(directives: &[Directive]) -> Vec<&Directive> {
    let mut kept: Vec<&Directive> = Vec::new();
    for d in directives.iter().filter(|d| d.section == "Service") {
        if !START_KEYS.contains(&d.key.as_str()) {
            continue;
        }
        if d.value.is_empty() {
            kept.retain(|k| k.key != d.key);
        } else {
            kept.push(d);
        }
    }
    kept
}

/// The last value of `[Service] key` (an empty one resets it).
pub fn service_value<'a>(directives: &'a [Directive], key: &str) -> Option<&'a str> {
    directives
        .iter()
        .rev()
        .find(|d| d.section == "Service" && d.key == key)
        .map(|d| d.value.as_str())
        .filter(|v| !v.is_empty())
}

/// One stack as the judgement needs it.
#[derive(Clone, Debug)]
pub struct StackView {
    pub name: String,
    pub user: String,
    pub uid: u32,
    pub data: Vec<PathBuf>,
    pub compose: Vec<PathBuf>,
    pub project: String,
}

impl StackView {
    pub fn of(s: &crate::policy::StackPolicy, user: &str, uid: u32) -> StackView {
        StackView {
            name: s.name.clone(),
            user: user.to_string(),
            uid,
            data: s.data.iter().map(|d| d.value.clone()).collect(),
            compose: s.handoff.compose.iter().map(|c| c.value.clone()).collect(),
            project: s.handoff.project_of(&s.name),
        }
    }
}

/// What the unit does to the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "does", rename_all = "snake_case")]
pub enum Undo {
    /// Changes owners or ACLs of the stack's data path `data`.
    Chown { data: PathBuf },
    /// Runs the stack's compose project as `runs_as`.
    Compose { runs_as: String },
}

/// A unit line that would undo a stack's isolation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Undoing {
    pub stack: String,
    pub unit: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// The Exec directive and where it is written.
    pub key: String,
    pub file: PathBuf,
    pub line: usize,
    /// When the command is a line of the script the directive runs: that script and line.
    pub script: Option<(PathBuf, usize)>,
    /// The command, words joined by spaces.
    pub command: String,
    #[serde(flatten)]
    pub undo: Undo,
    /// What to change, on this host (NixOS: the configuration).
    pub fix: String,
}

/// Every line of every unit that would undo `stack`'s isolation.
pub fn judge(scan: &Scan, stack: &StackView, nixos: bool) -> Vec<Undoing> {
    let mut out = Vec::new();
    for u in &scan.units {
        let user = service_value(&u.directives, "User").unwrap_or("root");
        let workdir = service_value(&u.directives, "WorkingDirectory")
            .map(|w| PathBuf::from(w.trim_start_matches(['-', '~'])));
        for d in exec_directives(&u.directives) {
            for line in syntax::exec_lines(&d.value) {
                let runs_as = match &u.scope {
                    Scope::User { user } => user.clone(),
                    Scope::System if line.privileged => "root".to_string(),
                    Scope::System => user.to_string(),
                };
                let mut found = Vec::new();
                commands::actions_of(&line.words, &mut |a| found.push((a, None)));
                if let Some(script) = u.scripts.get(Path::new(&line.words[0])) {
                    for (i, l) in script.lines().enumerate() {
                        for c in syntax::shell_commands(l) {
                            commands::actions_of(&c, &mut |a| {
                                found.push((a, Some((PathBuf::from(&line.words[0]), i + 1))))
                            });
                        }
                    }
                }
                for (action, script) in found {
                    let Some(undo) = action.undoes(stack, &runs_as, workdir.as_deref()) else {
                        continue;
                    };
                    let fix = fix(u, d, &undo, stack, nixos);
                    out.push(Undoing {
                        stack: stack.name.clone(),
                        unit: u.name.clone(),
                        scope: u.scope.clone(),
                        key: d.key.clone(),
                        file: d.file.clone(),
                        line: d.line,
                        script,
                        command: action.command.clone(),
                        undo,
                        fix,
                    });
                }
            }
        }
    }
    out
}

fn fix(u: &Unit, d: &Directive, undo: &Undo, stack: &StackView, nixos: bool) -> String {
    let base = u.name.trim_end_matches(".service");
    match &u.scope {
        Scope::User { user } => format!(
            "stop it for good: `systemctl --user -M {user}@ disable --now {}`, and remove line {} of {} (then `systemctl --user -M {user}@ daemon-reload`)",
            u.name,
            d.line,
            d.file.display()
        ),
        Scope::System if nixos => {
            let option = match (undo, d.key.as_str()) {
                (Undo::Chown { .. }, "ExecStartPre") => Some("preStart"),
                (Undo::Chown { .. }, "ExecStartPost") => Some("postStart"),
                _ => None,
            };
            let disable = format!("`systemd.services.{base}.enable = false;`");
            match option {
                Some(o) => format!(
                    "in the NixOS configuration, take the chown out of `systemd.services.{base}.{o}` (or drop the service: {disable}), then `nixos-rebuild switch`"
                ),
                None => format!(
                    "in the NixOS configuration, set {disable} (isolate's own service runs the stack as {}), then `nixos-rebuild switch`",
                    stack.user
                ),
            }
        }
        Scope::System if d.file.starts_with("/usr") || d.file.starts_with("/lib") => format!(
            "{} belongs to a package: `systemctl mask --now {}` (or a drop-in in /etc/systemd/system/{}.d/ with an empty `{}=` and the lines to keep)",
            d.file.display(),
            u.name,
            u.name,
            d.key
        ),
        Scope::System => format!(
            "remove line {} of {} (then `systemctl daemon-reload`), or stop the unit for good: `systemctl disable --now {}`",
            d.line,
            d.file.display(),
            u.name
        ),
    }
}

impl Undoing {
    /// Where the command is written: the unit file's line, and the script's when it is one.
    pub fn at(&self) -> String {
        let unit = format!("{} line {}", self.file.display(), self.line);
        match &self.script {
            Some((s, l)) => format!("{unit}, in {} line {l}", s.display()),
            None => unit,
        }
    }

    /// What the unit does, in one sentence (plan's warning and audit's finding).
    pub fn message(&self) -> String {
        let whose = match &self.scope {
            Scope::System => "system unit".to_string(),
            Scope::User { user } => format!("{user}'s user unit"),
        };
        match &self.undo {
            Undo::Chown { data } => format!(
                "{whose} {} ({}, {}) runs `{}` on stack `{}`'s data {}: at its next start it gives the migrated files back, undoing isolation. Fix: {}",
                self.unit,
                self.key,
                self.at(),
                self.command,
                self.stack,
                data.display(),
                self.fix
            ),
            Undo::Compose { runs_as } => format!(
                "{whose} {} ({}, {}) runs stack `{}`'s compose project as {runs_as} (`{}`): started, it runs the stack outside its own user, undoing isolation. Fix: {}",
                self.unit,
                self.key,
                self.at(),
                self.stack,
                self.command,
                self.fix
            ),
        }
    }
}

#[cfg(test)]
mod tests;
