//! `isolate init --quadlets DIR` on a legacy user's quadlet directory: the pod with its two
//! containers and the quadlet volume they name becomes one stack (its bind sources its data,
//! `%h` resolved to her home), a container outside a pod a stack of its own, and the draft is a
//! policy isolate accepts.
mod fixture_copy;
mod scratch_common;
use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const Q: &str = "home/alice/.config/containers/systemd";

#[test]
fn a_quadlet_directory_drafts_a_pod_stack_and_a_lone_container() {
    let dir = scratch_common::tempdir("initquadlets-");
    let r = dir.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(r.join(Q)).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
    for (name, text) in [
        ("app.pod", "[Pod]\nPodName=app\n"),
        ("app-data.volume", "[Volume]\n"),
        (
            "web.container",
            "[Container]\nImage=localhost/app-web:1\nPod=app.pod\nVolume=/srv/app/conf:/conf\n",
        ),
        (
            "db.container",
            "[Container]\nImage=localhost/app-web:1\nPod=app.pod\nVolume=app-data.volume:/data\nVolume=%h/app/db:/db\n",
        ),
        ("solo.container", "[Container]\nImage=x\nVolume=/srv/solo:/s\n"),
        ("notes.txt", "not a unit\n"),
    ] {
        fs::write(r.join(Q).join(name), text).unwrap();
    }
    fixture_copy::chown_files(&r.join("home/alice"), 1000);
    let a = Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .env_remove("ISOLATE_LOG")
        .args([
            "init",
            "--quadlets",
            &format!("/{Q}"),
            "--legacy-owner",
            "alice",
        ])
        .assert()
        .success();
    let out = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    let from = out.find("\n# from the quadlet files").expect(&out);
    assert_eq!(
        &out[from..],
        "\n# from the quadlet files in /home/alice/.config/containers/systemd (app.pod and what it names)\n[stacks.app]\ndata = [\n  \"/home/alice/app/db\",\n  \"/srv/app/conf\",\n]\nmigrate = \"shift\"\nquadlets = [\n  \"/home/alice/.config/containers/systemd/app.pod\",\n  \"/home/alice/.config/containers/systemd/db.container\",\n  \"/home/alice/.config/containers/systemd/web.container\",\n  \"/home/alice/.config/containers/systemd/app-data.volume\",\n]\n\n# from the quadlet files in /home/alice/.config/containers/systemd (solo.container and what it names)\n[stacks.solo]\ndata = [\n  \"/srv/solo\",\n]\nmigrate = \"shift\"\nquadlets = [\n  \"/home/alice/.config/containers/systemd/solo.container\",\n]\n"
    );
}
