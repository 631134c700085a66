//! The units of `isolate export nixos`: a stack's compose service as a `systemd.user.services`
//! entry that NixOS renders into the same directives, line for line, as the unit file apply
//! writes on other systems (each `[Unit]` and `[Service]` line becomes a `unitConfig` or
//! `serviceConfig` value, repeated keys a list; `[Install] WantedBy=` becomes `wantedBy`),
//! restricted to the stack user with `ConditionUser=`; and the podman API socket enabled for
//! the stack users alone. NixOS adds its own `Environment="PATH=..."` line; nothing else differs.
use super::nixos::string;
use super::UserUnit;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A unit apply writes that the export cannot declare as NixOS options.
#[derive(Debug, thiserror::Error)]
pub enum Undeclarable {
    #[error("unit {unit}: cannot declare the line {line:?} in NixOS")]
    Line { unit: String, line: String },
    #[error("{unit} is not a service unit")]
    NotAService { unit: String },
    #[error("unit {unit}: [Install] {key}= has no NixOS declaration here")]
    InstallKey { unit: String, key: String },
    #[error("unit {unit}: section [{section}] has no NixOS declaration here")]
    Section { unit: String, section: String },
}

/// `[Section]` -> key -> values in file order; comments and blank lines left out.
type Sections = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The directives of a unit file, as systemd reads them (no continuation lines: isolate's
/// units have none).
fn sections(unit: &UserUnit) -> Result<Sections> {
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for line in unit.text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, line.split_once('=')) else {
            return Err(Error::failed(Undeclarable::Line {
                unit: unit.name.clone(),
                line: line.to_string(),
            }));
        };
        out.entry(section.clone())
            .or_default()
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    Ok(out)
}

/// `Key = value;` lines, one per key; a repeated key is a list (NixOS writes one line each).
fn entries(w: &mut String, keys: &BTreeMap<String, Vec<String>>) -> Result<()> {
    for (key, values) in keys {
        let _ = writeln!(w, "      {} = {};", string(key)?, value(values)?);
    }
    Ok(())
}

fn value(values: &[String]) -> Result<String> {
    match values {
        [one] => string(one),
        many => Ok(format!(
            "[ {} ]",
            many.iter()
                .map(|v| string(v))
                .collect::<Result<Vec<_>>>()?
                .join(" ")
        )),
    }
}

/// A `systemd.user.services` entry for `unit`, kept to `user` (a Nix string) by
/// `ConditionUser=`: NixOS installs user units for every user's manager.
pub fn user_service(w: &mut String, unit: &UserUnit, user: &str) -> Result<()> {
    let Some(name) = unit.name.strip_suffix(".service") else {
        return Err(Error::failed(Undeclarable::NotAService {
            unit: unit.name.clone(),
        }));
    };
    let mut sections = sections(unit)?;
    let _ = writeln!(
        w,
        "  # The unit apply writes into the stack user's home elsewhere, line for line."
    );
    let _ = writeln!(w, "  systemd.user.services.{} = {{", string(name)?);
    // The PATH NixOS gives the unit (its only line apply's text lacks): podman and the
    // setuid newuidmap/newgidmap for compose. systemd looks up a relative ExecStart in its own
    // compiled-in path, not this one: on NixOS give the policy an absolute compose_command.
    let _ = writeln!(
        w,
        "    path = [ \"/run/wrappers\" \"/run/current-system/sw\" ];"
    );
    if let Some(install) = sections.remove("Install") {
        for (key, values) in install {
            if key != "WantedBy" {
                return Err(Error::failed(Undeclarable::InstallKey {
                    unit: unit.name.clone(),
                    key: key.to_string(),
                }));
            }
            let targets = values
                .iter()
                .flat_map(|v| v.split_whitespace())
                .map(string)
                .collect::<Result<Vec<_>>>()?;
            let _ = writeln!(w, "    wantedBy = [ {} ];", targets.join(" "));
        }
    }
    // The stack user's own condition first, then any the unit has (all must hold).
    let mut unit_config = sections.remove("Unit").unwrap_or_default();
    let mut conditions = vec![user.to_string()];
    for v in unit_config.remove("ConditionUser").unwrap_or_default() {
        conditions.push(string(&v)?);
    }
    let _ = writeln!(w, "    unitConfig = {{");
    let _ = match conditions.as_slice() {
        [one] => writeln!(w, "      ConditionUser = {one};"),
        many => writeln!(w, "      ConditionUser = [ {} ];", many.join(" ")),
    };
    entries(w, &unit_config)?;
    let _ = writeln!(w, "    }};");
    if let Some(service) = sections.remove("Service") {
        let _ = writeln!(w, "    serviceConfig = {{");
        entries(w, &service)?;
        let _ = writeln!(w, "    }};");
    }
    if let Some((section, _)) = sections.into_iter().next() {
        return Err(Error::failed(Undeclarable::Section {
            unit: unit.name.clone(),
            section: section.to_string(),
        }));
    }
    let _ = writeln!(w, "  }};");
    Ok(())
}

/// The podman API socket of every stack user (apply enables podman.socket in each stack
/// user's own manager elsewhere): enabled by NixOS for the stack users alone, each a
/// triggering `ConditionUser=|USER` (one of them is enough).
pub fn podman_socket(w: &mut String, users: &[String]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let conditions = users
        .iter()
        .map(|u| string(&format!("|{u}")))
        .collect::<Result<Vec<_>>>()?;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  # Every stack user's podman API socket (podman ships podman.socket; NixOS installs this\n  \
         # as its drop-in and enables it in the managers of the stack users only: other users'\n  \
         # managers skip it, also where they enabled it themselves)."
    );
    let _ = writeln!(w, "  systemd.user.sockets.podman = {{");
    let _ = writeln!(w, "    wantedBy = [ \"sockets.target\" ];");
    let _ = writeln!(
        w,
        "    unitConfig.ConditionUser = [ {} ];",
        conditions.join(" ")
    );
    let _ = writeln!(w, "  }};");
    Ok(())
}
