//! The man pages isolate.8 (from the clap definition) and isolate-policy.5 (from the policy
//! reference), rendered with roff.
use crate::policy::reference::POLICY_KEYS;
use clap::{Arg, Command};
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use std::io;

use super::{cmd_version, inlines};
use crate::error::EXIT_STATUS;

/// status, environment, files.
pub fn isolate_8(cmd: Command) -> io::Result<String> {
    let version = cmd_version(&cmd);
    let man = Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(version.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]).text([
        roman(
            "isolate gives every rootless Podman stack on a host its own Unix user: a dedicated \
         system user, an overlap-free subordinate uid/gid range, linger, its own podman API \
         socket, and its data migrated so every file keeps the uid:gid the container sees. \
         It reads the policy (see ",
        ),
        bold("isolate-policy"),
        roman("(5)), observes the host, plans the steps and applies them one stack at a time."),
    ]);
    buf.extend(roff.render().into_bytes());
    man.render_options_section(&mut buf)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(&mut roff, sub.get_name(), sub);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text(inlines(meaning));
    }
    roff.control("PP", []).text([
        roman("With "),
        bold("--json"),
        roman(", an error is also printed on standard output as a JSON object "),
        bold("{\"error\": {\"code\": ..., \"message\": ...}}"),
        roman("."),
    ]);
    roff.control("SH", ["ENVIRONMENT"])
        .control("TP", [])
        .text([bold(crate::logging::LOG_ENV)])
        .text([roman(
            "Log filter in tracing's syntax (e.g. debug, or isolate::walk=trace); it wins over \
             --verbose and --quiet.",
        )]);
    roff.control("SH", ["LOGGING"]).text([roman(
        "On a terminal, warnings and errors are printed on standard error. Run from a systemd \
         unit (standard error is the journal), records go to the journal with the fields \
         ISOLATE_STACK and ISOLATE_STEP; with standard error redirected elsewhere, both.",
    )]);
    roff.control("SH", ["FILES"]);
    for (file, what) in [
        (
            crate::policy::DEFAULT_POLICY,
            "the policy, see isolate-policy(5)",
        ),
        (
            "/var/lib/isolate/state.json",
            "every stack's allocation and migration phases",
        ),
        (
            "/var/lib/isolate/journal/",
            "the migration journals rollback reads",
        ),
    ] {
        roff.control("TP", [])
            .text([italic(file)])
            .text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]).text([
        bold("isolate-policy"),
        roman("(5), "),
        bold("subuid"),
        roman("(5), "),
        bold("useradd"),
        roman("(8), "),
        bold("loginctl"),
        roman("(1), "),
        bold("podman"),
        roman("(1)"),
    ]);
    buf.extend(roff.render().into_bytes());
    man.render_version_section(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// One command of isolate(8) (`name` is its path, e.g. `export nixos`): its synopsis line,
/// what it does and its own options, then its own subcommands the same way.
fn command_section(roff: &mut Roff, name: &str, sub: &Command) {
    let args: Vec<&Arg> = sub.get_arguments().filter(|a| !a.is_hide_set()).collect();
    let mut synopsis = vec![bold(format!("isolate {name}"))];
    for a in &args {
        synopsis.push(roman(" "));
        synopsis.extend(arg_synopsis(a));
    }
    if sub.has_subcommands() {
        synopsis.push(roman(" "));
        synopsis.push(italic("COMMAND"));
    }
    roff.control("SS", [name]).text(synopsis);
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        roff.control("PP", []).text(inlines(&about.to_string()));
    }
    for a in &args {
        roff.control("TP", []).text(arg_label(a));
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        roff.text(inlines(&help));
    }
    for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(roff, &format!("{name} {}", nested.get_name()), nested);
    }
}

fn value_name(a: &Arg) -> String {
    a.get_value_names()
        .and_then(|v| v.first().map(|n| n.to_string()))
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase())
}

