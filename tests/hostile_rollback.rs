//! Hostile data against rollback (root-run, temp trees on ext4): a stack that rewrote a
//! reowned setuid or capability file must not get it back as root's (and the rollback says
//! so until the bits are back), a journal record must not be applied to a later file that
//! reused the inode number, and a rollback stopped after any of its own changes is finished
//! exactly by the next one (setuid/setgid bits and capabilities included).
mod walk_common;

use isolate::migration::MigrateMode;
use isolate::walk::sys::{RealSys, Stat, WalkSys};
use isolate::walk::{self, Progress, Summary};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::ffi::CStr;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use walk_common::*;

fn migrate(fx: &Fixture, mode: MigrateMode) -> Summary {
    walk::migrate(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap()
}

fn rollback(fx: &Fixture, mode: MigrateMode) -> Summary {
    walk::rollback(
        &RealSys::new(),
        &fx.data,
        &spec(mode),
        &fx.tmp.path().join("j"),
        &Progress::off(),
    )
    .unwrap()
}

fn setuid_root_binary(path: &Path) {
    std::fs::copy("/bin/true", path).unwrap();
    chown(path, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o4755)).unwrap();
}

/// Every root-owned file under `root` that is setuid/setgid or has a capability, with
/// its content hash: after a rollback these must be exactly the ones there before.
fn privileged_root_files(root: &Path) -> String {
    sh(&format!(
        "cd '{}' && {{ find -P . -type f -uid 0 -perm /6000 -exec sha256sum {{}} + ; \
         getcap -r . | cut -d' ' -f1 | xargs -r sha256sum; }} | LC_ALL=C sort",
        root.display()
    ))
}

