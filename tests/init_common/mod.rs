//! The harness of `tests/init_hostile.rs`: a root with alice's compose tree and root-only
//! files, and a run of `isolate init` with its exit, output, time and peak memory.
#![allow(dead_code)]
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../scratch_common/mod.rs"]
mod scratch_common;

/// The uid and gid of the legacy user who owns the compose tree.
pub const ALICE: u32 = 1000;
/// Text only a root-only file holds: it must never appear in init's output.
pub const MARK: &str = "rootonlysecret";

/// A root below the tests' scratch directory (root-owned, not writable by others), with a root
/// 0700 directory holding root 0600 files, and alice's compose tree at
/// /home/alice/stacks/app (hers, 0755).
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Host {
        let dir = scratch_common::tempdir("init-hostile-");
        let r = dir.path();
        fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
        let secret = r.join("secret");
        fs::create_dir(&secret).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
        for (name, text) in [
            ("env", format!("DATA=/srv/{MARK}\n")),
            (
                "compose.yaml",
                format!("services:\n  {MARK}:\n    image: {MARK}\n    volumes:\n      - /srv/{MARK}:/data\n"),
            ),
        ] {
            let f = secret.join(name);
            fs::write(&f, text).unwrap();
            fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let h = Host { dir };
        for d in ["home/alice", "home/alice/stacks", "home/alice/stacks/app"] {
            fs::create_dir_all(h.root().join(d)).unwrap();
            chown(h.root().join(d), Some(ALICE), Some(ALICE)).unwrap();
        }
        h
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn app(&self) -> PathBuf {
        self.root().join("home/alice/stacks/app")
    }

    pub fn secret(&self, name: &str) -> PathBuf {
        self.root().join("secret").join(name)
    }

    /// A file of alice's in her project directory.
    pub fn alice_writes(&self, name: &str, text: &str) {
        let f = self.app().join(name);
        fs::write(&f, text).unwrap();
        chown(&f, Some(ALICE), Some(ALICE)).unwrap();
    }

    /// A symbolic link of alice's in her project directory.
    pub fn alice_links(&self, name: &str, to: &Path) {
        let l = self.app().join(name);
        symlink(to, &l).unwrap();
        std::os::unix::fs::lchown(&l, Some(ALICE), Some(ALICE)).unwrap();
    }

    pub fn init(&self) -> Run {
        run(self.root(), &[self.app()], &[])
    }
}

/// What one run of `isolate init` gave, with its wall time, the CPU time it used and its
/// peak resident memory.
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// User and system CPU time (from GNU time; None without it): the work done, which
    /// other load on the machine does not stretch as it stretches `elapsed`.
    pub cpu: Option<Duration>,
    pub max_rss_kib: i64,
}

impl Run {
    pub fn text(&self) -> String {
        format!(
            "exit {:?} signal {:?} after {:?} ({:?} of CPU), peak {} KiB\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.signal,
            self.elapsed,
            self.cpu,
            self.max_rss_kib,
            self.stdout,
            self.stderr
        )
    }

    /// The CPU time the run took, or where GNU time is missing its wall time.
    pub fn work(&self) -> Duration {
        self.cpu.unwrap_or(self.elapsed)
    }

    /// Refused with exit 2, the secret nowhere, and stderr holding each of `says`.
    pub fn assert_refused(&self, says: &[&str]) {
        let all = self.text();
        eprint!("refused: {}", self.stderr);
        assert!(
            !all.contains(MARK),
            "root-only content reached the output:\n{all}"
        );
        assert_eq!(self.code, Some(2), "{all}");
        assert!(self.stdout.is_empty(), "{all}");
        for s in says {
            assert!(self.stderr.contains(s), "stderr lacks {s:?}:\n{all}");
        }
    }
}

/// GNU time, which measures its child's peak RSS from a small process (wait4 on a child of
/// the test itself would count the test's own memory, which a fork carries into exec).
pub const GNU_TIME: &str = "/usr/bin/time";

/// Runs `isolate --root ROOT init --compose PROJECT` with at most 1 GiB of address space,
/// killed after 20 s; the peak RSS comes from GNU time when it is installed (else -1).
pub fn run(root: &Path, projects: &[PathBuf], env: &[(&str, &str)]) -> Run {
    run_with(root, projects, &[], env)
}

/// `run` with `--env` files.
pub fn run_with(
    root: &Path,
    projects: &[PathBuf],
    env_files: &[PathBuf],
    env: &[(&str, &str)],
) -> Run {
    use std::io::Read;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let timed = Path::new(GNU_TIME).exists();
    let mut cmd = if timed {
        let mut c = Command::new(GNU_TIME);
        c.args(["-f", "%M %U %S", "-o"])
            .arg(rss_file.path())
            .arg(env!("CARGO_BIN_EXE_isolate"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_isolate"))
    };
    cmd.arg("--root").arg(root).arg("init");
    for p in projects {
        cmd.arg("--compose").arg(p);
    }
    for e in env_files {
        cmd.arg("--env").arg(e);
    }
    cmd.envs(env.iter().copied())
        .env_remove("ISOLATE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let readers = (
        std::thread::spawn(move || {
            let mut s = Vec::new();
            out.read_to_end(&mut s).unwrap();
            s
        }),
        std::thread::spawn(move || {
            let mut s = Vec::new();
            err.read_to_end(&mut s).unwrap();
            s
        }),
    );
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(20) {
            // GNU time's child is isolate: kill both.
            let children = format!("/proc/{pid}/task/{pid}/children");
            for c in fs::read_to_string(children)
                .unwrap_or_default()
                .split_whitespace()
            {
                if let Ok(c) = c.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(c),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            child.kill().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let rss = fs::read_to_string(rss_file.path()).unwrap_or_default();
    // GNU time reports a killed child as "Command terminated by signal N" and exits 128+N.
    let signal = rss
        .lines()
        .find_map(|l| l.strip_prefix("Command terminated by signal "))
        .and_then(|n| n.trim().parse().ok())
        .or(st.signal());
    // The last line: "%M %U %S" (peak KiB, user and system seconds).
    let measured: Option<(i64, f64, f64)> = rss.lines().next_back().and_then(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [m, u, s] => Some((m.parse().ok()?, u.parse().ok()?, s.parse().ok()?)),
            _ => None,
        }
    });
    Run {
        code: st.code().filter(|_| signal.is_none()),
        signal,
        stdout: String::from_utf8_lossy(&readers.0.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&readers.1.join().unwrap()).into_owned(),
        elapsed,
        cpu: measured.map(|(_, u, s)| Duration::from_secs_f64(u + s)),
        max_rss_kib: measured.map_or(-1, |(m, _, _)| m),
    }
}
