//! Man pages, shell completions and the README's generated tables, all rendered from the clap
//! definition and the reference constants, so packages and docs never drift from the binary.
//! Reached through the hidden `isolate __generate man|completions|readme PATH`.
use crate::error::EXIT_STATUS;
use crate::policy::reference::{self, POLICY_KEYS};
use clap::{Arg, Command, ValueEnum};
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use std::io;
use std::path::{Path, PathBuf};

/// What `isolate __generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// isolate.8 and isolate-policy.5 into the directory.
    Man,
    /// isolate.bash, _isolate (zsh) and isolate.fish into the directory.
    Completions,
    /// Rewrite the generated sections of the README at the path.
    Readme,
}

/// Renders one generated README section.
pub type RenderSection = fn() -> String;

/// The README markers around each generated section; the text between them is replaced.
pub const README_SECTIONS: &[(&str, RenderSection)] = &[
    ("policy-table", reference::markdown_table),
    ("exit-status", exit_status_markdown),
];

/// Writes what was asked for and returns the files written.
pub fn generate(what: What, cmd: Command, path: &Path) -> io::Result<Vec<PathBuf>> {
    match what {
        What::Man => {
            std::fs::create_dir_all(path)?;
            let version = cmd_version(&cmd);
            let pages = [
                ("isolate.8", isolate_8(cmd)?),
                ("isolate-policy.5", isolate_policy_5(&version)),
            ];
            write_all(path, &pages)
        }
        What::Completions => {
            std::fs::create_dir_all(path)?;
            let files: Vec<(&str, String)> = [
                (Shell::Bash, "isolate.bash"),
                (Shell::Zsh, "_isolate"),
                (Shell::Fish, "isolate.fish"),
            ]
            .into_iter()
            .map(|(shell, name)| (name, completion(shell, cmd.clone())))
            .collect();
            write_all(path, &files)
        }
        What::Readme => {
            let text = std::fs::read_to_string(path)?;
            let new = readme_with_generated_sections(&text)
                .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
            std::fs::write(path, new)?;
            Ok(vec![path.to_path_buf()])
        }
    }
}

fn write_all(dir: &Path, files: &[(&str, String)]) -> io::Result<Vec<PathBuf>> {
    files
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        })
        .collect()
}

fn cmd_version(cmd: &Command) -> String {
    format!("isolate {}", cmd.get_version().unwrap_or_default())
}

/// The README's exit-status table.
pub fn exit_status_markdown() -> String {
    let mut out = String::from("| code | meaning |\n| --- | --- |\n");
    for (code, meaning) in EXIT_STATUS {
        out.push_str(&format!("| {code} | {meaning} |\n"));
    }
    out
}

/// The README text with every generated section replaced by its current rendering.
pub fn readme_with_generated_sections(text: &str) -> Result<String, String> {
    let mut out = text.to_string();
    for (name, render) in README_SECTIONS {
        let (begin, end) = markers(name);
        let start = out
            .find(&begin)
            .ok_or_else(|| format!("README: no marker {begin}"))?
            + begin.len();
        let stop = out[start..]
            .find(&end)
            .ok_or_else(|| format!("README: no marker {end}"))?
            + start;
        out.replace_range(start..stop, &format!("\n{}", render()));
    }
    Ok(out)
}

/// The comment lines around a generated README section.
pub fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- generated: {name} (isolate __generate readme README.md) -->"),
        format!("<!-- end: {name} -->"),
    )
}

/// Markdown inline text as roff: `code` in bold, **strong** in bold, the rest roman.
fn inlines(markdown: &str) -> Vec<Inline> {
    markdown
        .replace("**", "`")
        .split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { bold(part) } else { roman(part) })
        .collect()
}

