//! Root drives every stack (issue 20), for real against a temporary root that apply filled
//! through shadow's --prefix: `exec` runs a command as the stack user (its uid, groups,
//! session environment, home) and passes the exit code through; `logs` hands journalctl the
//! stack's matches; `ps` lists a stack whose socket is down as a line, exit 0.
use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn host() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = dir.path();
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["etc", "root", "home/alice", "bin", "usr/sbin"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    for sh in ["bin/bash", "usr/sbin/nologin"] {
        fs::write(r.join(sh), "").unwrap();
        fs::set_permissions(r.join(sh), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (f, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        ),
        (
            "etc/shadow",
            "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n",
        ),
        ("etc/group", "root:x:0:\nalice:x:1000:\n"),
        ("etc/gshadow", "root:*::\nalice:!::\n"),
        ("etc/subuid", "alice:100000:65536\n"),
        ("etc/subgid", "alice:100000:65536\n"),
        (
            "policy.toml",
            "[stacks.app]\ndata = []\n[stacks.web]\ndata = []\n",
        ),
    ] {
        fs::write(r.join(f), text).unwrap();
    }
    isolate(r, &["apply", "--no-systemd"]).success();
    dir
}

fn isolate(r: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = Command::cargo_bin("isolate").unwrap();
    cmd.arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(r.join("policy.toml"))
        .args(args)
        .env_remove("ISOLATE_LOG");
    cmd.assert()
}

fn out(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

#[test]
fn exec_runs_as_the_stack_user_in_its_session_and_passes_the_exit_code() {
    let h = host();
    let r = h.path();
    let gid_shared = fs::read_to_string(r.join("etc/group"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("stk-shared:"))
        .and_then(|l| l.split(':').nth(2).map(str::to_string))
        .unwrap();
    let a = isolate(
        r,
        &[
            "exec",
            "app",
            "--",
            "sh",
            "-c",
            "id -u; id -g; id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '; echo; pwd; \
             echo $HOME $USER $LOGNAME; echo $XDG_RUNTIME_DIR $DBUS_SESSION_BUS_ADDRESS; \
             echo $DOCKER_HOST $CONTAINER_HOST; echo ${SSH_AUTH_SOCK:-none}; exit 7",
        ],
    )
    .code(7);
    let home = r.join("var/lib/isolate/home/stk-app");
    assert_eq!(
        out(&a),
        format!(
            "70000\n70000\n{gid_shared} 70000 \n{}\n/var/lib/isolate/home/stk-app stk-app stk-app\n\
             /run/user/70000 unix:path=/run/user/70000/bus\n\
             unix:///run/user/70000/podman/podman.sock unix:///run/user/70000/podman/podman.sock\nnone\n",
            home.display()
        )
    );
    // Not a recorded stack: exit 2, nothing run.
    isolate(r, &["exec", "nope", "--", "true"]).code(2);
}

#[test]
fn logs_hands_journalctl_the_stacks_matches() {
    let h = host();
    let r = h.path();
    let bin = r.join("fakebin");
    fs::create_dir(&bin).unwrap();
    fs::write(bin.join("journalctl"), "#!/bin/sh\necho \"$@\"\nexit 3\n").unwrap();
    fs::set_permissions(bin.join("journalctl"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let a = Command::cargo_bin("isolate")
        .unwrap()
        .arg("--root")
        .arg(r)
        .arg("--policy")
        .arg(r.join("policy.toml"))
        .args(["logs", "web", "-f", "--since", "-1h"])
        .env("PATH", &path)
        .assert()
        .code(3);
    assert_eq!(
        out(&a),
        format!(
            "--root {} --follow --since=-1h _UID=70001 + _SYSTEMD_OWNER_UID=70001 + UNIT=user@70001.service\n",
            r.display()
        )
    );
}

#[test]
fn ps_lists_a_stack_whose_socket_is_down_as_a_line() {
    let h = host();
    let r = h.path();
    let a = isolate(r, &["ps"]).success();
    let sock = |uid: u32| r.join(format!("run/user/{uid}/podman/podman.sock"));
    assert_eq!(
        out(&a),
        format!(
            "STACK  CONTAINER  IMAGE  STATE  HEALTH  PORTS\n\
             app: no answer from {} (no such socket (is podman.socket started?))\n\
             web: no answer from {} (no such socket (is podman.socket started?))\n",
            sock(70000).display(),
            sock(70001).display()
        )
    );
    let j = isolate(r, &["ps", "--stack", "web", "--format", "json"]).success();
    let v: serde_json::Value = serde_json::from_str(&out(&j)).unwrap();
    assert_eq!(v["stacks"][0]["stack"], "web");
    assert_eq!(v["stacks"][0]["uid"], 70001);
    assert!(v["stacks"][0]["error"].is_string());
}
