//! A quadlet stack's units judged by quadlet-nix itself: `isolate export nixos` declares them
//! for the stack user under `home-manager.users.stk-NAME.virtualisation.quadlet`, the exported
//! module is evaluated with NixOS's own users and unit modules (the nixos-eval harness from
//! `../shared/nixos-eval`) together with quadlet-nix's real NixOS and home-manager modules
//! (home-manager's own NixOS module replaced by the few options quadlet-nix's module sets,
//! declared below as home-manager declares them), and every quadlet file home-manager would
//! write into the stack user's `~/.config/containers/systemd/` must equal, byte for byte, the
//! file isolate's quadlet plan installs for the stack user on other hosts (`quadlet::rewrite::for_stack`), under
//! the unit name isolate gives it, with nothing written below `/etc/containers/systemd`.
//!
//! quadlet-nix's module files are a fixture of this repository (`tests/fixtures/quadlet-nix`,
//! MIT, its commit in the README there); `ISOLATE_QUADLET_NIX` (a checkout, or a bare git
//! directory) points the test at another copy.
mod nixos_common;
mod scratch_common;
use assert_cmd::Command;
use isolate::quadlet::rewrite::{self, Origin};
use isolate::quadlet::QuadletFile;
use nixos_common::harness;
use std::fs;
use std::path::{Path, PathBuf};

/// quadlet-nix's module files copied into `into`; false when no copy can be found.
fn quadlet_nix(into: &Path) -> bool {
    let candidates: Vec<PathBuf> = std::env::var_os("ISOLATE_QUADLET_NIX")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quadlet-nix")])
        .collect();
    fs::create_dir_all(into).unwrap();
    for c in candidates {
        if c.join("nixos-module.nix").is_file() {
            let st = std::process::Command::new("cp")
                .arg("-r")
                .arg(format!("{}/.", c.display()))
                .arg(into)
                .status()
                .unwrap();
            assert!(st.success());
            return true;
        }
        if c.join("HEAD").is_file() {
            // A bare git directory (the fetch mirror): its newest tree.
            let archive = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&c)
                .args(["archive", "--format=tar", "HEAD"])
                .output()
                .unwrap();
            assert!(archive.status.success(), "git archive in {}", c.display());
            let mut tar = std::process::Command::new("tar")
                .arg("-xf")
                .arg("-")
                .arg("-C")
                .arg(into)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            tar.stdin
                .take()
                .unwrap()
                .write_all(&archive.stdout)
                .unwrap();
            assert!(tar.wait().unwrap().success());
            return true;
        }
    }
    false
}

/// The legacy units: root's, as quadlet-nix's NixOS module or an admin put them there. Awkward
/// on purpose: Nix's `''` and `${`, a tab, quotes, backslashes, a continued line, an indented
/// comment, a `%h`, and the `User=`/`UserNS=` the move drops.
const FILES: &[(&str, &str)] = &[
    (
        "app.pod",
        "[Pod]\nPodName=app\nPublishPort=8080:80\n\n[Install]\nWantedBy=default.target\n",
    ),
    (
        "web.container",
        "# the web side: ''quoted'' and ${NOT_NIX} stay as they are\n[Unit]\nDescription=web \"front\" \\ end\n\n\
         [Container]\nImage=localhost/app-web:1\nPod=app.pod\nVolume=app-data.volume:/data\nVolume=%h/app/cache:/cache\n\
         Environment=GREETING=hello\tworld\nUserNS=auto\nExec=sh -c 'echo $${HOME} ''; \\\n  sleep infinity'\n\n\
         [Service]\n   # an indented comment\nUser=root\nRestart=always\n\n[Install]\nWantedBy=multi-user.target default.target\n",
    ),
    (
        "db.container",
        "[Container]\nImage=docker.io/library/postgres:16\nPod=app.pod\nVolume=/srv/app/db:/var/lib/postgresql/data:Z\n",
    ),
    ("app-data.volume", "[Volume]\n"),
];

