//! kill -9 (the whole process group, as a stopped unit or a lost terminal does: shadow's
//! tools die with isolate) at random moments of `apply` (account creation and migration)
//! and of `rollback` (most after it recorded `rolling_back`, so inside its walks), against
//! temporary roots whose data holds setuid/setgid files and a setgid directory. After every
//! kill one re-run converges, a second one has nothing to do, shadow's `pwck -r` and
//! `grpck -r` pass, and the data ends exactly as after an uninterrupted run, setuid/setgid
//! bits included. Prints where the kills landed and how many killed runs converged per
//! command (`CRASH_KILLS`, default 50, and `CRASH_SEED` set them); fails listing every kill
//! that did not, or if a phase got none. A kill that left the data top locked (the walk's
//! lock, issue 21) is listed as such ("migrating, top locked").
mod hardening_common;
use hardening_common::{expect_code, shadow_checks, text, Host, APP_POLICY};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Kills of each command (`CRASH_KILLS` overrides).
fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

/// Per phase the kill landed in: each kill's number and whether its re-runs converged.
type Landed = BTreeMap<String, Vec<(usize, Result<(), String>)>>;

fn note(landed: &std::sync::Mutex<Landed>, at: String, i: usize, converged: Result<(), String>) {
    landed
        .lock()
        .unwrap()
        .entry(at)
        .or_default()
        .push((i, converged));
}

/// xorshift64*: enough randomness for kill moments, reproducible from the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, d: Duration) -> Duration {
        Duration::from_nanos(self.next() % (d.as_nanos() as u64).max(1))
    }
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Starts isolate `args` in its own process group and kills the group `after` it started, or,
/// with `mark`, `after` the state file first shows `mark` (so a kill lands in that phase however
/// slow the machine is); then reaps every process of the group (this test is their subreaper,
/// as init is on a host: a killed shadow tool left a zombie would hold its lock file's PID
/// "alive"). A run that ends before the moment is not killed.
fn kill_after(h: &Host, args: &[&str], mark: Option<&str>, after: Duration) {
    let mut child = h
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    if let Some(mark) = mark {
        let state = h.root().join("var/lib/isolate/state.json");
        while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains(mark)) {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    std::thread::sleep(after);
    // SAFETY: kill(2) of the process group this test started.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    child.wait().unwrap();
    // SAFETY: waitpid(2) on that group's orphans (now ours); the status is a local integer.
    unsafe {
        let mut status = 0;
        while libc::waitpid(-group, &mut status, 0) > 0 {}
    }
}

/// Where the run was when it died, from the state file: `before` (nothing recorded, no stack
/// user yet), `accounts`, or the migration record's phase (`migrating`, `done`,
/// `rolling_back`, `rolled_back`).
fn phase(h: &Host) -> &'static str {
    let Ok(t) = std::fs::read_to_string(h.root().join("var/lib/isolate/state.json")) else {
        return if std::fs::read(h.root().join("etc/passwd"))
            .unwrap()
            .windows(4)
            .any(|w| w == b"stk-")
        {
            "accounts"
        } else {
            "before"
        };
    };
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    match v["stacks"]["app"]["migrations"][0]["phase"].as_str() {
        None => "accounts",
        Some("migrating") => "migrating",
        Some("done") => "done",
        Some("rolling_back") => "rolling_back",
        Some("rolled_back") => "rolled_back",
        Some(other) => panic!("unknown phase {other}"),
    }
}