#[test]
fn rollback_never_gives_root_privileges_to_content_the_stack_changed() {
    for mode in [MigrateMode::Reown, MigrateMode::Auto] {
        let fx = fixture();
        dir_owned(&fx.data, 100_998);
        // Foreign data (from Docker): root-owned setuid and capability binaries.
        setuid_root_binary(&fx.data.join("su-untouched"));
        setuid_root_binary(&fx.data.join("su-rewritten"));
        std::fs::copy("/bin/true", fx.data.join("cap-rewritten")).unwrap();
        sh(&format!(
            "setcap cap_net_raw+ep '{}'",
            fx.data.join("cap-rewritten").display()
        ));
        let before = privileged_root_files(&fx.data);
        let outside_before = listing(&fx.outside);
        let s = migrate(&fx, mode);
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(
            owner(&fx.data.join("su-rewritten")),
            (STACK_ROOT, STACK_ROOT)
        );
        assert_eq!(mode_of(&fx.data.join("su-rewritten")), 0o4755);
        // The stack's container (its root owns the files now) rewrites them and sets the
        // bits and the capability again, as an attacker would.
        for name in ["su-rewritten", "cap-rewritten"] {
            let p = fx.data.join(name);
            std::fs::write(&p, b"#!/bin/sh\nid -u\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
        }
        sh(&format!(
            "setcap cap_net_raw+ep '{}'",
            fx.data.join("cap-rewritten").display()
        ));
        let back = rollback(&fx, mode);
        eprintln!("{mode:?}: withheld {:?}", back.privilege_withheld);
        // Owners come back; privileges only for the untouched file.
        assert_eq!(owner(&fx.data.join("su-rewritten")), (0, 0));
        assert_eq!(mode_of(&fx.data.join("su-rewritten")), 0o755);
        assert_eq!(owner(&fx.data.join("cap-rewritten")), (0, 0));
        assert_eq!(
            sh(&format!(
                "getcap '{}'",
                fx.data.join("cap-rewritten").display()
            )),
            ""
        );
        assert_eq!(owner(&fx.data.join("su-untouched")), (0, 0));
        assert_eq!(mode_of(&fx.data.join("su-untouched")), 0o4755);
        let mut withheld = back.privilege_withheld.samples.clone();
        withheld.sort();
        assert_eq!(
            withheld,
            vec![
                std::path::PathBuf::from("cap-rewritten"),
                std::path::PathBuf::from("su-rewritten")
            ]
        );
        // No root-owned privileged file with changed content exists.
        let after = privileged_root_files(&fx.data);
        for line in after.lines() {
            assert!(before.contains(line), "a new privileged root file: {line}");
        }
        assert_same(&listing(&fx.outside), &outside_before);
        // Withheld is not done: listed, and listed again by a re-run.
        let said = back.problems().join("; ");
        assert!(
            said.contains("2 file(s) did not get their setuid/setgid bits or capability back")
                && said.contains("su-rewritten"),
            "{said}"
        );
        let again = rollback(&fx, mode);
        assert_eq!(again.privilege_withheld.count, 2, "{again:?}");
        // The administrator trusts one and gives its bits back by hand; drops the other.
        std::fs::set_permissions(
            fx.data.join("su-rewritten"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::remove_file(fx.data.join("cap-rewritten")).unwrap();
        let last = rollback(&fx, mode);
        assert!(last.problems().is_empty(), "{:?}", last.problems());
        assert_eq!(mode_of(&fx.data.join("su-rewritten")), 0o4755);
    }
}

/// The real kernel, until `budget` changes (chown, chmod, xattr writes) were made: every
/// later change fails, as if the process had been killed right after the last one. With
/// `reads_too`, every read fails from then on as well: killed before it could even stat the
/// inode to journal its change.
struct StopsAfter {
    inner: RealSys,
    budget: usize,
    reads_too: bool,
    made: AtomicUsize,
}

impl StopsAfter {
    fn new(budget: usize, reads_too: bool) -> StopsAfter {
        StopsAfter {
            inner: RealSys::new(),
            budget,
            reads_too,
            made: AtomicUsize::new(0),
        }
    }

    fn change(&self, f: impl FnOnce() -> Result<(), Errno>) -> Result<(), Errno> {
        if self.made.fetch_add(1, Ordering::SeqCst) >= self.budget {
            return Err(Errno::IO);
        }
        f()
    }

    fn read<T>(&self, f: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
        if self.reads_too && self.made.load(Ordering::SeqCst) >= self.budget {
            return Err(Errno::IO);
        }
        f()
    }
}

impl WalkSys for StopsAfter {
    fn open_root(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.read(|| self.inner.open_root(path))
    }
    fn open_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.read(|| self.inner.open_dir(dir, name))
    }
    fn open_subdir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.read(|| self.inner.open_subdir(dir, name))
    }
    fn fs_type(&self, fd: BorrowedFd<'_>) -> Result<i64, Errno> {
        self.read(|| self.inner.fs_type(fd))
    }
    fn devices_open(&self, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
        self.read(|| self.inner.devices_open(fd))
    }
    fn read_dir(
        &self,
        dir: BorrowedFd<'_>,
        each: &mut dyn FnMut(&CStr, FileType),
    ) -> Result<(), Errno> {
        self.read(|| self.inner.read_dir(dir, each))
    }
    fn stat(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
        self.read(|| self.inner.stat(dir, name))
    }
    fn pin(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.read(|| self.inner.pin(dir, name))
    }
    fn mkdir(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        self.change(|| self.inner.mkdir(dir, name, perm))
    }
    fn list_xattrs(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
        self.read(|| self.inner.list_xattrs(dir, name))
    }
    fn get_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
    ) -> Result<Option<Vec<u8>>, Errno> {
        self.read(|| self.inner.get_xattr(dir, name, attr))
    }
    fn set_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
        value: &[u8],
    ) -> Result<(), Errno> {
        self.change(|| self.inner.set_xattr(dir, name, attr, value))
    }
    fn chown(&self, dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> Result<(), Errno> {
        self.change(|| self.inner.chown(dir, name, uid, gid))
    }
    fn chmod(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        self.change(|| self.inner.chmod(dir, name, perm))
    }
}