/// home-manager's NixOS module as far as quadlet-nix's home-manager module needs it: the
/// per-user submodule (`home-manager.users`, with the specialArgs home-manager gives it:
/// `osConfig` and its lib extended by `lib.hm`), and the home-manager options quadlet-nix sets.
/// Also `virtualisation.podman`, which quadlet-nix's NixOS module sets.
const HOST: &str = r#"{ lib, config, ... }:
let
  harness = @HARNESS@;
  drv = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = import (harness + "/harness/stub-pkgs.nix") // {
    path = @PKGSPATH@;
    linkFarm = name: _: drv name;
    podman = drv "podman";
  };
  hmLib = lib.extend (self: super: {
    hm.dag.entryBefore = before: data: { inherit data before; after = [ ]; };
  });
  hmOptions = { name, config, osConfig, lib, ... }: {
    options = with lib; {
      assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      warnings = mkOption { type = types.listOf types.str; default = [ ]; };
      home.stateVersion = mkOption { type = types.str; };
      home.homeDirectory = mkOption { type = types.str; };
      home.activation = mkOption { type = types.attrsOf types.anything; default = { }; };
      xdg.configHome = mkOption { type = types.str; default = "${config.home.homeDirectory}/.config"; };
      xdg.configFile = mkOption { type = types.attrsOf types.anything; default = { }; };
      systemd.user.services = mkOption { type = types.attrsOf types.anything; default = { }; };
      systemd.user.timers = mkOption { type = types.attrsOf types.anything; default = { }; };
    };
    config = {
      _module.args.pkgs = pkgs;
      home.homeDirectory = osConfig.users.users.${name}.home;
    };
  };
in
{
  imports = [ @MODULE@ @QUADLET@/nixos-module.nix ];
  options.virtualisation.podman = {
    enable = lib.mkOption { type = lib.types.bool; default = false; };
    package = lib.mkOption { type = lib.types.unspecified; default = pkgs.podman; };
  };
  options.home-manager.users = lib.mkOption {
    type = lib.types.attrsOf (lib.types.submoduleWith {
      class = "homeManager";
      specialArgs = { lib = hmLib; osConfig = config; };
      modules = [ hmOptions @QUADLET@/home-manager-module.nix ];
    });
    default = { };
  };
  config = {
    _module.args.pkgs = lib.mkForce pkgs;
    system.stateVersion = "25.11";
    users.mutableUsers = false;
    users.users.root.hashedPassword = "!";
    users.allowNoPasswordLogin = true;
  };
}
"#;

/// `pkgs.path + "/nixos/lib/utils.nix"`, which both quadlet-nix modules import for
/// `systemdUtils`: the harness's real systemd-lib, unit options and types, bound as
/// nixos/lib/utils.nix binds them.
const UTILS: &str = r#"{ lib, config, pkgs, ... }:
let
  harness = @HARNESS@;
  utils = {
    systemdUtils = {
      lib = import (harness + "/nixos/lib/systemd-lib.nix") { inherit lib config pkgs utils; };
      unitOptions = import (harness + "/nixos/lib/systemd-unit-options.nix") { inherit lib; inherit (utils) systemdUtils; };
      types = import (harness + "/nixos/lib/systemd-types.nix") { inherit lib pkgs; inherit (utils) systemdUtils; };
    };
  };
in
utils
"#;

const QUERY: &str = r#"let
  e = import @HARNESS@/harness/eval.nix { configuration = @HOST@; };
  lib = import @HARNESS@/lib;
  q = e.config.virtualisation.quadlet;
in
{
  failed = e.summary.failedAssertions;
  users = e.summary.users;
  etc = builtins.attrNames e.config.environment.etc;
  quadletEnable = q.enable;
  podman = e.config.virtualisation.podman.enable;
  rootObjects = builtins.concatMap builtins.attrNames [ q.containers q.pods q.volumes q.networks q.kubes q.images q.builds ];
  hm = lib.mapAttrs (n: u: {
    files = lib.mapAttrs (_: f: f.text or f.source or null) u.xdg.configFile;
    services = u.systemd.user.services;
    failed = map (a: a.message) (lib.filter (a: !a.assertion) u.assertions);
    stateVersion = u.home.stateVersion;
  }) e.config.home-manager.users;
}
"#;

fn fill(template: &str, pairs: &[(&str, &Path)]) -> String {
    let mut out = template.to_string();
    for (k, v) in pairs {
        out = out.replace(k, &v.display().to_string());
    }
    out
}

