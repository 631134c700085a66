//! apply() with recording fakes: a failing stack stops only its own steps, and a migration
//! is recorded as started before the walker runs and as done only after it returns.
use super::*;
use crate::host::accounts::fake::RecordingAccounts;
use crate::host::podman::fake::{FakePodman, PodmanCall};
use crate::host::session::FakeSession;
use crate::host::systemd::fake::SystemdCall;
use std::sync::Mutex;

/// The session's recording fakes; the `_ping` of `fail_uid`'s socket is refused.
fn fake_manager(fail_uid: Option<u32>) -> FakeSession {
    FakeSession {
        podman: FakePodman {
            fail: fail_uid
                .into_iter()
                .map(|uid| {
                    (
                        PodmanCall::Ping(uid),
                        format!(
                            "GET /_ping on /run/user/{uid}/podman/podman.sock: connection refused"
                        ),
                    )
                })
                .collect(),
            ..FakePodman::default()
        },
        ..FakeSession::default()
    }
}

/// The steps the session was asked for: `linger UID`, `socket UID`.
fn manager_calls(mgr: &FakeSession) -> Vec<String> {
    mgr.systemd
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter_map(|c| match c {
            SystemdCall::EnableLinger(uid) => Some(format!("linger {uid}")),
            SystemdCall::EnableAndStart { uid, .. } => Some(format!("socket {uid}")),
            _ => None,
        })
        .collect()
}

/// Records the phase the state file showed when the walker was called.
struct FakeMigrator {
    root: Root,
    seen: Mutex<Vec<Option<MigrationPhase>>>,
    fail: bool,
    /// Returns a summary that says the walk is not done (an entry raced).
    unfinished: bool,
    /// The kernel these tests' checks read (their temp dirs are real).
    sys: crate::walk::sys::RealSys,
}

fn unfinished_summary() -> Summary {
    Summary {
        inodes: 2,
        changed: 1,
        skipped_raced: 1,
        raced_samples: vec!["x".into()],
        ..Summary::default()
    }
}

impl Migrator for FakeMigrator {
    fn walk_sys(&self) -> &dyn crate::walk::sys::WalkSys {
        &self.sys
    }
    fn migrate(
        &self,
        path: &Path,
        _spec: &MigrationSpec,
        journal: &Path,
        _progress: crate::walk::Progress,
    ) -> Result<Summary> {
        let st = State::read(&self.root).unwrap();
        self.seen
            .lock()
            .unwrap()
            .push(st.migration("a", Path::new("/srv/a")).map(|m| m.phase));
        assert!(journal.starts_with(&self.root));
        assert!(path.ends_with("srv/a"));
        if self.fail {
            return Err(Error::Failed("injected".into()));
        }
        if self.unfinished {
            return Ok(unfinished_summary());
        }
        Ok(Summary {
            inodes: 1,
            changed: 1,
            ..Summary::default()
        })
    }
    fn rollback(
        &self,
        _: &Path,
        _: &MigrationSpec,
        _: &Path,
        _: crate::walk::Progress,
    ) -> Result<Summary> {
        let st = State::read(&self.root).unwrap();
        self.seen
            .lock()
            .unwrap()
            .push(st.migration("a", Path::new("/srv/a")).map(|m| m.phase));
        if self.unfinished {
            return Ok(unfinished_summary());
        }
        Ok(Summary::default())
    }
    fn create_data_dir(&self, _: &Path, _: u32, _: u32) -> Result<()> {
        Ok(())
    }
}

fn maps(root: u32, start: u32) -> crate::ids::IdMaps {
    let m = crate::ids::Mapping::new(
        root,
        vec![crate::ids::SubidRange::new(start, 65536).unwrap()],
    );
    crate::ids::IdMaps {
        uid: m.clone(),
        gid: m,
    }
}

fn steps() -> Vec<Step> {
    let range = crate::ids::SubidRange::new(200000, 65536).unwrap();
    vec![
        Step::RecordAllocation {
            stack: "a".into(),
            user: "stk-a".into(),
            uid: 800,
            gid: 800,
            subids: range,
        },
        Step::StartPodmanSocket {
            stack: "a".into(),
            user: "stk-a".into(),
            uid: 800,
            socket: "/s".into(),
        },
        Step::Migrate {
            stack: "a".into(),
            path: "/srv/a".into(),
            mode: MigrateMode::Shift,
            shift: Shift {
                from: maps(1000, 100000),
                to: maps(800, 200000),
            },
            target_uid: 800,
            target_gid: 800,
            resume: false,
            survey: Default::default(),
            outside_links: Default::default(),
        },
        Step::EnableLinger {
            stack: "b".into(),
            user: "stk-b".into(),
            uid: 801,
        },
    ]
}

#[test]
fn a_failed_stack_skips_its_own_later_steps_only() {
    let t = tempfile::tempdir().unwrap();
    let d = Root::new(t.path());
    let acc = RecordingAccounts::default();
    let mgr = fake_manager(Some(800));
    let mig = FakeMigrator {
        root: d.clone(),
        seen: Mutex::new(vec![]),
        fail: false,
        unfinished: false,
        sys: Default::default(),
    };
    let b = Backends {
        accounts: &acc,
        session: Some(mgr.session()),
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        compose: None,
        migrator: &mig,
    };
    let r = apply(
        &d,
        &Plan {
            steps: steps(),
            notes: vec![],
            ..Plan::default()
        },
        &b,
        false,
    )
    .unwrap();
    let outcomes: Vec<&Outcome> = r.steps.iter().map(|s| &s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            &Outcome::Done,
            &Outcome::Failed {
                error: "GET /_ping on /run/user/800/podman/podman.sock: connection refused".into()
            },
            &Outcome::Skipped,
            &Outcome::Done
        ]
    );
    assert_eq!(manager_calls(&mgr), ["socket 800", "linger 801"]);
    assert!(mig.seen.lock().unwrap().is_empty());
}

