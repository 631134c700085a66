//! `isolate init` on fixtures modelled on well-known upstream compose files
//! (tests/fixtures/init), one for each way a draft went wrong before: upstream placeholders
//! and missing paths drafted as data, a media library several projects use drafted as one
//! project's data, container uids from uid variables and images' default users left unknown,
//! named volumes and the project itself left behind. The draft is compared with
//! `truth.toml` (precision and recall on data paths, share grants and named volumes, and the
//! container uid of each data path, printed as a report), and `isolate plan` must accept it
//! unchanged. `INIT_DRAFT_SHOW=1 cargo test --test init_drafts drafts_of -- --nocapture`
//! prints the whole draft with the report.
mod fixture_copy;
mod scratch_common;
use assert_cmd::Command;
use fixture_copy::{chown_files, copy_tree};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/init")
}

/// The directories the fixtures mount that exist on the host (`/srv/gone/homarr` and the
/// placeholders do not).
const DIRS: &[&str] = &[
    "opt/stacks/immich/library",
    "opt/stacks/immich/postgres",
    "opt/stacks/paperless/export",
    "opt/stacks/paperless/consume",
    "opt/stacks/media/arr/sonarr",
    "opt/stacks/media/arr/radarr",
    "opt/stacks/media/arr/qbittorrent",
    "opt/stacks/media/jellyfin/config",
    "opt/stacks/media/jellyfin/cache",
    "mnt/storage/data/torrents",
    "mnt/storage/data/media",
    "mnt/storage/photos",
    "opt/stacks/gitea/gitea",
    "opt/stacks/gitea/postgres",
    "opt/stacks/nextcloud/db",
    "opt/stacks/nextcloud/html",
    "srv/syncthing/config",
    "srv/syncthing/data1",
    "srv/syncthing/data2",
    "opt/stacks/placeholders/homarr/data",
];

