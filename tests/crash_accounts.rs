//! kill -9 (the whole process group, as a stopped unit or a lost terminal does: shadow's
//! tools die with isolate) at random moments of `apply` (account creation and migration)
//! and of `rollback`, against temporary roots. After every kill one re-run converges, a
//! second one has nothing to do, shadow's `pwck -r` and `grpck -r` pass, and the data ends
//! exactly as after an uninterrupted run. Prints where the kills landed; fails if a phase got
//! none.
mod hardening_common;
use hardening_common::{expect_code, shadow_checks, text, Host, APP_POLICY};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

const KILLS: usize = 50;

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
const NOTHING_TO_ROLL_BACK: &str = "isolate: stack `app` has no migration to roll back\n";

/// What every run must end in.
struct Expected {
    applied_data: Snapshot,
    applied_etc: Vec<Vec<u8>>,
    original_data: Snapshot,
}

type Snapshot = std::collections::BTreeMap<std::path::PathBuf, (String, u32, u32, u32, Vec<u8>)>;

/// One apply killed after `delay`, then re-run to the end; returns where the kill landed.
fn apply_killed(
    template: &Host,
    mark: Option<&str>,
    delay: Duration,
    want: &Expected,
    i: usize,
) -> &'static str {
    let h = Host::copy_of(template);
    kill_after(&h, APPLY, mark, delay);
    let at = phase(&h);
    let again = h.run(APPLY);
    expect_code(&again, 0);
    let third = h.run(APPLY);
    assert_eq!(
        text(&third.stdout),
        "nothing to do: the host matches the policy\n",
        "apply kill {i} ({at}): {}",
        text(&third.stderr)
    );
    shadow_checks(h.root()).unwrap_or_else(|e| panic!("apply kill {i} ({at}): {e}"));
    assert!(
        h.snapshot_under("srv/app") == want.applied_data,
        "apply kill {i} ({at}): data differs"
    );
    assert_eq!(etc(&h), want.applied_etc, "apply kill {i} ({at})");
    at
}

/// One rollback killed after `delay`, then re-run to the end; returns where the kill landed.
fn rollback_killed(template: &Host, delay: Duration, want: &Expected, i: usize) -> &'static str {
    // Applied here, not copied from an applied host: rollback recognises files (and the data
    // directory) by identity, which a copy does not keep.
    let h = Host::copy_of(template);
    expect_code(&h.run(APPLY), 0);
    kill_after(&h, ROLLBACK, None, delay);
    let at = match phase(&h) {
        "done" => "rollback not started",
        "rolling_back" => "rolling_back",
        "rolled_back" => "rollback recorded",
        other => panic!("rollback kill {i}: phase {other}"),
    };
    if at != "rollback recorded" {
        expect_code(&h.run(ROLLBACK), 0);
    }
    let last = h.run(ROLLBACK);
    assert_eq!(
        text(&last.stderr),
        NOTHING_TO_ROLL_BACK,
        "rollback kill {i} ({at})"
    );
    shadow_checks(h.root()).unwrap_or_else(|e| panic!("rollback kill {i} ({at}): {e}"));
    assert!(
        h.snapshot_under("srv/app") == want.original_data,
        "rollback kill {i} ({at}): data differs"
    );
    at
}

#[test]
fn kill_9_anywhere_in_apply_or_rollback_then_rerun_converges() {
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let seed = seed();
    let started = Instant::now();

    let template = Host::new();
    template.policy(APP_POLICY);
    template.legacy_data("srv/app", 10, 50);

    // The uninterrupted runs: their results, and when the migration starts.
    let reference = Host::copy_of(&template);
    let (accounts_time, apply_time) = timed(&reference, APPLY, MIGRATING);
    shadow_checks(reference.root()).unwrap();
    let applied_data = reference.snapshot_under("srv/app");
    let applied_etc = etc(&reference);
    let (_, rollback_time) = timed(&reference, ROLLBACK, "\"rolling_back\"");
    let want = Expected {
        applied_data,
        applied_etc,
        original_data: template.snapshot_under("srv/app"),
    };
    assert!(reference.snapshot_under("srv/app") == want.original_data);
    println!(
        "seed {seed}: apply {apply_time:?} (migration from {accounts_time:?}), rollback {rollback_time:?}"
    );

    // Half the apply kills at random moments of the account phase, half at random moments
    // after the migration was recorded as started; two workers, each with its own random
    // sequence.
    let landed = std::sync::Mutex::new(BTreeMap::<String, usize>::new());
    std::thread::scope(|s| {
        for worker in 0..2u64 {
            let (template, want, landed) = (&template, &want, &landed);
            s.spawn(move || {
                let mut rng =
                    Rng(seed.wrapping_add(worker.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                for i in (worker as usize..KILLS).step_by(2) {
                    let (mark, delay) = if i % 4 < 2 {
                        (None, rng.below(accounts_time))
                    } else {
                        let migration_time = apply_time.saturating_sub(accounts_time);
                        (Some(MIGRATING), rng.below(migration_time))
                    };
                    let at = apply_killed(template, mark, delay, want, i);
                    *landed
                        .lock()
                        .unwrap()
                        .entry(format!("apply: {at}"))
                        .or_default() += 1;
                    let delay = rng.below(rollback_time);
                    let at = rollback_killed(template, delay, want, i);
                    *landed
                        .lock()
                        .unwrap()
                        .entry(format!("rollback: {at}"))
                        .or_default() += 1;
                }
            });
        }
    });
    let landed = landed.into_inner().unwrap();
    println!(
        "{KILLS} kills of apply and {KILLS} of rollback landed: {} ({:.1}s)",
        landed
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    for phase in [
        "apply: accounts",
        "apply: migrating",
        "rollback: rolling_back",
    ] {
        assert!(
            landed.get(phase).copied().unwrap_or(0) > 0,
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