/// A root with the legacy units in root's quadlet directory and a policy naming them.
fn root_with_units() -> (tempfile::TempDir, PathBuf) {
    let root = scratch_common::tempdir("nixos-quadlet-");
    let r = root.path();
    fs::create_dir_all(r.join("etc/containers/systemd")).unwrap();
    fs::create_dir_all(r.join("root")).unwrap();
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(r.join("etc/gshadow"), "root:*::\n").unwrap();
    fs::write(r.join("etc/subuid"), "").unwrap();
    fs::write(r.join("etc/subgid"), "").unwrap();
    for (name, text) in FILES {
        fs::write(r.join("etc/containers/systemd").join(name), text).unwrap();
    }
    let list: Vec<String> = FILES
        .iter()
        .map(|(n, _)| format!("\"/etc/containers/systemd/{n}\""))
        .collect();
    let policy = r.join("policy.toml");
    fs::write(
        &policy,
        format!(
            "legacy_owner = \"root\"\n[stacks.app]\ndata = []\nquadlets = [{}]\n[stacks.plain]\ndata = []\n",
            list.join(", ")
        ),
    )
    .unwrap();
    (root, policy)
}

fn export(r: &Path, policy: &Path) -> PathBuf {
    let module = r.join("isolate-stacks.nix");
    Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(policy)
        .args(["export", "nixos", "--output"])
        .arg(&module)
        .env_remove("ISOLATE_LOG")
        .assert()
        .success();
    module
}

/// What isolate's quadlet plan installs for the stack user: each legacy file rewritten (root's `%h` is /root).
fn rewritten(name: &str, text: &str) -> String {
    rewrite::for_stack(
        &QuadletFile::new(name, text).unwrap(),
        &Origin {
            home: "/root".into(),
        },
    )
    .text
}

#[test]
fn quadlet_nix_under_home_manager_writes_the_units_apply_installs_byte_for_byte() {
    let Some((h, top)) = harness() else { return };
    let (root, policy) = root_with_units();
    let r = root.path();
    let module = export(r, &policy);
    let text = fs::read_to_string(&module).unwrap();
    // The legacy declarations to delete are named, and no unit is declared at root level.
    for want in [
        "virtualisation.quadlet.pods.\"app\"",
        "virtualisation.quadlet.containers.\"web\"",
        "virtualisation.quadlet.containers.\"db\"",
        "virtualisation.quadlet.volumes.\"app-data\"",
    ] {
        assert!(text.contains(&format!("#   {want}")), "{want}:\n{text}");
    }
    assert!(
        text.contains("home-manager.users.\"stk-app\""),
        "no home-manager declaration for stk-app:\n{text}"
    );
    let parsed = std::process::Command::new("nix-instantiate")
        .arg("--parse")
        .arg(&module)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&parsed.stderr)
    );

    let qn = h.path().join("quadlet-nix");
    assert!(
        quadlet_nix(&qn),
        "no copy of quadlet-nix: tests/fixtures/quadlet-nix is missing and ISOLATE_QUADLET_NIX names none"
    );
    let pkgspath = h.path().join("pkgspath");
    fs::create_dir_all(pkgspath.join("nixos/lib")).unwrap();
    fs::write(
        pkgspath.join("nixos/lib/utils.nix"),
        fill(UTILS, &[("@HARNESS@", &top)]),
    )
    .unwrap();
    let host = h.path().join("host.nix");
    fs::write(
        &host,
        fill(
            HOST,
            &[
                ("@HARNESS@", &top),
                ("@PKGSPATH@", &pkgspath),
                ("@MODULE@", &module),
                ("@QUADLET@", &qn),
            ],
        ),
    )
    .unwrap();
    let query = h.path().join("query.nix");
    fs::write(
        &query,
        fill(QUERY, &[("@HARNESS@", &top), ("@HOST@", &host)]),
    )
    .unwrap();
    let o = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--read-write-mode"])
        .arg(&query)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "evaluation failed:\n{}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got["failed"], serde_json::json!([]), "{got}");
    assert_eq!(got["rootObjects"], serde_json::json!([]), "{got}");
    assert_eq!(got["quadletEnable"], true, "{got}");
    assert_eq!(got["podman"], true, "{got}");
    let etc: Vec<&str> = got["etc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        etc.iter().all(|k| !k.starts_with("containers/systemd")),
        "{etc:?}"
    );
    assert_eq!(got["users"]["stk-app"]["linger"], true, "{got}");

    let user = &got["hm"]["stk-app"];
    assert_eq!(user["failed"], serde_json::json!([]), "{user}");
    assert_eq!(user["stateVersion"], "25.11");
    let files = &user["files"];
    for (name, legacy) in FILES {
        let want = rewritten(name, legacy);
        assert_eq!(
            files[format!("containers/systemd/{name}")].as_str(),
            Some(want.as_str()),
            "{name}:\n{user}"
        );
        // quadlet-nix names the unit as isolate does (its drop-in and enablement go there).
        let service = QuadletFile::new(name, &want).unwrap().service_name();
        let dropin = files[format!("systemd/user/{service}.d/override.conf")]
            .as_str()
            .unwrap_or_else(|| panic!("no drop-in for {service}: {user}"));
        assert!(dropin.ends_with(&format!("/out/{service}")), "{dropin}");
        // The rebuild installs, apply starts (after moving data and volumes); the file's own
        // [Install] starts it at boot through the quadlet generator.
        let stem = service.strip_suffix(".service").unwrap();
        assert_eq!(
            user["services"][stem]["Install"]["WantedBy"],
            serde_json::json!([]),
            "{stem}: {user}"
        );
    }
    // The rewritten values are the ones declared.
    let web = files["containers/systemd/web.container"].as_str().unwrap();
    assert!(web.contains("\nVolume=/root/app/cache:/cache\n"), "{web}");
    assert!(!web.contains("\nUserNS=auto") && !web.contains("\nUser=root"));
    // A stack without quadlets declares none.
    assert!(got["hm"].get("stk-plain").is_none(), "{got}");
}