/// `--stack NAME`, `-v, --verbose`, `STACK`.
fn arg_label(a: &Arg) -> Vec<Inline> {
    if a.is_positional() {
        return vec![italic(value_name(a))];
    }
    let mut flag = String::new();
    if let Some(s) = a.get_short() {
        flag.push_str(&format!("-{s}, "));
    }
    if let Some(l) = a.get_long() {
        flag.push_str(&format!("--{l}"));
    }
    let mut out = vec![bold(flag)];
    if a.get_action().takes_values() {
        out.push(roman(" "));
        out.push(italic(value_name(a)));
    }
    out
}

/// An argument as the synopsis shows it: `[--force]`, `--stack NAME`, `[--stack NAME]...`.
fn arg_synopsis(a: &Arg) -> Vec<Inline> {
    let mut label = if a.is_positional() {
        vec![italic(value_name(a))]
    } else {
        let mut v = vec![bold(format!("--{}", a.get_long().unwrap_or_default()))];
        if a.get_action().takes_values() {
            v.push(roman(" "));
            v.push(italic(value_name(a)));
        }
        v
    };
    let repeated = matches!(a.get_action(), clap::ArgAction::Append);
    if !a.is_required_set() {
        label.insert(0, roman("["));
        label.push(roman("]"));
    }
    if repeated {
        label.push(roman("..."));
    }
    label
}

/// isolate-policy(5): the policy reference rendered from [`POLICY_KEYS`], and the example.
pub fn isolate_policy_5(version: &str) -> String {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "ISOLATE-POLICY",
            "5",
            "",
            version,
            "File Formats and Configuration",
        ],
    );
    roff.control("SH", ["NAME"])
        .text([roman("isolate-policy - the policy file of isolate(8)")]);
    roff.control("SH", ["SYNOPSIS"])
        .text([italic(crate::policy::DEFAULT_POLICY)]);
    roff.control("SH", ["DESCRIPTION"]).text([roman(
        "TOML. Unknown keys are errors. Every problem in a policy is reported at once as \
         FILE:LINE:COLUMN: reason, and apply changes nothing.",
    )]);
    roff.control("SH", ["KEYS"]);
    for k in POLICY_KEYS {
        roff.control("TP", [])
            .text(inlines(k.key))
            .text(
                [roman("(default: ")]
                    .into_iter()
                    .chain(inlines(k.default))
                    .chain([roman(")")])
                    .collect::<Vec<_>>(),
            )
            .control("br", [])
            .text(inlines(k.meaning));
    }
    roff.control("SH", ["EXAMPLE"]).control("EX", []);
    for line in include_str!("../../../policies/homelab.toml").lines() {
        roff.text([roman(line)]).control("br", []);
    }
    roff.control("EE", []);
    roff.control("SH", ["SEE ALSO"])
        .text([bold("isolate"), roman("(8)")]);
    roff.render()
}

/// The rows of isolate-policy(5)'s KEYS section read back as plain text (key, default,
/// meaning), so a test can hold them against the README's table.
pub fn policy_rows_of_man_page(roff_text: &str) -> Vec<(String, String, String)> {
    let section: Vec<&str> = roff_text
        .split("\n.SH ")
        .find(|s| s.starts_with("KEYS"))
        .map(|s| s.split("\n.TP\n").skip(1).collect())
        .unwrap_or_default();
    section
        .iter()
        .map(|entry| {
            let text = entry.split('\n').filter(|l| !l.starts_with('.'));
            let lines: Vec<String> = text.map(unroff).collect();
            let key = lines.first().cloned().unwrap_or_default();
            let default = lines
                .get(1)
                .and_then(|d| d.strip_prefix("(default: "))
                .and_then(|d| d.strip_suffix(')'))
                .unwrap_or_default()
                .to_string();
            let meaning = lines.get(2..).map(|m| m.join(" ")).unwrap_or_default();
            (key, default, meaning)
        })
        .collect()
}

/// Roff text as a reader sees it: font escapes dropped, escaped characters restored.
fn unroff(line: &str) -> String {
    let mut s = line.to_string();
    for font in ["\\fB", "\\fI", "\\fR", "\\fP", "\\&"] {
        s = s.replace(font, "");
    }
    s.replace("\\(aq", "'")
        .replace("\\*(Aq", "'")
        .replace("\\(ga", "`")
        .replace("\\-", "-")
        .replace("\\(rs", "\\")
        .replace("\\\\", "\\")
        .replace("\\~", " ")
}
