//! Plan over units that would undo isolation and env files the system rewrites, from
//! hand-built observations: the warning names the unit, its file and line and the fix (the Nix
//! change on NixOS); a rewritten env file is refused with its declarative fix, not handed over.
use super::tests::{fresh, policy, POLICY};
use super::*;
use crate::handoff::env_files::{EnvFile, EnvFileFacts, FileId, FileOwner};
use crate::preconditions::units::{syntax, Scan, Scope, Unit};
use crate::preconditions::volatile::Rewriter;
use std::path::{Path, PathBuf};

fn system_unit(name: &str, file: &str, text: &str) -> Unit {
    Unit {
        name: name.into(),
        scope: Scope::System,
        directives: syntax::directives(Path::new(file), text),
        scripts: Default::default(),
    }
}

fn warnings(p: &Plan) -> Vec<String> {
    p.notes
        .iter()
        .filter(|n| n.kind == NoteKind::Warning)
        .map(|n| n.message.clone())
        .collect()
}

const LEGACY_UNIT: &str = "[Unit]\nDescription=immich\n\n[Service]\nUser=alice\nExecStartPre=-/bin/chown -R \\\n  1000:1000 /srv/immich\nExecStart=/usr/bin/podman-compose -f /srv/immich/compose.yml up\n";

#[test]
fn a_system_unit_that_chowns_the_data_is_a_warning_with_its_file_line_and_fix() {
    let mut o = fresh();
    o.units = Scan {
        units: vec![system_unit(
            "immich-legacy.service",
            "/etc/systemd/system/immich-legacy.service",
            LEGACY_UNIT,
        )],
    };
    let (p, refusals) = preview(&policy(POLICY), &o, &Options::default()).unwrap();
    assert!(refusals.is_empty(), "{refusals:?}");
    assert_eq!(
        warnings(&p),
        vec!["system unit immich-legacy.service (ExecStartPre, /etc/systemd/system/immich-legacy.service line 6) runs `/bin/chown -R 1000:1000 /srv/immich` on stack `immich`'s data /srv/immich: at its next start it gives the migrated files back, undoing isolation. Fix: remove line 6 of /etc/systemd/system/immich-legacy.service (then `systemctl daemon-reload`), or stop the unit for good: `systemctl disable --now immich-legacy.service`".to_string()]
    );
}

#[test]
fn on_nixos_the_fix_is_the_nix_change_and_a_store_script_is_read() {
    let mut o = fresh();
    o.nixos = true;
    let script = PathBuf::from("/nix/store/abc-unit-script-immich-pre-start/bin/immich-pre-start");
    let mut u = system_unit(
        "immich.service",
        "/etc/systemd/system/immich.service",
        &format!(
            "[Service]\nExecStartPre={}\nExecStart=/nix/store/x-podman-compose/bin/podman-compose --project-name immich up\n",
            script.display()
        ),
    );
    u.scripts.insert(
        script,
        "#!/nix/store/y-bash/bin/bash\nset -e\nchown -R 1000:1000 /srv\n".into(),
    );
    o.units = Scan { units: vec![u] };
    let (p, _) = preview(&policy(POLICY), &o, &Options::default()).unwrap();
    let units: Vec<String> = warnings(&p)
        .into_iter()
        .filter(|w| w.starts_with("system unit"))
        .collect();
    assert_eq!(
        units,
        vec![
            "system unit immich.service (ExecStartPre, /etc/systemd/system/immich.service line 2, in /nix/store/abc-unit-script-immich-pre-start/bin/immich-pre-start line 3) runs `chown -R 1000:1000 /srv` on stack `immich`'s data /srv/immich: at its next start it gives the migrated files back, undoing isolation. Fix: in the NixOS configuration, take the chown out of `systemd.services.immich.preStart` (or drop the service: `systemd.services.immich.enable = false;`), then `nixos-rebuild switch`".to_string(),
            "system unit immich.service (ExecStart, /etc/systemd/system/immich.service line 3) runs stack `immich`'s compose project as root (`/nix/store/x-podman-compose/bin/podman-compose --project-name immich up`): started, it runs the stack outside its own user, undoing isolation. Fix: in the NixOS configuration, set `systemd.services.immich.enable = false;` (isolate's own service runs the stack as stk-immich), then `nixos-rebuild switch`".to_string(),
        ]
    );
}

#[test]
fn a_drop_in_that_resets_exec_start_pre_takes_the_chown_away() {
    let mut o = fresh();
    let mut u = system_unit(
        "immich-legacy.service",
        "/usr/lib/systemd/system/immich-legacy.service",
        LEGACY_UNIT,
    );
    u.directives.extend(syntax::directives(
        Path::new("/etc/systemd/system/immich-legacy.service.d/isolate.conf"),
        "[Service]\nExecStartPre=\nUser=stk-immich\n",
    ));
    o.units = Scan { units: vec![u] };
    let (p, _) = preview(&policy(POLICY), &o, &Options::default()).unwrap();
    assert_eq!(warnings(&p), Vec::<String>::new());
}

