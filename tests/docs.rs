//! The shipped documentation agrees with itself and with the binary: the README's generated
//! tables are current, its policy table says what isolate-policy(5) says, the man pages render
//! with man(1), and the bash completion offers commands and the policy's stack names.
use assert_cmd::Command;
use isolate::cli::generate::{
    policy_rows_of_man_page, policy_rows_of_readme, readme_with_generated_sections,
};
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate(what: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(what);
    Command::cargo_bin("isolate")
        .unwrap()
        .args(["__generate", what])
        .arg(&out)
        .assert()
        .success();
    (dir, out)
}

#[test]
fn readme_policy_table_is_what_isolate_policy_5_says() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (_dir, man) = generate("man");
    let page = std::fs::read_to_string(man.join("isolate-policy.5")).unwrap();
    let from_readme = policy_rows_of_readme(&readme);
    let from_man = policy_rows_of_man_page(&page);
    assert!(
        from_readme.len() >= 10,
        "README's policy table not found: {from_readme:?}"
    );
    assert_eq!(
        from_readme, from_man,
        "README.md's policy table and isolate-policy(5) disagree; edit src/policy/reference.rs \
         and run `isolate __generate readme README.md`"
    );
}

#[test]
fn readme_generated_sections_are_current() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let current = readme_with_generated_sections(&readme).unwrap();
    assert!(
        readme == current,
        "README.md's generated sections are stale: run `isolate __generate readme README.md`"
    );
}

#[test]
fn man_pages_render_without_warnings() {
    let (_dir, man) = generate("man");
    for page in ["isolate.8", "isolate-policy.5"] {
        let out = std::process::Command::new("man")
            .env("MANWIDTH", "80")
            .args(["--warnings", "-l"])
            .arg(man.join(page))
            .output()
            .expect("man(1) runs (package man-db)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{page}: {stderr}");
        assert_eq!(stderr, "", "{page} has roff warnings");
        // Without a terminal man overstrikes bold text ("X\bX"): keep what a reader sees.
        let raw = String::from_utf8_lossy(&out.stdout);
        let mut text = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        assert!(
            text.contains("EXIT STATUS") || text.contains("KEYS"),
            "{text}"
        );
    }
}

/// Sources the bash completion and runs its function with COMP_WORDS set, as bash would.
fn bash_complete(completion: &Path, words: &[&str]) -> Vec<String> {
    let bin = assert_cmd::cargo::cargo_bin("isolate");
    let script = format!(
        "source {}\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_isolate_with_stacks isolate \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        completion.display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_commands_and_stacks() {
    let (_dir, dir) = generate("completions");
    let bash = dir.join("isolate.bash");
    let words = bash_complete(&bash, &["isolate", ""]);
    for sub in ["plan", "apply", "status", "map", "rollback"] {
        assert!(words.contains(&sub.to_string()), "{sub} not in {words:?}");
    }
    assert!(!words.iter().any(|w| w.starts_with("__")), "{words:?}");
    let stacks = bash_complete(
        &bash,
        &[
            "isolate",
            "--policy",
            "policies/homelab.toml",
            "apply",
            "--stack",
            "",
        ],
    );
    assert_eq!(stacks, ["immich", "jellyfin", "paperless"]);
    let stacks = bash_complete(
        &bash,
        &["isolate", "--policy", "policies/homelab.toml", "map", "im"],
    );
    assert_eq!(stacks, ["immich"]);
    for sub in ["logs", "exec"] {
        let stacks = bash_complete(
            &bash,
            &["isolate", "--policy", "policies/homelab.toml", sub, ""],
        );
        assert_eq!(stacks, ["immich", "jellyfin", "paperless"], "{sub}");
    }
}

#[test]
fn complete_stacks_is_silent_on_a_broken_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[stacks.a\n").unwrap();
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--policy")
        .arg(&policy)
        .arg("__complete-stacks")
        .assert()
        .success()
        .stdout("")
        .stderr("");
}

#[test]
fn zsh_and_fish_completions_parse() {
    let (_dir, dir) = generate("completions");
    for (shell, args, file) in [
        ("zsh", vec!["-n"], "_isolate"),
        ("fish", vec!["--no-execute"], "isolate.fish"),
    ] {
        let out = std::process::Command::new(shell)
            .args(args)
            .arg(dir.join(file))
            .output()
            .unwrap_or_else(|e| panic!("{shell} runs (installed by scripts/install-deps): {e}"));
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn fish_completion_offers_commands_and_stacks() {
    let (_dir, dir) = generate("completions");
    let bin = assert_cmd::cargo::cargo_bin("isolate");
    let complete = |line: &str| -> Vec<String> {
        let script = format!(
            "source {}; complete -C '{line}'",
            dir.join("isolate.fish").display()
        );
        let out = std::process::Command::new("fish")
            .args(["--no-config", "-c", &script])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    let subs = complete("isolate ");
    for sub in ["plan", "apply", "status", "map", "rollback", "audit"] {
        assert!(subs.contains(&sub.to_string()), "{sub} not in {subs:?}");
    }
    assert!(!subs.iter().any(|w| w.starts_with("__")), "{subs:?}");
    assert_eq!(
        complete("isolate --policy policies/homelab.toml apply --stack "),
        ["immich", "jellyfin", "paperless"]
    );
    assert_eq!(
        complete("isolate --policy policies/homelab.toml map "),
        ["immich", "jellyfin", "paperless"]
    );
    for sub in ["logs", "exec", "ps --stack"] {
        assert_eq!(
            complete(&format!("isolate --policy policies/homelab.toml {sub} ")),
            ["immich", "jellyfin", "paperless"],
            "{sub}"
        );
    }
}