/// isolate(8): synopsis, description, global options, every command with its options, exit
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
    for line in include_str!("../../policies/homelab.toml").lines() {
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

/// The README's policy table read as plain rows (key, default, meaning).
pub fn policy_rows_of_readme(readme: &str) -> Vec<(String, String, String)> {
    let (begin, end) = markers("policy-table");
    let Some(start) = readme.find(&begin) else {
        return Vec::new();
    };
    let body = &readme[start + begin.len()..];
    let body = &body[..body.find(&end).unwrap_or(body.len())];
    body.lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| reference::plain(c.trim()))
                .collect();
            (
                cells.first().cloned().unwrap_or_default(),
                cells.get(1).cloned().unwrap_or_default(),
                cells.get(2..).map(|m| m.join(" | ")).unwrap_or_default(),
            )
        })
        .collect()
}

/// Shell code that completes stack names from the policy (`isolate __complete-stacks`).
const BASH_STACKS: &str = r#"
# Stack names for `--stack NAME` and the STACK of map, logs and exec, read from the policy by
# the binary itself.
_isolate_stacks() {
    local i policy=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --policy) policy=(--policy "${COMP_WORDS[i + 1]}") ;;
            --policy=*) policy=(--policy "${COMP_WORDS[i]#--policy=}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${policy[@]}" __complete-stacks 2>/dev/null
}