const SECRET_POLICY: &str = "legacy_owner = \"alice\"\n[stacks.immich]\ndata = [\"/srv/immich\"]\nmigrate = \"shift\"\nenv_files = [\"/run/secrets/immich.env\", \"/run/immich/app.env\"]\n";

fn with_env_files() -> Observed {
    let mut o = fresh();
    let file = |ino| {
        EnvFileFacts::File(EnvFile {
            owner: FileOwner {
                uid: 1000,
                gid: 1000,
                mode: 0o600,
            },
            links: 1,
            id: FileId { dev: 1, ino },
        })
    };
    let mut h = crate::handoff::StackFacts::default();
    h.env_files
        .insert("/run/secrets/immich.env".into(), file(1));
    h.env_files.insert("/run/immich/app.env".into(), file(2));
    o.handoff.insert("immich".into(), h);
    let pre = crate::preconditions::Facts {
        rewritten: vec![
            (
                "/run/secrets/immich.env".into(),
                Rewriter::SopsNix {
                    name: "immich.env".into(),
                },
            ),
            ("/run/immich/app.env".into(), Rewriter::Tmpfs),
        ],
        ..Default::default()
    };
    o.preconditions.insert("immich".into(), pre);
    o
}

#[test]
fn an_env_file_the_system_rewrites_is_refused_with_its_declarative_fix() {
    let o = with_env_files();
    let (p, refusals) = preview(&policy(SECRET_POLICY), &o, &Options::default()).unwrap();
    let texts: Vec<String> = refusals.iter().map(|r| r.text.clone()).collect();
    assert_eq!(
        texts,
        vec![
            "stack `immich`: env file /run/secrets/immich.env is a sops-nix secret: sops-nix writes it again at every activation and boot, with the owner its declaration gives, so handing it to stk-immich now would not last; apply does not pretend it did (and does not copy a secret kept off the disk onto it). Declare it in the NixOS configuration: `sops.secrets.\"immich.env\".owner = \"stk-immich\";` (and `sops.secrets.\"immich.env\".path = \"/run/secrets/immich.env\";` to keep its path), run `nixos-rebuild switch`, then `isolate apply` again".to_string(),
            "stack `immich`: env file /run/immich/app.env is on a tmpfs, emptied at every boot and written again by whatever writes it, with that writer's owner, so handing it to stk-immich now would not last; apply does not pretend it did. Make its writer give it to stk-immich (owner stk-immich, mode 0400: a `systemd-tmpfiles` line, or the unit that writes it), or keep it on a persistent filesystem, then `isolate apply` again".to_string(),
        ]
    );
    assert!(
        !p.steps.iter().any(|s| matches!(
            s,
            Step::Handoff(crate::handoff::HandoffStep::EnvFile { .. })
        )),
        "{:?}",
        p.steps
    );
}

#[test]
fn a_rewritten_env_file_already_the_stack_users_goes_on() {
    let mut o = with_env_files();
    // The admin declared the owner: the file is stk-immich's (uid 800 once allocated).
    let a = alloc::allocate(&policy(SECRET_POLICY), &o.accounts, &o.state, &[]).unwrap();
    let uid = a["immich"].allocation.uid;
    for f in o.handoff.get_mut("immich").unwrap().env_files.values_mut() {
        if let EnvFileFacts::File(f) = f {
            f.owner = FileOwner {
                uid,
                gid: 0,
                mode: 0o400,
            };
        }
    }
    let (_, refusals) = preview(&policy(SECRET_POLICY), &o, &Options::default()).unwrap();
    assert!(refusals.is_empty(), "{refusals}");
}

#[test]
fn agenix_gets_its_own_declaration() {
    let r = crate::plan::volatile::refusal(
        "app",
        "stk-app",
        Path::new("/run/agenix/app-env"),
        &Rewriter::Agenix {
            name: "app-env".into(),
        },
    );
    assert_eq!(r, "stack `app`: env file /run/agenix/app-env is an agenix secret: agenix writes it again at every activation and boot, with the owner its declaration gives, so handing it to stk-app now would not last; apply does not pretend it did (and does not copy a secret kept off the disk onto it). Declare it in the NixOS configuration: `age.secrets.\"app-env\".owner = \"stk-app\";` (and `age.secrets.\"app-env\".path = \"/run/agenix/app-env\";` to keep its path), run `nixos-rebuild switch`, then `isolate apply` again");
}