/// `at`, or `at` with ", top locked" when the kill left the data top locked (root's alone,
/// mode 0700: a walk was killed while it held the lock; the journal's lock line is open).
fn locked_or(h: &Host, at: &'static str) -> &'static str {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(h.root().join("srv/app")).unwrap();
    match (m.uid(), m.gid(), m.mode() & 0o7777, at) {
        (0, 0, 0o700, "migrating") => "migrating, top locked",
        (0, 0, 0o700, "rolling_back") => "rolling_back, top locked",
        _ => at,
    }
}

fn etc(h: &Host) -> Vec<Vec<u8>> {
    ["passwd", "group", "subuid", "subgid"]
        .iter()
        .map(|f| std::fs::read(h.root().join("etc").join(f)).unwrap())
        .collect()
}

/// Runs `args` uninterrupted; returns when the state first showed `mark` and when it ended.
fn timed(h: &Host, args: &[&str], mark: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let mut child = h
        .command(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = h.root().join("var/lib/isolate/state.json");
    let mut seen = None;
    loop {
        if seen.is_none() && std::fs::read_to_string(&state).is_ok_and(|s| s.contains(mark)) {
            seen = Some(t.elapsed());
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "{args:?} failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let total = t.elapsed();
    (seen.unwrap_or(total), total)
}

const APPLY: &[&str] = &["apply", "--no-systemd"];
/// The state file's mark of a started migration.
const MIGRATING: &str = "\"migrating\"";
const ROLLBACK: &[&str] = &["rollback", "--stack", "app"];
/// The state file's mark of a started rollback.
const ROLLING_BACK: &str = "\"rolling_back\"";
const NOTHING_TO_ROLL_BACK: &str = "isolate: stack `app` has no migration to roll back\n";

/// What every run must end in.
struct Expected {
    applied_data: Snapshot,
    applied_etc: Vec<Vec<u8>>,
    original_data: Snapshot,
}

type Snapshot = std::collections::BTreeMap<std::path::PathBuf, (String, u32, u32, u32, Vec<u8>)>;

/// Whether a killed run's re-run converged: Err says how it did not.
type Converged = Result<(), String>;

/// One apply killed after `delay`, then re-run to the end; returns where the kill landed and
/// whether the re-runs converged to the uninterrupted result.
fn apply_killed(
    template: &Host,
    mark: Option<&str>,
    delay: Duration,
    want: &Expected,
) -> (&'static str, Converged) {
    let h = Host::copy_of(template);
    kill_after(&h, APPLY, mark, delay);
    let at = locked_or(&h, phase(&h));
    let converged = (|| {
        let again = h.run(APPLY);
        if again.status.code() != Some(0) {
            return Err(format!(
                "re-run exited {:?}: {}",
                again.status.code(),
                text(&again.stderr)
            ));
        }
        let third = h.run(APPLY);
        if text(&third.stdout) != "nothing to do: the host matches the policy\n" {
            return Err(format!(
                "third run: {}{}",
                text(&third.stdout),
                text(&third.stderr)
            ));
        }
        shadow_checks(h.root())?;
        let data = h.snapshot_under("srv/app");
        if data != want.applied_data {
            return Err(format!(
                "data differs: {}",
                differences(&data, &want.applied_data)
            ));
        }
        if etc(&h) != want.applied_etc {
            return Err("/etc differs".into());
        }
        Ok(())
    })();
    (at, converged)
}

/// The first entries that differ between two snapshots (path: got vs wanted).
fn differences(got: &Snapshot, want: &Snapshot) -> String {
    let mut out = Vec::new();
    for (path, w) in want {
        match got.get(path) {
            Some(g) if g == w => {}
            Some(g) => out.push(format!(
                "{}: mode {:o} {}:{} (want {:o} {}:{})",
                path.display(),
                g.1,
                g.2,
                g.3,
                w.1,
                w.2,
                w.3
            )),
            None => out.push(format!("{}: missing", path.display())),
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("{}: extra", path.display()));
    }
    let n = out.len();
    out.truncate(4);
    format!("{n} entries: {}", out.join(", "))
}

/// One rollback killed after `delay`, then re-run to the end; returns where the kill landed
/// and whether the re-runs converged to the uninterrupted result (setuid/setgid bits
/// included).
fn rollback_killed(
    template: &Host,
    mark: Option<&str>,
    delay: Duration,
    want: &Expected,
) -> (&'static str, Converged) {
    // Applied here, not copied from an applied host: rollback recognises files (and the data
    // directory) by identity, which a copy does not keep.
    let h = Host::copy_of(template);
    expect_code(&h.run(APPLY), 0);
    kill_after(&h, ROLLBACK, mark, delay);
    let at = match phase(&h) {
        "done" => "rollback not started",
        "rolling_back" => locked_or(&h, "rolling_back"),
        "rolled_back" => "rollback recorded",
        other => panic!("rollback kill: phase {other}"),
    };
    let converged = (|| {
        if at != "rollback recorded" {
            let again = h.run(ROLLBACK);
            if again.status.code() != Some(0) {
                return Err(format!(
                    "re-run exited {:?}: {}",
                    again.status.code(),
                    text(&again.stderr)
                ));
            }
        }
        let last = h.run(ROLLBACK);
        if text(&last.stderr) != NOTHING_TO_ROLL_BACK {
            return Err(format!("last run: {}", text(&last.stderr)));
        }
        shadow_checks(h.root())?;
        let data = h.snapshot_under("srv/app");
        if data != want.original_data {
            return Err(format!(
                "data differs: {}",
                differences(&data, &want.original_data)
            ));
        }
        Ok(())
    })();
    (at, converged)
}

/// Files whose privileges a rollback must give back exactly: a root 4755 file (reowned by
/// `auto`, journalled), a legacy-mapped 4755 file and a setgid directory (shifted; the
/// chown drops the file's bits).
fn privileged_data(h: &Host) {
    use std::os::unix::fs::{chown, PermissionsExt};
    let set = |rel: &str, uid: u32, gid: u32, mode: u32| {
        let p = h.root().join(rel);
        chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    h.write("srv/app/root-suid", b"#!/bin/sh\n");
    set("srv/app/root-suid", 0, 0, 0o4755);
    h.write("srv/app/d0/legacy-suid", b"binary");
    set("srv/app/d0/legacy-suid", 100_000, 100_005, 0o6755);
    std::fs::create_dir(h.root().join("srv/app/sgid")).unwrap();
    set("srv/app/sgid", 100_000, 100_005, 0o2775);
    h.write("srv/app/sgid/inside", b"x");
    set("srv/app/sgid/inside", 100_001, 100_005, 0o644);
}

#[test]
fn kill_9_anywhere_in_apply_or_rollback_then_rerun_converges() {
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let seed = seed();
    let kills = kills();
    let started = Instant::now();

    let template = Host::new();
    template.policy(APP_POLICY);
    template.legacy_data("srv/app", 10, 50);
    privileged_data(&template);

    // The uninterrupted runs: their results, and when the migration starts.
    let reference = Host::copy_of(&template);
    let (accounts_time, apply_time) = timed(&reference, APPLY, MIGRATING);
    shadow_checks(reference.root()).unwrap();
    let applied_data = reference.snapshot_under("srv/app");
    let applied_etc = etc(&reference);
    let (rollback_marked, rollback_time) = timed(&reference, ROLLBACK, ROLLING_BACK);
    let want = Expected {
        applied_data,
        applied_etc,
        original_data: template.snapshot_under("srv/app"),
    };
    assert!(reference.snapshot_under("srv/app") == want.original_data);
    println!(
        "seed {seed}: apply {apply_time:?} (migration from {accounts_time:?}), rollback {rollback_time:?} (walk from {rollback_marked:?})"
    );

    // Half the apply kills at random moments of the account phase, half at random moments
    // after the migration was recorded as started; two workers, each with its own random
    // sequence.
    let landed = std::sync::Mutex::new(Landed::new());
    std::thread::scope(|s| {
        for worker in 0..2u64 {
            let (template, want, landed) = (&template, &want, &landed);
            s.spawn(move || {
                let mut rng =
                    Rng(seed.wrapping_add(worker.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                for i in (worker as usize..kills).step_by(2) {
                    let (mark, delay) = if i % 4 < 2 {
                        (None, rng.below(accounts_time))
                    } else {
                        let migration_time = apply_time.saturating_sub(accounts_time);
                        (Some(MIGRATING), rng.below(migration_time))
                    };
                    let (at, converged) = apply_killed(template, mark, delay, want);
                    note(landed, format!("apply: {at}"), i, converged);
                    // A quarter of the rollback kills anywhere, the others at random moments
                    // after the rollback was recorded as started (its walks).
                    let (mark, delay) = if i % 4 == 0 {
                        (None, rng.below(rollback_time))
                    } else {
                        let walk_time = rollback_time.saturating_sub(rollback_marked);
                        (Some(ROLLING_BACK), rng.below(walk_time))
                    };
                    let (at, converged) = rollback_killed(template, mark, delay, want);
                    note(landed, format!("rollback: {at}"), i, converged);
                }
            });
        }
    });
    let landed = landed.into_inner().unwrap();
    println!(
        "{kills} kills of apply and {kills} of rollback landed: {} ({:.1}s)",
        landed
            .iter()
            .map(|(k, v)| format!("{k} {}", v.len()))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    let mut failures = Vec::new();
    for command in ["apply", "rollback"] {
        let (mut runs, mut converged) = (0, 0);
        for (at, results) in landed.iter().filter(|(k, _)| k.starts_with(command)) {
            runs += results.len();
            for (i, r) in results {
                match r {
                    Ok(()) => converged += 1,
                    Err(e) => failures.push(format!("{at} kill {i}: {e}")),
                }
            }
        }
        println!("{command}: {converged} of {runs} killed runs converged");
    }
    assert!(
        failures.is_empty(),
        "did not converge:\n{}",
        failures.join("\n")
    );
    for phase in [
        "apply: accounts",
        "apply: migrating",
        "rollback: rolling_back",
    ] {
        assert!(
            landed
                .iter()
                .any(|(at, r)| at.starts_with(phase) && !r.is_empty()),
            "no kill landed in {phase}: {landed:?}"
        );
    }
}

/// The half-states shadow's tools leave when killed between their writes, made by hand:
/// apply finishes them (through shadow's tools), says so, and pwck/grpck pass again.
#[test]
fn half_made_accounts_of_an_interrupted_run_are_repaired() {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 1, 1);
    expect_code(&h.run(APPLY), 0);
    let drop_line = |f: &str, prefix: &str| {
        let t = std::fs::read_to_string(h.root().join(f)).unwrap();
        let kept: String = t
            .lines()
            .filter(|l| !l.starts_with(prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(h.root().join(f), kept).unwrap();
    };
    drop_line("etc/gshadow", "stk-app:");
    drop_line("etc/shadow", "stk-app:");
    std::fs::remove_dir_all(h.root().join("var/lib/isolate/home/stk-app")).unwrap();
    assert!(shadow_checks(h.root()).is_err());

    let out = h.run(APPLY);
    expect_code(&out, 0);
    let r = h.root().display().to_string();
    assert_eq!(
        text(&out.stdout),
        format!(
            "repaired (left by an interrupted run): {r}/etc/group:4: group `stk-app` has no line in gshadow\n\
             repaired (left by an interrupted run): {r}/etc/passwd:3: user `stk-app` has no line in shadow\n\
             repaired (left by an interrupted run): {r}/etc/passwd:3: the home directory /var/lib/isolate/home/stk-app of `stk-app` does not exist\n\
             nothing to do: the host matches the policy\n"
        )
    );
    shadow_checks(h.root()).unwrap();
    let shadow = std::fs::read_to_string(h.root().join("etc/shadow")).unwrap();
    assert!(
        shadow
            .lines()
            .any(|l| l.starts_with("stk-app:!:") && l.ends_with("::::::")),
        "{shadow}"
    );
    let gshadow = std::fs::read_to_string(h.root().join("etc/gshadow")).unwrap();
    assert!(gshadow.lines().any(|l| l == "stk-app:!::"), "{gshadow}");
    use std::os::unix::fs::MetadataExt;
    let home = std::fs::metadata(h.root().join("var/lib/isolate/home/stk-app")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (70_000, 70_000, 0o700)
    );
    assert_eq!(
        text(&h.run(APPLY).stdout),
        "nothing to do: the host matches the policy\n"
    );
}

/// A duplicate of isolate's own user is nothing a killed run leaves: refused, nothing changed.
#[test]
fn a_duplicate_own_user_is_refused_by_file_and_line() {
    let h = Host::new();
    h.policy(APP_POLICY);
    h.legacy_data("srv/app", 1, 1);
    expect_code(&h.run(APPLY), 0);
    let mut passwd = std::fs::read(h.root().join("etc/passwd")).unwrap();
    passwd.extend_from_slice(b"stk-app:x:805:805::/:/usr/sbin/nologin\n");
    h.write("etc/passwd", &passwd);
    let before = h.snapshot();
    let out = h.run(APPLY);
    expect_code(&out, 2);
    assert_eq!(
        text(&out.stderr),
        format!(
            "isolate: {}/etc/passwd:4: `stk-app` again (first on line 3): an interrupted isolate run does not leave this, so isolate does not repair it; fix it (pwck -R / grpck -R show it) and run again\n",
            h.root().display()
        )
    );
    assert_eq!(h.snapshot(), before);
}