fn host() -> tempfile::TempDir {
    let dir = scratch_common::tempdir("initdrafts-");
    let r = dir.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    copy_tree(&fixtures(), &r.join("opt/stacks"));
    fs::remove_file(r.join("opt/stacks/truth.toml")).unwrap();
    fs::remove_file(r.join("opt/stacks/README.md")).unwrap();
    chown_files(&r.join("opt/stacks"), 1000);
    for d in DIRS {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/localtime"), "TZif").unwrap();
    fs::write(r.join("etc/timezone"), "Etc/UTC\n").unwrap();
    fs::create_dir_all(r.join("proc/self")).unwrap();
    fs::write(
        r.join("proc/self/mountinfo"),
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
    fs::write(r.join("etc/subuid"), "alice:100000:65536\n").unwrap();
    fs::write(r.join("etc/subgid"), "alice:100000:65536\n").unwrap();
    dir
}

fn isolate(root: &Path) -> Command {
    let mut c = Command::cargo_bin("isolate").unwrap();
    c.arg("--root").arg(root).env_remove("ISOLATE_LOG");
    c
}

fn draft(r: &Path) -> String {
    let mut c = isolate(r);
    c.arg("init");
    for p in [
        "immich",
        "paperless",
        "media",
        "gitea",
        "nextcloud",
        "syncthing",
        "placeholders",
    ] {
        c.arg("--compose").arg(r.join("opt/stacks").join(p));
    }
    let a = c.args(["--legacy-owner", "alice"]).assert().success();
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

/// What a draft holds, in the terms of truth.toml.
#[derive(Default, Debug)]
struct Found {
    data: BTreeSet<(String, String)>,
    grants: BTreeSet<String>,
    volumes: BTreeSet<String>,
    /// Per data path: the uid its comment names (-1: unknown).
    uids: BTreeMap<String, i64>,
}

fn found_in(draft: &str) -> Found {
    let v: toml::Table = draft.parse().unwrap();
    let mut f = Found::default();
    for (stack, s) in v["stacks"].as_table().unwrap() {
        for d in s["data"].as_array().unwrap() {
            f.data
                .insert((stack.clone(), d.as_str().unwrap().to_string()));
        }
    }
    if let Some(shares) = v.get("shares").and_then(|s| s.as_table()) {
        for s in shares.values() {
            let path = s["path"].as_str().unwrap();
            for mode in ["read", "write"] {
                for g in s.get(mode).and_then(|g| g.as_array()).into_iter().flatten() {
                    f.grants
                        .insert(format!("{path} {mode} {}", g.as_str().unwrap()));
                }
            }
        }
    }
    for line in draft.lines() {
        if let Some((_, rest)) = line.split_once("apply moves podman volume ") {
            f.volumes
                .insert(rest.split(' ').next().unwrap().to_string());
        }
        // `  "PATH",  # service:/target, container uid N (why)`
        let Some(entry) = line.strip_prefix("  \"") else {
            continue;
        };
        let Some((path, comment)) = entry.split_once("\",  # ") else {
            continue;
        };
        if let Some((_, uid)) = comment.split_once("container uid ") {
            let n = uid.split(' ').next().unwrap();
            f.uids
                .entry(path.to_string())
                .or_insert_with(|| n.parse().unwrap_or(-1));
        }
    }
    f
}

/// Precision and recall of `found` against `truth`.
fn score<T: Ord + Clone>(found: &BTreeSet<T>, truth: &BTreeSet<T>) -> (usize, usize, usize) {
    let tp = found.intersection(truth).count();
    (tp, found.len() - tp, truth.len() - tp)
}

#[test]
fn drafts_of_upstream_style_projects_score_against_the_truth_and_plan_accepts_them() {
    let h = host();
    let r = h.path();
    let text = draft(r);
    let truth: toml::Table = fs::read_to_string(fixtures().join("truth.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let found = found_in(&text);
    if std::env::var_os("INIT_DRAFT_SHOW").is_some() {
        eprintln!("{text}");
    }

    let mut data_truth = BTreeSet::new();
    for (stack, paths) in truth["data"].as_table().unwrap() {
        for p in paths.as_array().unwrap() {
            data_truth.insert((stack.clone(), p.as_str().unwrap().to_string()));
        }
    }
    let list = |t: &toml::Value| -> BTreeSet<String> {
        t.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let grants_truth = list(&truth["shares"]["grants"]);
    let volumes_truth = list(&truth["volumes"]["moved"]);

    let mut report = String::from("init drafts on tests/fixtures/init:\n");
    let mut all = (0, 0, 0);
    for (what, (tp, fp, fn_)) in [
        ("data paths", score(&found.data, &data_truth)),
        ("share grants", score(&found.grants, &grants_truth)),
        ("named volumes", score(&found.volumes, &volumes_truth)),
    ] {
        report.push_str(&format!(
            "  {what}: {tp} right, {fp} wrong, {fn_} missed: precision {:.2}, recall {:.2}\n",
            tp as f64 / (tp + fp).max(1) as f64,
            tp as f64 / (tp + fn_).max(1) as f64
        ));
        all = (all.0 + tp, all.1 + fp, all.2 + fn_);
    }
    report.push_str(&format!(
        "  overall: precision {:.2}, recall {:.2}\n",
        all.0 as f64 / (all.0 + all.1).max(1) as f64,
        all.0 as f64 / (all.0 + all.2).max(1) as f64
    ));
    let uid_truth = truth["uid"].as_table().unwrap();
    let uids_right = uid_truth
        .iter()
        .filter(|(p, u)| found.uids.get(p.as_str()) == u.as_integer().as_ref())
        .count();
    report.push_str(&format!(
        "  container uids: {uids_right} of {} data paths right\n",
        uid_truth.len()
    ));
    eprintln!("{report}");

    assert_eq!(found.data, data_truth, "{report}\n{text}");
    assert_eq!(found.grants, grants_truth, "{report}\n{text}");
    assert_eq!(found.volumes, volumes_truth, "{report}\n{text}");
    assert_eq!(uids_right, uid_truth.len(), "{report}\n{found:?}\n{text}");

    let policy = r.join("policy.toml");
    fs::write(&policy, &text).unwrap();
    isolate(r)
        .arg("--policy")
        .arg(&policy)
        .args(["plan", "--no-systemd"])
        .assert()
        .success();
}

/// The block of `[stacks.NAME]`, up to the next table.
fn block<'a>(text: &'a str, table: &str) -> &'a str {
    let start = text
        .find(&format!("[{table}]\n"))
        .unwrap_or_else(|| panic!("no [{table}] in\n{text}"));
    let rest = &text[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn placeholders_and_missing_paths_are_todos_never_data() {
    let h = host();
    let text = draft(h.path());
    let b = block(&text, "stacks.placeholders");
    for want in [
        "# TODO: plex:/config mounts /path/to/library (a /path/to/ placeholder, left as the upstream file has it): its host path is unknown",
        "# TODO: plex:/movies mounts /path/to/movies (a /path/to/ placeholder, left as the upstream file has it)",
        "# TODO: homarr:/app/data/configs mounts /PATH_TO_YOUR_CONFIG (a placeholder in capitals, left as the upstream file has it)",
        "# TODO: homarr:/app/public/icons mounts <your path> (a placeholder in angle brackets, left as the upstream file has it)",
        "# TODO: photos:/usr/src/app/upload mounts ${UPLOAD_LOCATION} (UPLOAD_LOCATION not set)",
        "# TODO: /srv/gone/homarr (homarr:/app/extra) is not on this host: podman does not create a bind mount's source",
        "data = [\n  \"/opt/stacks/placeholders/homarr/data\",",
        "# TODO: podman cannot start the project as it is: 6 mount(s) without a host path that\n# exists (plex:/config, plex:/tv, plex:/movies, homarr:/app/data/configs, homarr:/app/public/icons, homarr:/app/extra, see below); once they have one:\n# service = true\n",
    ] {
        assert!(b.contains(want), "missing {want:?} in\n{b}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for bad in ["/path/to", "PATH_TO", "<your", "/srv/gone"] {
            assert!(!line.contains(bad), "{line:?} in\n{text}");
        }
    }
}

#[test]
fn a_media_library_of_two_projects_is_one_share_with_both_projects_grants() {
    let h = host();
    let text = draft(h.path());
    let b = block(&text, "shares.data");
    assert!(
        text.contains("# /mnt/storage/data is written by radarr, sonarr of arr, and used below it by jellyfin: a library several projects use, so a share with grants for each, not arr's data (migrating would shift and close it)\n[shares.data]\n"),
        "{text}"
    );
    assert!(
        b.contains("\"jellyfin:1000\",  # jellyfin:/media read-only (mounts /mnt/storage/data/media); uid from user: 1000:1000"),
        "{b}"
    );
    assert!(
        b.contains("  \"arr:1000\",  # sonarr:/data; uid from env PUID"),
        "{b}"
    );
    assert!(!text.contains("left out"), "{text}");
    assert!(
        !block(&text, "stacks.arr").contains("/mnt/storage"),
        "{text}"
    );
}

#[test]
fn the_project_moves_whole_compose_files_overrides_project_env_files_service_volumes() {
    let h = host();
    let text = draft(h.path());
    let nc = block(&text, "stacks.nextcloud");
    for want in [
        "compose = [\n  \"/opt/stacks/nextcloud/compose.yaml\",  # the project's compose file\n  \"/opt/stacks/nextcloud/compose.override.yaml\",  # merged over the one before, as podman-compose reads it\n]\n",
        "project = \"nextcloud\"  # from its directory's name \"nextcloud\", as podman-compose normalises it (no `name:` key)",
        "env_files = [\n  \"/opt/stacks/nextcloud/db.env\",  # env_file of db, app\n]\n",
        "service = true  # 4 service(s): apply installs and starts isolate-compose-nextcloud.service in stk-nextcloud's manager\n",
        "#   nextcloud_data (app:/var/www/html/data, cron:/var/www/html/data): apply moves podman volume nextcloud_nextcloud_data from alice's podman store to stk-nextcloud's",
        "  \"/opt/stacks/nextcloud/html\",  # app:/var/www/html, :U, container uid 33 (Debian's www-data (uid 33), which the image serves as); cron:/var/www/html, :U,",
    ] {
        assert!(nc.contains(want), "missing {want:?} in\n{nc}");
    }
    let pl = block(&text, "stacks.paperless");
    for want in [
        "project = \"paperless\"  # from COMPOSE_PROJECT_NAME",
        "  \"/opt/stacks/paperless/.env\",  # the .env podman-compose interpolates the compose files from",
        "  \"/opt/stacks/paperless/docker-compose.env\",  # env_file of webserver\n",
        "container uid 1000 (env USERMAP_UID, as paperless-ngx's image read it)",
    ] {
        assert!(pl.contains(want), "missing {want:?} in\n{pl}");
    }
    let gitea = block(&text, "stacks.gitea");
    assert!(
        gitea.contains("\"/opt/stacks/gitea/gitea\",  # server:/data, container uid 1000 (env USER_UID, as gitea's image read it)"),
        "{gitea}"
    );
    assert!(
        block(&text, "stacks.immich").contains("project = \"immich\"  # from its `name:` key"),
        "{text}"
    );
}