/// Legacy data with every kind of privilege a rollback must give back: a root 4755 file
/// and a root file with a capability (reowned by `auto`, journalled), a legacy 6755 file
/// (shifted; chown drops its bits), a setgid directory, and plain files.
fn privileged_tree(fx: &Fixture) {
    dir_owned(&fx.data, 100_998);
    setuid_root_binary(&fx.data.join("root-suid"));
    std::fs::copy("/bin/true", fx.data.join("root-cap")).unwrap();
    sh(&format!(
        "setcap cap_net_raw+ep '{}'",
        fx.data.join("root-cap").display()
    ));
    let q = fx.data.display();
    sh(&format!(
        "cd '{q}' && mkdir sgid && echo x >sgid/inside && cp /bin/true legacy-suid \
         && for i in 1 2 3 4 5; do echo $i >plain$i; done \
         && chown 100000:100005 sgid legacy-suid && chown 100001:100005 sgid/inside plain* \
         && chmod 2775 sgid && chmod 6755 legacy-suid"
    ));
}

#[test]
fn a_rollback_stopped_after_any_of_its_changes_is_finished_exactly_by_the_next() {
    let mode = MigrateMode::Auto;
    // The uninterrupted result, and how many changes the rollback makes.
    let reference = fixture();
    privileged_tree(&reference);
    let original = listing(&reference.data);
    migrate(&reference, mode);
    let counting = StopsAfter::new(usize::MAX, false);
    let journal = reference.tmp.path().join("j");
    let whole = walk::rollback(
        &counting,
        &reference.data,
        &spec(mode),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    assert!(whole.problems().is_empty(), "{:?}", whole.problems());
    assert_eq!(listing(&reference.data), original);
    let changes = counting.made.load(Ordering::SeqCst);
    assert!(
        changes > 10,
        "only {changes} changes: the test proves little"
    );

    let mut diverged = Vec::new();
    for reads_too in [false, true] {
        for budget in 0..changes {
            let fx = fixture();
            privileged_tree(&fx);
            migrate(&fx, mode);
            let journal = fx.tmp.path().join("j");
            let stopped = StopsAfter::new(budget, reads_too);
            // Stopped: an error, or a summary that is not done; either way not finished.
            let _ = walk::rollback(&stopped, &fx.data, &spec(mode), &journal, &Progress::off());
            let again = rollback(&fx, mode);
            let now = listing(&fx.data);
            if again.problems().is_empty() && now == original {
                continue;
            }
            // Stopped between a change and its journal line too (reads stop with it): the
            // intent line written before the change proves the file the next run finds.
            diverged.push(format!(
                "stopped after {budget} of {changes} changes (reads too: {reads_too}): {:?}\n{}",
                again.problems(),
                diff_lines(&now, &original)
            ));
        }
    }
    eprintln!(
        "{} of {} stopped rollbacks converged",
        2 * changes - diverged.len(),
        2 * changes
    );
    assert!(diverged.is_empty(), "{}", diverged.join("\n"));
}

/// The other side of the intent line: a rollback stopped right after one of its chowns
/// back to the original owner, then the file written through a descriptor the stack had
/// open since before: the next rollback must not give that file its bits back.
#[test]
fn a_file_written_after_a_stopped_rollback_chown_does_not_get_its_bits_back() {
    let mode = MigrateMode::Auto;
    let privileged = ["root-suid", "root-cap", "legacy-suid"];
    let bits = |path: &Path| {
        mode_of(path) & 0o6000 != 0 || !sh(&format!("getcap '{}'", path.display())).is_empty()
    };
    let mut in_window = 0;
    for budget in 0..14 {
        let fx = fixture();
        privileged_tree(&fx);
        migrate(&fx, mode);
        let held: Vec<std::fs::File> = privileged
            .iter()
            .map(|n| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(fx.data.join(n))
            })
            .collect::<Result<_, _>>()
            .unwrap();
        let stopped = StopsAfter::new(budget, true);
        let journal = fx.tmp.path().join("j");
        let _ = walk::rollback(&stopped, &fx.data, &spec(mode), &journal, &Progress::off());
        let lacking: Vec<&str> = privileged
            .iter()
            .copied()
            .filter(|n| !bits(&fx.data.join(n)))
            .collect();
        in_window += lacking
            .iter()
            .filter(|n| {
                let uid = owner(&fx.data.join(n)).0;
                uid != STACK_ROOT && !(200_000..265_536).contains(&uid)
            })
            .count();
        // Overwritten in place: same size, same link count, only mtime (and ctime) move.
        for f in held {
            std::os::unix::fs::FileExt::write_all_at(&f, b"#!", 0).unwrap();
        }
        rollback(&fx, mode);
        for name in lacking {
            assert!(
                !bits(&fx.data.join(name)),
                "stopped after {budget} changes: {name} was written, yet got its bits back"
            );
        }
    }
    eprintln!("{in_window} stops between a chown back and the bits");
    assert!(
        in_window > 0,
        "no stop landed between a chown back and its bits"
    );
}

