//! Closed data must close on processes already inside: a process of another user whose working
//! directory, root or open descriptor is inside a data path, or a mount namespace holding a
//! bind mount of a directory inside it, keeps that access whatever the top's mode becomes (and
//! every process of its uid reaches the files through /proc/PID/cwd and /proc/PID/fd). `plan`
//! and `apply` refuse, naming each process (pid, uid, command and how it holds the data), and
//! change nothing; once the processes are gone apply goes on. Root-run, real processes.
mod hardening_common;
use hardening_common::{expect_code, text, Host, APP_POLICY};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child killed (and reaped) when dropped, so a failed assertion leaves no process behind.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Running {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// `sh -c script` as uid/gid 1000 (alice, the legacy owner), started in `cwd`.
fn as_alice(cwd: &std::path::Path, script: &str) -> Running {
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .gid(1000)
        .uid(1000)
        .spawn()
        .unwrap();
    Running(child)
}

/// Waits until `pid` runs `comm` (after its `exec`) with `ready` true of it.
fn settled(pid: u32, comm: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if now.trim_end() == comm && ready() {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} never became {comm}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host() -> Host {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 2, 2);
    h
}

/// plan and apply both refuse (exit 2) naming every `(pid, command, how)`, and the root is
/// byte-identical afterwards.
fn refused_naming(h: &Host, who: &[(u32, &str, &str)]) {
    let before = h.snapshot();
    for cmd in [
        &["plan", "--no-systemd"][..],
        &["apply", "--no-systemd"][..],
    ] {
        let out = h.run(cmd);
        expect_code(&out, 2);
        let err = text(&out.stderr);
        eprintln!("{cmd:?}:\n{err}");
        for (pid, comm, how) in who {
            let named = err
                .lines()
                .any(|l| l.contains(&format!("pid {pid} ")) && l.contains(comm) && l.contains(how));
            assert!(
                named,
                "{cmd:?}: pid {pid} ({comm}, {how}) not named in:\n{err}"
            );
        }
    }
    assert_eq!(before, h.snapshot(), "a refused apply changed the root");
}

#[test]
fn a_legacy_process_with_its_cwd_or_an_fd_inside_the_data_is_refused_until_it_ends() {
    let h = host();
    let data = h.root().join("srv/app");
    let in_cwd = as_alice(&data.join("d0"), "exec sleep 600");
    let file = data.join("d1/f0");
    let with_fd = as_alice(
        std::path::Path::new("/"),
        &format!("exec sleep 600 3<'{}'", file.display()),
    );
    settled(in_cwd.pid(), "sleep", || true);
    settled(with_fd.pid(), "sleep", || {
        std::fs::read_link(format!("/proc/{}/fd/3", with_fd.pid())).is_ok()
    });

    refused_naming(
        &h,
        &[
            (in_cwd.pid(), "sleep", "working directory"),
            (with_fd.pid(), "sleep", "open file 3"),
        ],
    );
    // The message says who (uid 1000 is alice) and what to do.
    let err = text(&h.run(&["apply", "--no-systemd"]).stderr);
    assert!(err.contains("uid 1000 alice"), "{err}");
    assert!(err.contains("--force"), "{err}");

    drop(in_cwd);
    let out = h.run(&["apply", "--no-systemd"]);
    expect_code(&out, 2);
    assert!(!text(&out.stderr).contains("working directory"));
    drop(with_fd);
    let out = h.run(&["apply", "--no-systemd"]);
    expect_code(&out, 0);
}

#[test]
fn force_migrates_while_a_process_is_inside() {
    let h = host();
    let in_cwd = as_alice(&h.root().join("srv/app/d1"), "exec sleep 600");
    settled(in_cwd.pid(), "sleep", || true);
    expect_code(&h.run(&["apply", "--no-systemd"]), 2);
    expect_code(&h.run(&["apply", "--no-systemd", "--force"]), 0);
}

#[test]
fn a_bind_mount_of_a_data_subdirectory_in_a_private_mount_namespace_is_refused() {
    let h = host();
    let sub = h.root().join("srv/app/d1");
    let point = h.dir.path().join("elsewhere");
    std::fs::create_dir(&point).unwrap();
    // Root in its own mount namespace, the data's d1 bind-mounted outside the data path; its
    // working directory is not inside (only the mount is).
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind '{}' '{}' && cd / && exec sleep 600",
            sub.display(),
            point.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ns = Running(child);
    settled(ns.pid(), "sleep", || true);
    // `unshare` execs `sh`, which execs `sleep`: the same pid throughout.
    refused_naming(&h, &[(ns.pid(), "sleep", "bind mount")]);
    drop(ns);
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
}

#[test]
fn a_process_whose_cwd_is_the_data_top_or_inside_a_mount_below_it_is_refused() {
    let h = host();
    let data = h.root().join("srv/app");
    // A tmpfs inside the data: ".." from its root leads into the data below any closed top.
    let inner = data.join("d0/cache");
    std::fs::create_dir(&inner).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0777", "isolate-test"])
        .arg(&inner)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _mounted = Unmount(inner.clone());
    let at_top = as_alice(&data, "exec sleep 600");
    let below_mount = as_alice(&inner, "exec sleep 600");
    settled(at_top.pid(), "sleep", || true);
    settled(below_mount.pid(), "sleep", || true);
    let out = h.run(&["plan", "--no-systemd"]);
    expect_code(&out, 2);
    let err = text(&out.stderr);
    for pid in [at_top.pid(), below_mount.pid()] {
        assert!(err.contains(&format!("pid {pid} ")), "{pid} not in:\n{err}");
    }
}

#[test]
fn a_cwd_in_a_lazily_unmounted_bind_mount_of_a_data_subdirectory_is_refused() {
    let h = host();
    let sub = h.root().join("srv/app/d1");
    let point = h.dir.path().join("elsewhere");
    std::fs::create_dir(&point).unwrap();
    // Mounted, entered and lazily unmounted in a private mount namespace, then alice's
    // `sleep` (the same pid: unshare, sh and setpriv exec): no mount table lists it any more,
    // only the process's cwd holds it, and `..` from there leads nowhere; the inode is still
    // d1 of the data. Never in this namespace: a test that copies it meanwhile (`unshare -m`
    // beside this one) would hold the bind mount after this test's process ended.
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind '{s}' '{p}' && cd '{p}' && umount -l '{p}' \
             && exec setpriv --reuid 1000 --regid 1000 --clear-groups sleep 600",
            s = sub.display(),
            p = point.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inside = Running(child);
    settled(inside.pid(), "sleep", || {
        std::fs::read_to_string(format!("/proc/{}/status", inside.pid()))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t1000\t")))
    });
    refused_naming(&h, &[(inside.pid(), "sleep", "working directory")]);
    drop(inside);
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
}

#[test]
fn closing_data_migrated_earlier_is_refused_while_a_legacy_process_is_inside() {
    let h = host();
    h.policy(&format!("{APP_POLICY}closed = false\n"));
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
    // Migrated and open: alice's shell walks in, then the policy closes the data.
    let inside = as_alice(&h.root().join("srv/app/d0"), "exec sleep 600");
    settled(inside.pid(), "sleep", || true);
    h.policy(APP_POLICY);
    refused_naming(&h, &[(inside.pid(), "sleep", "working directory")]);
    drop(inside);
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
    expect_code(&h.run(&["plan", "--no-systemd"]), 0);
}

const CHROOT_CHILD: &str = "ISOLATE_TEST_CHROOT_CHILD";

/// Not a test on its own: a process whose root directory is the directory in CHROOT_CHILD
/// (its working directory stays `/` of the host, outside the data), running as alice.
#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn chrooted_child() {
    let dir = std::env::var(CHROOT_CHILD).expect("run by its parent test");
    let dir = std::ffi::CString::new(dir).unwrap();
    // SAFETY: plain syscalls with a valid C string and integers.
    unsafe {
        assert_eq!(libc::chroot(dir.as_ptr()), 0);
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(1000), 0);
        assert_eq!(libc::setuid(1000), 0);
    }
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_legacy_process_whose_root_directory_is_inside_the_data_is_refused() {
    let h = host();
    let inner = h.root().join("srv/app/d1");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["chrooted_child", "--exact", "--ignored", "--test-threads=1"])
        .env(CHROOT_CHILD, &inner)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let chrooted = Running(child);
    // Its command after the exec: the test binary's file name, cut to 15 bytes as the
    // kernel keeps it (read before the exec, /proc would still show this test's thread).
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let comm: String = name.chars().take(15).collect();
    // Settled once every thread of it runs as alice with its root moved.
    settled(chrooted.pid(), &comm, || {
        std::fs::read_link(format!("/proc/{}/root", chrooted.pid())).is_ok_and(|r| r == inner)
            && std::fs::read_to_string(format!("/proc/{}/status", chrooted.pid()))
                .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t1000\t")))
    });
    refused_naming(&h, &[(chrooted.pid(), &comm, "root directory")]);
    drop(chrooted);
    expect_code(&h.run(&["apply", "--no-systemd"]), 0);
}
