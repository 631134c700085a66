//! Man pages, shell completions and the README's generated tables, all rendered from the clap
//! definition and the reference constants, so packages and docs never drift from the binary.
//! Reached through the hidden `isolate __generate man|completions|readme PATH`.
use crate::error::EXIT_STATUS;
use crate::policy::reference;
use clap::{Command, ValueEnum};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Inline};
use std::io;
use std::path::{Path, PathBuf};

mod completions;
mod man;

pub use completions::completion;
pub use man::{isolate_8, isolate_policy_5, policy_rows_of_man_page};

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

#[cfg(test)]
mod tests {
    use super::completions::FISH_STACKS;
    use super::*;
    use crate::policy::reference::POLICY_KEYS;

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