#[test]
fn a_migration_is_recorded_before_the_walk_and_done_only_after() {
    let t = tempfile::tempdir().unwrap();
    let d = Root::new(t.path());
    let acc = RecordingAccounts::default();
    let mgr = fake_manager(None);
    let mig = FakeMigrator {
        root: d.clone(),
        seen: Mutex::new(vec![]),
        fail: true,
        unfinished: false,
        sys: Default::default(),
    };
    let b = Backends {
        accounts: &acc,
        session: Some(mgr.session()),
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        compose: None,
        migrator: &mig,
    };
    let r = apply(
        &d,
        &Plan {
            steps: steps(),
            notes: vec![],
            ..Plan::default()
        },
        &b,
        false,
    )
    .unwrap();
    assert_eq!(r.failures().len(), 1);
    assert_eq!(*mig.seen.lock().unwrap(), [Some(MigrationPhase::Migrating)]);
    // The crash-equivalent: the state still says "migrating", so the next plan resumes.
    let st = State::read(&d).unwrap();
    assert_eq!(
        st.migration("a", Path::new("/srv/a")).unwrap().phase,
        MigrationPhase::Migrating
    );

    let ok = FakeMigrator {
        root: d.clone(),
        seen: Mutex::new(vec![]),
        fail: false,
        unfinished: false,
        sys: Default::default(),
    };
    let b = Backends {
        accounts: &acc,
        session: Some(mgr.session()),
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        compose: None,
        migrator: &ok,
    };
    let r = apply(
        &d,
        &Plan {
            steps: steps()[2..3].to_vec(),
            notes: vec![],
            ..Plan::default()
        },
        &b,
        false,
    )
    .unwrap();
    assert!(r.failures().is_empty());
    let st = State::read(&d).unwrap();
    assert_eq!(
        st.migration("a", Path::new("/srv/a")).unwrap().phase,
        MigrationPhase::Done
    );
    assert_eq!(st.stacks["a"].migrations.len(), 1);

    rollback(&d, "a", &ok, false).unwrap();
    assert_eq!(
        ok.seen.lock().unwrap().last().unwrap(),
        &Some(MigrationPhase::RollingBack)
    );
    let st = State::read(&d).unwrap();
    assert_eq!(
        st.migration("a", Path::new("/srv/a")).unwrap().phase,
        MigrationPhase::RolledBack
    );
}

#[test]
fn a_second_recording_of_the_same_allocation_is_already_present() {
    let t = tempfile::tempdir().unwrap();
    let d = Root::new(t.path());
    let acc = RecordingAccounts::default();
    let mig = FakeMigrator {
        root: d.clone(),
        seen: Mutex::new(vec![]),
        fail: false,
        unfinished: false,
        sys: Default::default(),
    };
    let b = Backends {
        accounts: &acc,
        session: None,
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        compose: None,
        migrator: &mig,
    };
    let p = Plan {
        steps: steps()[..1].to_vec(),
        notes: vec![],
        ..Plan::default()
    };
    apply(&d, &p, &b, false).unwrap();
    let r = apply(&d, &p, &b, false).unwrap();
    assert_eq!(r.steps[0].outcome, Outcome::AlreadyPresent);
}

#[test]
fn a_migration_that_is_not_done_fails_its_step_and_stays_migrating() {
    let t = tempfile::tempdir().unwrap();
    let d = Root::new(t.path());
    let acc = RecordingAccounts::default();
    let mgr = fake_manager(None);
    let mig = FakeMigrator {
        root: d.clone(),
        seen: Mutex::new(vec![]),
        fail: false,
        unfinished: true,
        sys: Default::default(),
    };
    let b = Backends {
        accounts: &acc,
        session: Some(mgr.session()),
        walk_sys: &crate::walk::sys::RecordingSys::new(),
        acl_probe: &crate::isolation::fs::RealAclProbe,
        compose: None,
        migrator: &mig,
    };
    let plan = Plan {
        steps: steps(),
        ..Plan::default()
    };
    let r = apply(&d, &plan, &b, false).unwrap();
    let failures = r.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].outcome,
        Outcome::Failed {
            error: "migration of /srv/a is not done: 1 entries changed under the walk and \
                    were not touched: x"
                .into()
        }
    );
    assert!(
        failures[0].summary.is_some(),
        "the summary is still reported"
    );
    // The stack's later steps wait; the state says `migrating`, so the next apply walks again.
    let migrate_at = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Migrate { .. }))
        .unwrap();
    assert!(r.steps[migrate_at + 1..]
        .iter()
        .filter(|s| s.step.stack() == Some("a"))
        .all(|s| s.outcome == Outcome::Skipped));
    let st = State::read(&d).unwrap();
    assert_eq!(
        st.migration("a", Path::new("/srv/a")).unwrap().phase,
        MigrationPhase::Migrating
    );
    // A rollback that is not done fails and stays `rolling_back`.
    let err = rollback(&d, "a", &mig, false).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let st = State::read(&d).unwrap();
    assert_eq!(
        st.migration("a", Path::new("/srv/a")).unwrap().phase,
        MigrationPhase::RollingBack
    );
}
