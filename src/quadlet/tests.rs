//! Tests of the quadlet capability: parsing, naming, rewriting (exact text), placing,
//! planning and drafting, on the two-container pod the booted scenario moves.
use super::draft;
use super::place;
use super::plan::{self, QuadletFacts, QuadletStep, Sides, SourceFacts};
use super::rewrite::{self, Origin};
use super::unit::{QuadletFile, QuadletKind, Reference};
use crate::model::{NoteKind, Planned};
use std::path::{Path, PathBuf};

const POD: &str =
    "[Unit]\nDescription=app pod\n\n[Pod]\nPodName=app\n\n[Install]\nWantedBy=default.target\n";

const WEB: &str = "# the web side\n[Unit]\nDescription=web\n\n[Container]\nImage=localhost/app-web:1\nPod=app.pod\nVolume=app-data.volume:/data\nVolume=/srv/app/conf:/conf:ro\nVolume=%h/app/cache:/cache\nUserNS=auto\nExec=sleep infinity\n\n[Service]\nUser=alice\nGroup=alice\nRestart=always\n\n[Install]\nWantedBy=default.target\n";

const DB: &str = "[Container]\nImage=localhost/app-web:1\nPod=app.pod\nMount=type=bind,source=/srv/app/db,destination=/db\nUser=999\nUserNS=keep-id\nExec=sleep infinity\n";

const VOLUME: &str = "[Volume]\n";

fn file(name: &str, text: &str) -> QuadletFile {
    QuadletFile::new(name, text).unwrap()
}

fn alice() -> Origin {
    Origin {
        home: "/home/alice".into(),
    }
}

#[test]
fn kinds_come_from_the_file_name() {
    assert_eq!(
        QuadletKind::of_file_name("web.container"),
        Some(QuadletKind::Container)
    );
    assert_eq!(QuadletKind::of_file_name("app.pod"), Some(QuadletKind::Pod));
    assert_eq!(
        QuadletKind::of_file_name("a.b.volume"),
        Some(QuadletKind::Volume)
    );
    assert_eq!(QuadletKind::of_file_name("web.service"), None);
    assert_eq!(QuadletKind::of_file_name(".container"), None);
    assert_eq!(QuadletKind::of_file_name("container"), None);
    for k in QuadletKind::ALL {
        assert_eq!(
            QuadletKind::of_file_name(&format!("x.{}", k.suffix())),
            Some(k)
        );
    }
    assert_eq!(file("a.b.volume", "").stem(), "a.b");
}

#[test]
fn entries_skip_comments_and_a_later_line_wins() {
    let f = file(
        "x.container",
        "# c\n; c\n[Container]\nImage=a\n Exec = sleep 1 \nImage=b\n\n[Service]\nRestart=always\n",
    );
    let e = f.entries();
    assert_eq!(e.len(), 4);
    assert_eq!(
        (
            e[1].section.as_str(),
            e[1].key.as_str(),
            e[1].value.as_str(),
            e[1].line
        ),
        ("Container", "Exec", "sleep 1", 4)
    );
    assert_eq!(f.value("Container", "Image").as_deref(), Some("b"));
    assert_eq!(f.value("Service", "Restart").as_deref(), Some("always"));
    assert_eq!(f.value("Service", "Image"), None);
}

#[test]
fn references_name_the_other_files() {
    let f = file(
        "x.container",
        "[Container]\nImage=base.image\nPod=app.pod\nNetwork=app.network\nNetwork=host\nVolume=app-data.volume:/data\nVolume=named:/n\nVolume=/srv/x:/x\nMount=type=volume,source=cache.volume,destination=/c\n",
    );
    let r = |key: &str, file: &str| Reference {
        key: key.into(),
        file: file.into(),
    };
    assert_eq!(
        f.references(),
        vec![
            r("Image", "base.image"),
            r("Pod", "app.pod"),
            r("Network", "app.network"),
            r("Volume", "app-data.volume"),
            r("Mount", "cache.volume"),
        ]
    );
    assert_eq!(f.images(), Vec::<String>::new());
    assert_eq!(
        file("w.container", WEB).images(),
        vec!["localhost/app-web:1"]
    );
}

#[test]
fn generated_units_and_podman_names() {
    let names: Vec<String> = [
        "web.container",
        "app.pod",
        "data.volume",
        "net.network",
        "k.kube",
        "i.image",
        "b.build",
    ]
    .iter()
    .map(|n| file(n, "").service_name())
    .collect();
    assert_eq!(
        names,
        vec![
            "web.service",
            "app-pod.service",
            "data-volume.service",
            "net-network.service",
            "k.service",
            "i-image.service",
            "b-build.service"
        ]
    );
    assert_eq!(
        file(
            "web.container",
            "[Service]\nx=1\n[Container]\nServiceName=front\n"
        )
        .service_name(),
        "front.service"
    );
    assert_eq!(
        file("data.volume", VOLUME).podman_name().as_deref(),
        Some("systemd-data")
    );
    assert_eq!(
        file("data.volume", "[Volume]\nVolumeName=pg\n")
            .podman_name()
            .as_deref(),
        Some("pg")
    );
    assert_eq!(file("app.pod", POD).podman_name().as_deref(), Some("app"));
    assert_eq!(
        file("net.network", "").podman_name().as_deref(),
        Some("systemd-net")
    );
    assert_eq!(file("web.container", WEB).podman_name(), None);
}