/// The lines of `got` not in `want`, and the other way round.
fn diff_lines(got: &str, want: &str) -> String {
    let extra: Vec<&str> = got.lines().filter(|l| !want.contains(l)).collect();
    let missing: Vec<&str> = want.lines().filter(|l| !got.contains(l)).collect();
    format!("got {extra:?}, want {missing:?}")
}

/// Where the parent test's child body works (set only for the child process).
const CHILD_DIR: &str = "ISOLATE_HOSTILE_ROLLBACK_DIR";

#[test]
fn a_journal_record_applies_only_to_the_file_it_was_written_for() {
    // On a filesystem of its own: on the shared one, any file another test or process
    // creates meanwhile may take the freed inode number first, and the test proves nothing.
    let fx = fixture();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "reused_inode_number_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, fx.tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "a child process body: its parent test runs it with --ignored --exact"]
fn reused_inode_number_child() {
    let base = std::path::PathBuf::from(std::env::var(CHILD_DIR).expect("run by its parent"));
    let fs = base.join("fs");
    sh(&format!(
        "truncate -s 16M '{i}' && mkfs.ext4 -q '{i}' && mkdir '{f}' && mount -o loop '{i}' '{f}'",
        i = base.join("ext4.img").display(),
        f = fs.display()
    ));
    let data = fs.join("data");
    let journal = base.join("j");
    let mode = MigrateMode::Reown;
    let outside_before = listing(&base.join("outside"));
    dir_owned(&data, 100_998);
    let secret = data.join("secret");
    std::fs::write(&secret, b"root's").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ino = std::fs::metadata(&secret).unwrap().ino();
    walk::migrate(
        &RealSys::new(),
        &data,
        &spec(mode),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    // The stack deletes it and creates a file, which gets the same inode number (ext4 hands
    // the lowest free number out again at once, and nothing else creates files here).
    std::fs::remove_file(&secret).unwrap();
    sh("sync");
    let candidate = data.join("new");
    std::fs::write(&candidate, b"the stack's").unwrap();
    chown(&candidate, Some(200_000), Some(200_000)).unwrap();
    assert_eq!(
        std::fs::metadata(&candidate).unwrap().ino(),
        ino,
        "the inode number was not reused: the test proves nothing"
    );
    std::fs::rename(&candidate, &secret).unwrap();
    let back = walk::rollback(
        &RealSys::new(),
        &data,
        &spec(mode),
        &journal,
        &Progress::off(),
    )
    .unwrap();
    // The new file is not the journalled one: it is only shifted back, never made root's.
    assert_eq!(owner(&secret), (100_000, 100_000));
    assert_eq!(back.journal_missing, 1, "{back:?}");
    assert_same(&listing(&base.join("outside")), &outside_before);
    sh(&format!("umount '{}'", fs.display()));
    println!("CHILD-OK");
}

fn dir_owned(path: &Path, id: u32) {
    std::fs::create_dir_all(path).unwrap();
    chown(path, Some(id), Some(id)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}