_isolate_with_stacks() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local i sub="" positional=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root | --policy | --stack | --host) ((i++)) ;;
            -*) ;;
            *) if [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; else ((positional++)); fi ;;
        esac
    done
    if [[ $prev == --stack ]] || [[ $sub =~ ^(map|logs|exec)$ && $positional == 0 && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(_isolate_stacks)" -- "$cur"))
        return 0
    fi
    _isolate "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _isolate_with_stacks -o nosort -o bashdefault -o default isolate
else
    complete -F _isolate_with_stacks -o bashdefault -o default isolate
fi
"#;

const ZSH_STACKS: &str = r#"
# Stack names for `--stack NAME` and `map STACK`, read from the policy (the command line's
# --policy, if given) by the binary itself.
(( $+functions[_isolate_stacks] )) ||
_isolate_stacks() {
    local -a stacks policy
    local i=${words[(i)--policy]}
    (( i < CURRENT - 1 )) && policy=(--policy "${words[i+1]}")
    stacks=(${(f)"$(${words[1]} $policy __complete-stacks 2>/dev/null)"})
    _describe -t stacks 'stack' stacks
}
"#;

const FISH_MAP_STACK: &str = r#"
# Stack names, read from the policy (the command line's --policy, if given) by the binary itself.
function __fish_isolate_stacks
    set -l tokens (commandline -opc)
    set -l policy
    if set -l i (contains -i -- --policy $tokens)
        set policy --policy $tokens[(math $i + 1)]
    end
    $tokens[1] $policy __complete-stacks 2>/dev/null
end

# `map STACK ID`, `logs STACK`, `exec STACK`: the first word after the command is a stack name.
function __fish_isolate_map_wants_stack
    set -l tokens (commandline -opc)
    for sub in map logs exec
        if set -l at (contains -i -- $sub $tokens)
            test (count $tokens) -eq $at
            return
        end
    end
    return 1
end
complete -c isolate -n "__fish_isolate_map_wants_stack" "#;

const FISH_STACKS: &str = r#"-f -a "(__fish_isolate_stacks)""#;

/// A shell's completion script: clap_complete's, with stack names completed from the policy.
pub fn completion(shell: Shell, cmd: Command) -> String {
    // clap_complete offers hidden subcommands too: complete a copy without them.
    let mut cmd = Command::new("isolate")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "isolate", &mut buf);
    let script = String::from_utf8_lossy(&buf).into_owned();
    match shell {
        Shell::Bash => format!("{script}{BASH_STACKS}"),
        Shell::Zsh => {
            // clap_complete leaves the values of --stack and map's STACK to _default.
            let script: String = script
                .lines()
                .map(|l| {
                    if l.contains("--stack=[")
                        || l.starts_with("'::stack -- ")
                        || l.starts_with("':stack -- ")
                    {
                        format!("{}\n", l.replace(":_default'", ":_isolate_stacks'"))
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            match script.rfind("if [ \"$funcstack[1]\" = \"_isolate\" ]") {
                Some(at) => format!("{}{ZSH_STACKS}\n{}", &script[..at], &script[at..]),
                None => format!("{script}{ZSH_STACKS}"),
            }
        }
        Shell::Fish => {
            let script: String = script
                .lines()
                .map(|l| {
                    if l.contains(" -l stack ") {
                        format!("{l} {FISH_STACKS}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            format!("{script}{FISH_MAP_STACK}{FISH_STACKS}\n")
        }
        _ => script,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        <crate::cli::Cli as clap::CommandFactory>::command()
    }

    #[test]
    fn the_policy_page_reads_back_as_the_reference() {
        let rows = policy_rows_of_man_page(&isolate_policy_5("isolate 0"));
        let want: Vec<_> = POLICY_KEYS
            .iter()
            .map(|k| {
                (
                    reference::plain(k.key),
                    reference::plain(k.default),
                    reference::plain(k.meaning),
                )
            })
            .collect();
        assert_eq!(rows, want);
    }

    #[test]
    fn isolate_8_has_every_command_option_and_exit_status() {
        let page = isolate_8(cli()).unwrap();
        assert!(
            page.contains(".SS \"export nixos\"\n"),
            "nested commands: {page}"
        );
        for sub in [
            "plan", "apply", "status", "map", "rollback", "audit", "init", "export",
        ] {
            assert!(
                page.contains(&format!(".SS {sub}\n")),
                "no section for {sub}"
            );
        }
        for opt in [
            "\\-\\-stack",
            "\\-\\-no\\-systemd",
            "\\-\\-force",
            "\\-\\-host",
            "\\-\\-root",
            "\\-\\-policy",
            "\\-\\-json",
            "\\-\\-verbose",
            "\\-\\-quiet",
        ] {
            assert!(page.contains(opt), "no {opt} in isolate(8)");
        }
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(!page.contains("__generate"), "hidden commands leak");
    }

    #[test]
    fn completions_offer_stack_names() {
        let bash = completion(Shell::Bash, cli());
        assert!(bash.contains("complete -F _isolate_with_stacks"));
        let zsh = completion(Shell::Zsh, cli());
        assert!(
            !zsh.lines()
                .any(|l| l.contains("--stack=[") && l.contains(":NAME:_default")),
            "{zsh}"
        );
        // --stack of plan, apply, status, audit, rollback and ps, and the STACK of map, logs
        // and exec.
        assert_eq!(zsh.matches(":_isolate_stacks'").count(), 9, "{zsh}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completion(shell, cli());
            assert!(
                !script.contains("__generate"),
                "{shell}: hidden commands leak"
            );
        }
        let fish = completion(Shell::Fish, cli());
        assert_eq!(
            fish.matches(FISH_STACKS).count(),
            7,
            "--stack of plan, apply, status, audit, rollback and ps, and the STACK of map, logs and exec:\n{fish}"
        );
    }

    #[test]
    fn readme_sections_are_replaced_between_markers() {
        let (b, e) = markers("policy-table");
        let (b2, e2) = markers("exit-status");
        let text = format!("intro\n{b}\nold\n{e}\nmiddle\n{b2}\n{e2}\nend\n");
        let out = readme_with_generated_sections(&text).unwrap();
        assert!(out.contains(&format!("{b}\n{}{e}", reference::markdown_table())));
        assert!(out.contains(&format!("{b2}\n{}{e2}", exit_status_markdown())));
        assert!(out.starts_with("intro\n") && out.ends_with("\nend\n"));
        assert_eq!(
            readme_with_generated_sections("no markers").unwrap_err(),
            format!("README: no marker {b}")
        );
    }
}