#[test]
fn bind_sources_are_absolute_host_paths() {
    assert_eq!(
        file("w.container", WEB).bind_sources(),
        vec!["/srv/app/conf", "%h/app/cache"]
    );
    assert_eq!(file("d.container", DB).bind_sources(), vec!["/srv/app/db"]);
}

#[test]
fn rewrite_drops_what_only_made_sense_rootful_and_resolves_the_home() {
    let r = rewrite::for_stack(&file("web.container", WEB), &alice());
    assert_eq!(
        r.text,
        "# the web side\n[Unit]\nDescription=web\n\n[Container]\nImage=localhost/app-web:1\nPod=app.pod\nVolume=app-data.volume:/data\nVolume=/srv/app/conf:/conf:ro\n# isolate: was \"Volume=%h/app/cache:/cache\" (%h meant /home/alice, the legacy owner's home; data keeps its path)\nVolume=/home/alice/app/cache:/cache\n# isolate: removed \"UserNS=auto\" (the stack's data is shifted for podman's default rootless mapping)\nExec=sleep infinity\n\n[Service]\n# isolate: removed \"User=alice\" (the unit runs in the stack user's own manager)\n# isolate: removed \"Group=alice\" (the unit runs in the stack user's own manager)\nRestart=always\n\n[Install]\nWantedBy=default.target\n"
    );
    let lines: Vec<usize> = r.changes.iter().map(|c| c.line).collect();
    assert_eq!(lines, vec![10, 11, 15, 16]);
    assert_eq!(r.changes[1].was, "UserNS=auto");
}

#[test]
fn rewrite_keeps_a_rootless_file_as_it_is() {
    for (name, text) in [("db.container", DB), ("app.pod", POD), ("d.volume", VOLUME)] {
        let r = rewrite::for_stack(&file(name, text), &alice());
        assert_eq!(r.text, text, "{name}");
        assert!(r.changes.is_empty(), "{name}");
    }
}

#[test]
fn the_stack_dir_depends_on_podmans_version() {
    let home = Path::new("/var/lib/isolate/home/stk-app");
    assert_eq!(
        place::stack_dir(Some((5, 4)), 70001, home),
        PathBuf::from("/etc/containers/systemd/users/70001")
    );
    assert_eq!(
        place::stack_dir(Some((4, 4)), 70001, home),
        PathBuf::from("/etc/containers/systemd/users/70001")
    );
    assert_eq!(
        place::stack_dir(Some((4, 3)), 70001, home),
        PathBuf::from("/var/lib/isolate/home/stk-app/.config/containers/systemd")
    );
    assert_eq!(
        place::stack_dir(None, 70001, home),
        PathBuf::from("/var/lib/isolate/home/stk-app/.config/containers/systemd")
    );
}

#[test]
fn a_file_every_user_runs_is_no_stacks_source() {
    assert!(
        place::source_problem(Path::new("/etc/containers/systemd/users/web.container")).is_some()
    );
    assert!(place::source_problem(Path::new(
        "/etc/containers/systemd/users/1000/web.container"
    ))
    .is_none());
    assert!(place::source_problem(Path::new(
        "/home/alice/.config/containers/systemd/web.container"
    ))
    .is_none());
    assert!(place::source_problem(Path::new("/etc/containers/systemd/web.container")).is_none());
}

const DIR: &str = "/home/alice/.config/containers/systemd";

fn sides() -> Sides {
    Sides {
        stack: "app".into(),
        user: "stk-app".into(),
        uid: 70001,
        home: "/var/lib/isolate/home/stk-app".into(),
        legacy_user: "alice".into(),
        legacy_uid: 1000,
        legacy_home: "/home/alice".into(),
    }
}

fn sources(parked: bool) -> Vec<SourceFacts> {
    [
        ("app.pod", POD),
        (
            "web.container",
            DB.replace("/srv/app/db,destination=/db", "/srv/app/web,destination=/w")
                .as_str(),
        ),
        ("db.container", DB),
        ("app-data.volume", VOLUME),
    ]
    .iter()
    .map(|(name, text)| SourceFacts {
        path: Path::new(DIR).join(name),
        text: (!parked).then(|| text.to_string()),
        parked: parked.then(|| text.to_string()),
    })
    .collect()
}

fn facts(parked: bool) -> QuadletFacts {
    QuadletFacts {
        podman: Some((5, 4)),
        sources: sources(parked),
        ..Default::default()
    }
}