/// A legacy user's quadlet file is read with her rights: linked to a root-only file, its text
/// stays out of the module (which is world-readable), and the module and the summary say the
/// file is not declared.
#[test]
fn a_users_quadlet_file_linked_to_a_root_only_file_is_not_copied_into_the_module() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    if !rustix::process::geteuid().is_root() {
        eprintln!("\n*** SKIPPED: reading with the legacy user's rights needs root ***\n");
        return;
    }
    let root = scratch_common::tempdir("nixos-quadlet-hostile-");
    let r = root.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    let q = r.join("home/alice/.config/containers/systemd");
    fs::create_dir_all(&q).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
    fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(r.join("etc/gshadow"), "root:*::\n").unwrap();
    fs::write(r.join("etc/subuid"), "alice:100000:65536\n").unwrap();
    fs::write(r.join("etc/subgid"), "alice:100000:65536\n").unwrap();
    let secret = r.join("secret");
    fs::write(&secret, "[Container]\nImage=ROOT-ONLY-SECRET\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    symlink(&secret, q.join("web.container")).unwrap();
    fs::write(q.join("db.container"), "[Container]\nImage=postgres\n").unwrap();
    for d in [
        "home/alice",
        "home/alice/.config",
        "home/alice/.config/containers",
        "home/alice/.config/containers/systemd",
        "home/alice/.config/containers/systemd/db.container",
    ] {
        chown(r.join(d), Some(1000), Some(1000)).unwrap();
    }
    std::os::unix::fs::lchown(q.join("web.container"), Some(1000), Some(1000)).unwrap();
    let policy = r.join("policy.toml");
    fs::write(
        &policy,
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nquadlets = [\"/home/alice/.config/containers/systemd/web.container\", \"/home/alice/.config/containers/systemd/db.container\"]\n",
    )
    .unwrap();
    let module = r.join("isolate-stacks.nix");
    let a = Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(&policy)
        .args(["export", "nixos", "--output"])
        .arg(&module)
        .env_remove("ISOLATE_LOG")
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    let text = fs::read_to_string(&module).unwrap();
    assert!(!text.contains("ROOT-ONLY-SECRET"), "{text}");
    assert!(
        text.contains("/home/alice/.config/containers/systemd/web.container: NOT DECLARED, it could not be read"),
        "{text}"
    );
    assert!(text.contains("Image=postgres"), "{text}");
    assert!(
        text.contains("#   home-manager.users.\"alice\".virtualisation.quadlet.containers.\"web\""),
        "{text}"
    );
    assert!(
        stderr.contains("1 quadlet file(s) NOT declared, unreadable"),
        "{stderr}"
    );
}
