//! The draft's decisions on hand-made projects: data, shares, grants, what stays a comment.
use super::*;
use crate::init::compose::NamedVolume;
use std::path::Path;

fn svc(name: &str, image: &str, mounts: Vec<Mount>) -> Service {
    Service {
        name: name.into(),
        image: Some(image.into()),
        user: None,
        environment: BTreeMap::new(),
        mounts,
        container_name: None,
        networks: vec![],
        network_mode: None,
        depends_on: vec![],
        ports: vec![],
    }
}

fn bind(path: &str, target: &str, ro: bool) -> Mount {
    Mount {
        source: Source::Bind(path.into()),
        written: path.into(),
        target: target.into(),
        read_only: ro,
        chown: false,
    }
}

fn project(name: &str, services: Vec<Service>) -> Project {
    Project {
        name: name.into(),
        name_source: "its `name:` key".into(),
        file: format!("/opt/{name}/compose.yaml").into(),
        files: vec![format!("/opt/{name}/compose.yaml").into()],
        env_files: vec![],
        dot_env: None,
        services,
        volumes: BTreeMap::new(),
        unresolved: vec![],
        not_followed: vec![],
        external_networks: BTreeMap::new(),
    }
}

fn run(projects: &[Project], facts: &BTreeMap<PathBuf, PathFacts>) -> String {
    let text = draft(&Input {
        projects,
        legacy_owner: Some("alice"),
        legacy_missing: false,
        facts,
        mountinfo: Some("/proc/self/mountinfo"),
        user_prefix: "stk-",
        interpolated_with: &[],
    });
    crate::policy::Policy::parse(Path::new("d.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    text
}

#[test]
fn what_connected_projects_becomes_reaches_on_the_connecting_stack() {
    let mut proxy = svc("proxy", "caddy", vec![]);
    proxy
        .environment
        .insert("UPSTREAM".into(), "http://backend:8080/".into());
    proxy.networks = vec!["shared".into()];
    let mut backend = svc("backend", "localhost/busybox", vec![]);
    backend.networks = vec!["shared".into(), "default".into()];
    backend.ports = vec![8080];
    let mut lone = svc("lone", "x", vec![]);
    lone.networks = vec!["shared".into()];
    let mut side = svc("side", "x", vec![]);
    side.network_mode = Some("container:backend".into());
    let mut ext = BTreeMap::new();
    ext.insert("shared".to_string(), "shared".to_string());
    let mut pp = project("proxy", vec![proxy]);
    pp.external_networks = ext.clone();
    let mut bp = project("backend", vec![backend]);
    bp.external_networks = ext.clone();
    let mut lp = project("lone", vec![lone, side]);
    lp.external_networks = ext;
    let t = run(&[pp, bp, lp], &BTreeMap::new());
    assert!(
        t.contains("[stacks.proxy]\n") && t.contains("reaches = [\n  \"backend:backend:8080\",  # proxy's env UPSTREAM=http://backend:8080/ names service backend of project backend\n]\n"),
        "{t}"
    );
    assert!(t.contains("# TODO: service lone joins the external network shared with proxy:proxy, backend:backend (ports 8080)"), "{t}");
    assert!(t.contains("# TODO: service side shares the network namespace of backend of project backend (network_mode: container:backend)"), "{t}");
    let backend_block = t
        .split("[stacks.backend]")
        .nth(1)
        .unwrap()
        .split("[stacks.")
        .next()
        .unwrap();
    assert!(!backend_block.contains("reaches"), "{t}");
}

#[test]
fn what_cannot_be_data_is_a_comment_and_the_rest_still_parses() {
    let mut facts = BTreeMap::new();
    facts.insert(
        PathBuf::from("/nas/app"),
        PathFacts {
            kind: PathKind::Dir,
            network_fs: Some("nfs4".into()),
        },
    );
    facts.insert(
        PathBuf::from("/srv/app/app.ini"),
        PathFacts {
            kind: PathKind::File,
            network_fs: None,
        },
    );
    facts.insert(
        PathBuf::from("/srv/link"),
        PathFacts {
            kind: PathKind::Symlink,
            network_fs: None,
        },
    );
    let mut p = project(
        "My App!",
        vec![svc(
            "web",
            "nginx",
            vec![
                bind("/srv/app", "/data", false),
                bind("/srv/app/sub", "/sub", false),
                bind("/nas/app", "/nas", false),
                bind("/srv/app/app.ini", "/app.ini", false),
                bind("/srv/link", "/l", false),
                bind("/var/run/docker.sock", "/var/run/docker.sock", false),
                bind("/srv", "/all", false),
                Mount {
                    source: Source::Unknown {
                        text: "${X}/y".into(),
                        why: "X not set".into(),
                    },
                    written: "${X}/y".into(),
                    target: "/y".into(),
                    read_only: false,
                    chown: false,
                },
                Mount {
                    source: Source::Named("files".into()),
                    written: "files".into(),
                    target: "/files".into(),
                    read_only: false,
                    chown: false,
                },
            ],
        )],
    );
    p.volumes.insert(
        "files".into(),
        NamedVolume {
            name: "files".into(),
            engine_name: None,
            external: true,
            fs_type: Some("cifs".into()),
            device: Some("//nas/files".into()),
        },
    );
    let t = run(&[p], &facts);
    assert!(
        t.contains("[stacks.my-app-]\n")
            && t.contains("\ndata = [\n  \"/srv/app\",  # web:/data, container uid unknown (the default user of nginx is not one init knows)\n]\n"),
        "{t}"
    );
    for want in [
        "# /srv/app/sub (web:/sub) lies inside /srv/app, listed above: migrated with it",
        "# not data: /nas/app (web:/nas) is on nfs4",
        "# not data: /srv/app/app.ini (web:/app.ini) is a file",
        "# TODO: /srv/link (web:/l) is a symbolic link",
        "# WARNING: service web mounts the container engine's socket (/var/run/docker.sock)",
        "# TODO: /srv (web:/all): \"/srv\" is a system directory",
        "# TODO: web:/y mounts ${X}/y (X not set): its host path is unknown",
        "#   files (web:/files): TODO: `external`, made outside the project, so the hand-off does not move it; move files to stk-my-app-'s store yourself, or drop `external` if only this project uses it; WARNING: on cifs (driver_opts, device //nas/files): owners there are the file server's, and the stack's volume is created with its name and labels only, without these options",
        "# TODO: no `service` until `compose` and `project` name the files and the project:\n# service = true",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
}

#[test]
fn shares_get_grants_by_container_uid_and_awkward_paths_are_quoted() {
    let mut db = svc(
        "db",
        "docker.io/library/postgres:16-alpine",
        vec![bind("/m/x \"q\" \\ é", "/x", false)],
    );
    db.user = None;
    let mut web = svc(
        "web",
        "ghcr.io/x/web:1",
        vec![bind("/m/x \"q\" \\ é", "/x", true)],
    );
    web.user = Some("1001:1001".into());
    let mut media = svc(
        "media",
        "lscr.io/linuxserver/jellyfin",
        vec![bind("/m/x \"q\" \\ é", "/x", true)],
    );
    media.environment.insert("PUID".into(), "0".into());
    let t = run(
        &[project("a", vec![db, web]), project("b", vec![media])],
        &BTreeMap::new(),
    );
    assert!(
        t.contains("[shares.x--q-----]\npath = \"/m/x \\\"q\\\" \\\\ é\"\n"),
        "{t}"
    );
    assert!(t.contains("read = [\n  \"a:1001\",  # web:/x read-only; uid from user: 1001:1001\n  \"b\",  # media:/x read-only; uid from env PUID, as linuxserver.io images read it\n]\nwrite = [\n  \"a:70\",  # db:/x; uid from postgres image on Alpine: postgres is uid 70 in its Dockerfile\n]\n"), "{t}");
}

#[test]
fn a_share_inside_data_or_holding_a_share_is_left_out_commented() {
    let t = run(
        &[
            project(
                "a",
                vec![svc("web", "nginx", vec![bind("/srv/app", "/app", false)])],
            ),
            project(
                "b",
                vec![svc(
                    "cdn",
                    "nginx",
                    vec![
                        bind("/srv/app/public", "/public", true),
                        bind("/m", "/m", true),
                        bind("/m/x", "/x", true),
                    ],
                )],
            ),
        ],
        &BTreeMap::new(),
    );
    assert!(t.contains("# TODO: left out: /srv/app/public: it overlaps /srv/app (data of a), and a share must lie apart from every stack's data: move one of them\n# [shares.public]\n# path = \"/srv/app/public\"\n"), "{t}");
    assert!(
        t.contains("# TODO: left out: /m: it holds the shares /m/x, and shares cannot nest"),
        "{t}"
    );
    assert!(t.contains("\n[shares.x]\npath = \"/m/x\"\n"), "{t}");
}

#[test]
fn a_missing_path_is_a_todo_never_data() {
    let mut facts = BTreeMap::new();
    facts.insert(
        PathBuf::from("/srv/new/db"),
        PathFacts {
            kind: PathKind::Missing,
            network_fs: None,
        },
    );
    let t = run(
        &[project(
            "new",
            vec![svc(
                "db",
                "postgres:17",
                vec![bind("/srv/new/db", "/var/lib/postgresql/data", false)],
            )],
        )],
        &facts,
    );
    assert!(
        t.contains("data = []  # no bind mount of its own: an account only\n"),
        "{t}"
    );
    assert!(t.contains("# TODO: /srv/new/db (db:/var/lib/postgresql/data) is not on this host: podman does not create a bind mount's source, so this stack has not run with it. Create it and list it (as data or a share), or drop the mount\n"), "{t}");
}

#[test]
fn a_library_written_by_several_services_and_used_by_another_project_is_a_share() {
    let mut sonarr = svc(
        "sonarr",
        "lscr.io/linuxserver/sonarr",
        vec![
            bind("/srv/arr/sonarr", "/config", false),
            bind("/mnt/data", "/data", false),
        ],
    );
    sonarr.environment.insert("PUID".into(), "1000".into());
    let mut radarr = svc(
        "radarr",
        "lscr.io/linuxserver/radarr",
        vec![bind("/mnt/data", "/data", false)],
    );
    radarr.environment.insert("PUID".into(), "1000".into());
    let mut qbit = svc(
        "qbittorrent",
        "lscr.io/linuxserver/qbittorrent",
        vec![bind("/mnt/data/torrents", "/data/torrents", false)],
    );
    qbit.environment.insert("PUID".into(), "1001".into());
    let mut jellyfin = svc(
        "jellyfin",
        "jellyfin/jellyfin",
        vec![bind("/mnt/data/media", "/media", true)],
    );
    jellyfin.user = Some("1000:1000".into());
    let t = run(
        &[
            project("arr", vec![sonarr, radarr, qbit]),
            project("jellyfin", vec![jellyfin]),
        ],
        &BTreeMap::new(),
    );
    assert!(t.contains("\n# /mnt/data is written by radarr, sonarr of arr, and used below it by jellyfin: a library several projects use, so a share with grants for each, not arr's data (migrating would shift and close it)\n[shares.data]\npath = \"/mnt/data\"\nread = [\n  \"jellyfin:1000\",  # jellyfin:/media read-only (mounts /mnt/data/media); uid from user: 1000:1000\n]\nwrite = [\n  \"arr:1000\",  # sonarr:/data; uid from env PUID, as linuxserver.io images read it; radarr:/data; uid from env PUID, as linuxserver.io images read it\n  \"arr:1001\",  # qbittorrent:/data/torrents (mounts /mnt/data/torrents); uid from env PUID, as linuxserver.io images read it\n]\n"), "{t}");
    assert!(t.contains("[stacks.arr]\n"), "{t}");
    assert!(t.contains("data = [\n  \"/srv/arr/sonarr\","), "{t}");
    assert!(!t.contains("left out"), "{t}");
}

#[test]
fn container_uids_come_from_user_uid_variables_or_the_images_default_user() {
    let mut s = svc("db", "docker.io/library/mariadb:11", vec![]);
    assert_eq!(
        container_uid(&s),
        (
            Some(999),
            "mariadb image: mysql is uid 999 in its Dockerfile".into()
        )
    );
    s.user = Some("mysql".into());
    assert_eq!(
        container_uid(&s),
        (
            Some(999),
            "user mysql: mariadb image: mysql is uid 999 in its Dockerfile".into()
        )
    );
    s.user = Some("www-data".into());
    assert_eq!(container_uid(&s).0, None);
    s.user = Some("33:33".into());
    assert_eq!(container_uid(&s).0, Some(33));
    let mut l = svc("app", "lscr.io/linuxserver/sonarr", vec![]);
    assert_eq!(container_uid(&l).0, Some(911));
    l.environment.insert("PUID".into(), "1001".into());
    assert_eq!(
        container_uid(&l),
        (
            Some(1001),
            "env PUID, as linuxserver.io images read it".into()
        )
    );
    for (image, var, uid) in [
        ("docker.gitea.com/gitea:1.24", "USER_UID", 1002),
        (
            "ghcr.io/paperless-ngx/paperless-ngx:latest",
            "USERMAP_UID",
            1003,
        ),
        ("example/app", "APP_UID", 1004),
        ("example/app", "UID", 1005),
    ] {
        let mut e = svc("x", image, vec![]);
        e.environment.insert(var.into(), uid.to_string());
        assert_eq!(container_uid(&e).0, Some(uid), "{var}");
        assert!(
            container_uid(&e).1.starts_with(&format!("env {var},")),
            "{var}"
        );
    }
    for (image, uid) in [
        ("postgres:16-alpine@sha256:0", Some(70)),
        ("ghcr.io/immich-app/postgres:14-vectorchord0.3.0", Some(999)),
        ("redis:alpine", Some(999)),
        ("nextcloud:apache", Some(33)),
        ("nextcloud:fpm-alpine", Some(82)),
        ("grafana/grafana-oss:11", Some(472)),
        ("prom/prometheus", Some(65534)),
        ("quay.io/prometheus/node-exporter:latest", Some(65534)),
        ("prom/node-exporter", Some(65534)),
        ("jellyfin/jellyfin", Some(0)),
        ("ghcr.io/immich-app/immich-server:release", Some(0)),
        ("docker.gitea.com/gitea:1.24", Some(1000)),
        ("bitnami/postgresql:16", Some(1001)),
        ("nginx", None),
        ("ghcr.io/ajnart/homarr:latest", None),
    ] {
        assert_eq!(container_uid(&svc("x", image, vec![])).0, uid, "{image}");
    }
    assert_eq!(
        container_uid(&svc("x", "nginx", vec![])).1,
        "the default user of nginx is not one init knows"
    );
}

#[test]
fn stack_names_become_valid_user_names() {
    assert_eq!(stack_name("Immich", "stk-"), "immich");
    assert_eq!(stack_name("my app.v2", "stk-"), "my-app-v2");
    assert_eq!(stack_name("1password", ""), "s1password");
    assert_eq!(stack_name(&"x".repeat(40), "stk-").len(), 28);
}

#[test]
fn an_env_file_two_projects_use_is_a_todo_in_both_never_listed() {
    let mut a = project("a", vec![svc("web", "nginx", vec![])]);
    let mut b = project("b", vec![svc("web", "nginx", vec![])]);
    for pr in [&mut a, &mut b] {
        pr.env_files.push(crate::init::compose::EnvFileUse {
            path: "/opt/common.env".into(),
            services: vec!["web".into()],
            found: true,
        });
    }
    b.dot_env = Some("/opt/b/.env".into());
    let t = run(&[a, b], &BTreeMap::new());
    assert!(t.contains("# TODO: env file /opt/common.env (env_file of web) is also the env file of project b: one env file belongs to one stack"), "{t}");
    assert!(t.contains("# TODO: env file /opt/common.env (env_file of web) is also the env file of project a: one env file belongs to one stack"), "{t}");
    assert!(!t.contains("  \"/opt/common.env\""), "{t}");
    assert!(t.contains("env_files = [\n  \"/opt/b/.env\","), "{t}");
}

#[test]
fn a_share_mounted_with_u_is_a_warning() {
    let mut m = bind("/mnt/media", "/media", false);
    m.chown = true;
    let t = run(
        &[
            project("a", vec![svc("web", "nginx", vec![m])]),
            project(
                "b",
                vec![svc("web", "nginx", vec![bind("/mnt/media", "/m", true)])],
            ),
        ],
        &BTreeMap::new(),
    );
    assert!(t.contains("path = \"/mnt/media\"\n# WARNING: `:U` (web:/media, :U) makes podman chown the whole share to that container's user at every\n# start, over every other grant: drop `:U` from these mounts\n"), "{t}");
}