#[test]
fn the_first_apply_retires_the_legacy_units_and_installs_the_stacks() {
    let f = facts(false);
    let files = plan::files_of(&f);
    assert_eq!(plan::volumes(&files), vec!["systemd-app-data"]);
    assert_eq!(
        plan::units_to_start(&files),
        vec!["app-pod.service", "web.service", "db.service"]
    );
    let mut out = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut out, &mut refusals, &sides(), &f);
    assert_eq!(refusals, Vec::<String>::new());
    let shown: Vec<String> = out.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "~ quadlets of app: stop alice's units app-pod.service, web.service, db.service, move the 4 quadlet files to /var/lib/isolate/stacks/app/quadlets-legacy and reload alice's manager (a reboot starts none of them)".to_string(),
            "+ quadlets of app: app.pod, web.container, db.container, app-data.volume into /etc/containers/systemd/users/70001 for stk-app, reload its manager, start app-pod.service, web.service, db.service".to_string(),
        ]
    );
    let QuadletStep::Install { files, .. } = &out.steps[1] else {
        panic!("{:?}", out.steps[1])
    };
    assert_eq!(files[2].text, DB);
}

#[test]
fn a_moved_stack_plans_nothing() {
    let mut f = facts(true);
    for s in &f.sources {
        let name = s.path.file_name().unwrap().to_str().unwrap().to_string();
        f.installed.insert(name, s.parked.clone().unwrap());
    }
    f.active = ["app-pod.service", "web.service", "db.service"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut out = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut out, &mut refusals, &sides(), &f);
    assert_eq!(refusals, Vec::<String>::new());
    assert_eq!(out.steps, vec![]);
    assert_eq!(out.notes.len(), 1);
    assert_eq!(out.notes[0].kind, NoteKind::Present);
    assert_eq!(
        out.notes[0].message,
        "quadlets of app in /etc/containers/systemd/users/70001, units active; alice's are parked in /var/lib/isolate/stacks/app/quadlets-legacy"
    );
}

#[test]
fn a_stopped_moved_stack_is_started_again_without_retiring_anything() {
    let mut f = facts(true);
    for s in &f.sources {
        let name = s.path.file_name().unwrap().to_str().unwrap().to_string();
        f.installed.insert(name, s.parked.clone().unwrap());
    }
    let mut out = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut out, &mut refusals, &sides(), &f);
    assert_eq!(out.steps.len(), 1);
    assert!(matches!(out.steps[0], QuadletStep::Install { .. }));
}

#[test]
fn files_that_do_not_hang_together_are_refused() {
    let mut f = facts(false);
    f.sources.remove(0); // app.pod
    f.sources.push(SourceFacts {
        path: Path::new(DIR).join("gone.container"),
        text: None,
        parked: None,
    });
    f.sources.push(SourceFacts {
        path: "/etc/containers/systemd/users/all.container".into(),
        text: Some("[Container]\nImage=x\n".into()),
        parked: None,
    });
    let mut out = Planned::default();
    let mut refusals = Vec::new();
    plan::plan_stack(&mut out, &mut refusals, &sides(), &f);
    assert_eq!(out.steps, vec![]);
    assert_eq!(
        refusals,
        vec![
            "quadlet file /home/alice/.config/containers/systemd/gone.container of stack `app` does not exist (and isolate parked no copy of it)".to_string(),
            "quadlet file /etc/containers/systemd/users/all.container of stack `app`: a file directly in /etc/containers/systemd/users runs for every user, the stack user too; move it to /etc/containers/systemd/users/UID of its owner first".to_string(),
            "quadlet file web.container of stack `app` names Pod=app.pod, which is not among the stack's `quadlets`".to_string(),
            "quadlet file db.container of stack `app` names Pod=app.pod, which is not among the stack's `quadlets`".to_string(),
        ]
    );
}

#[test]
fn init_groups_a_directory_into_stacks() {
    let dir = Path::new(DIR);
    let files = vec![
        file("app.pod", POD),
        file("web.container", WEB),
        file("db.container", DB),
        file("app-data.volume", VOLUME),
        file(
            "solo.container",
            "[Container]\nImage=x\nVolume=/srv/solo:/s\n",
        ),
        file("unused.volume", VOLUME),
    ];
    let got = draft::stacks(dir, &files, Path::new("/home/alice"));
    let shown: Vec<(String, Vec<PathBuf>, Vec<PathBuf>)> =
        got.into_iter().map(|s| (s.name, s.files, s.data)).collect();
    assert_eq!(
        shown,
        vec![
            (
                "app".to_string(),
                vec![
                    dir.join("app.pod"),
                    dir.join("web.container"),
                    dir.join("db.container"),
                    dir.join("app-data.volume")
                ],
                vec![
                    PathBuf::from("/srv/app/conf"),
                    PathBuf::from("/home/alice/app/cache"),
                    PathBuf::from("/srv/app/db")
                ],
            ),
            (
                "solo".to_string(),
                vec![dir.join("solo.container")],
                vec![PathBuf::from("/srv/solo")],
            ),
        ]
    );
}
