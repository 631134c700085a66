//! The recording fake of [`WalkSys`]: the real kernel with a log of the mutating calls,
//! failures injected by entry name and a fake filesystem type, for tests.
use super::{RealSys, Stat, WalkSys};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::Mutex;

/// Which mutating call a [`RecordingSys`] saw or should fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Chown,
    Chmod,
    SetXattr,
}

/// One mutating call as a [`RecordingSys`] recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub name: String,
    pub detail: String,
}

/// A failure to inject: (call, entry name, the detail it must carry if any, errno).
type Injected = (Op, String, Option<String>, Errno);

/// The real kernel with a log of mutating calls, failures injected by entry name, and an
/// optional fake filesystem type (to test the NFS/FUSE refusals without mounting one).
pub struct RecordingSys {
    inner: RealSys,
    pub calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<Injected>>,
    fake_fs_type: Option<i64>,
    /// Entry name of each pinned descriptor (by fd number), so calls through a pin are
    /// recorded and failed by the name of what was pinned.
    pins: Mutex<std::collections::HashMap<i32, String>>,
    /// Descriptors pinned so far (each is closed again: one pin, one close).
    pinned: std::sync::atomic::AtomicU64,
    /// Regular files opened for a change (`open_file`; not counted as pins).
    opened: std::sync::atomic::AtomicU64,
    /// Runs just before each entry is pinned or opened: tests swap the entry here.
    #[allow(clippy::type_complexity)]
    before_pin: Option<Box<dyn Fn(BorrowedFd<'_>, &CStr) + Send + Sync>>,
    /// Runs right after each chown that succeeded, with the entry's name (tests stop the
    /// process there).
    #[allow(clippy::type_complexity)]
    after_chown: Option<Box<dyn Fn(&CStr) + Send + Sync>>,
}

impl Default for RecordingSys {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSys {
    pub fn new() -> Self {
        RecordingSys {
            inner: RealSys::new(),
            calls: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            fake_fs_type: None,
            pins: Mutex::new(std::collections::HashMap::new()),
            pinned: Default::default(),
            opened: Default::default(),
            before_pin: None,
            after_chown: None,
        }
    }

    /// Runs `hook(dir, name)` just before every pin (the moment between plan and change).
    pub fn before_pin(
        mut self,
        hook: impl Fn(BorrowedFd<'_>, &CStr) + Send + Sync + 'static,
    ) -> Self {
        self.before_pin = Some(Box::new(hook));
        self
    }

    /// Runs `hook(name)` right after every chown that succeeded.
    pub fn after_chown(mut self, hook: impl Fn(&CStr) + Send + Sync + 'static) -> Self {
        self.after_chown = Some(Box::new(hook));
        self
    }

    /// The entry name a call names: its own, or for a pinned fd what was pinned.
    fn name_of(&self, dir: BorrowedFd<'_>, name: &CStr) -> CString {
        if !name.is_empty() {
            return name.to_owned();
        }
        let pins = self.pins.lock().unwrap();
        let pinned = pins.get(&dir.as_raw_fd()).cloned().unwrap_or_default();
        CString::new(pinned).expect("names have no NUL")
    }

    /// Reports `fs_type` as statfs f_type for every path.
    pub fn with_fs_type(mut self, fs_type: i64) -> Self {
        self.fake_fs_type = Some(fs_type);
        self
    }

    /// Makes `op` on an entry called `name` fail with `errno` (every time).
    pub fn fail(self, op: Op, name: &str, errno: Errno) -> Self {
        self.failures
            .lock()
            .unwrap()
            .push((op, name.to_string(), None, errno));
        self
    }

    /// Makes `op` on `name` fail with `errno` only when its detail is `detail` (the xattr
    /// name, the mode or the owner), e.g. the default ACL's write after the access ACL's.
    pub fn fail_with_detail(self, op: Op, name: &str, detail: &str, errno: Errno) -> Self {
        self.failures
            .lock()
            .unwrap()
            .push((op, name.to_string(), Some(detail.to_string()), errno));
        self
    }

    /// How many descriptors the walk pinned (and closed again).
    pub fn pins(&self) -> u64 {
        self.pinned.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many regular files the walk opened for a change (and closed again).
    pub fn opened_files(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, op: Op, name: &CStr, detail: String) -> Result<(), Errno> {
        let name = name.to_string_lossy().into_owned();
        let injected = self
            .failures
            .lock()
            .unwrap()
            .iter()
            .find(|(o, n, d, _)| *o == op && *n == name && d.as_ref().is_none_or(|d| *d == detail))
            .map(|(_, _, _, e)| *e);
        self.calls.lock().unwrap().push(Call { op, name, detail });
        match injected {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl WalkSys for RecordingSys {
    fn open_root(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.inner.open_root(path)
    }
    fn open_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.inner.open_dir(dir, name)
    }
    fn open_subdir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        self.inner.open_subdir(dir, name)
    }
    fn fs_type(&self, fd: BorrowedFd<'_>) -> Result<i64, Errno> {
        match self.fake_fs_type {
            Some(t) => Ok(t),
            None => self.inner.fs_type(fd),
        }
    }
    fn devices_open(&self, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
        self.inner.devices_open(fd)
    }
    fn read_dir(
        &self,
        dir: BorrowedFd<'_>,
        each: &mut dyn FnMut(&CStr, FileType),
    ) -> Result<(), Errno> {
        self.inner.read_dir(dir, each)
    }
    fn stat(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
        self.inner.stat(dir, name)
    }
    fn pin(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        if let Some(hook) = &self.before_pin {
            hook(dir, name);
        }
        let fd = self.inner.pin(dir, name)?;
        self.pinned
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pinned = self.name_of(dir, name).to_string_lossy().into_owned();
        self.pins.lock().unwrap().insert(fd.as_raw_fd(), pinned);
        Ok(fd)
    }
    fn open_file(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        if let Some(hook) = &self.before_pin {
            hook(dir, name);
        }
        let fd = self.inner.open_file(dir, name)?;
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let opened = self.name_of(dir, name).to_string_lossy().into_owned();
        self.pins.lock().unwrap().insert(fd.as_raw_fd(), opened);
        Ok(fd)
    }
    fn mkdir(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        self.inner.mkdir(dir, name, perm)
    }
    fn list_xattrs(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
        self.inner.list_xattrs(dir, name)
    }
    fn get_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
    ) -> Result<Option<Vec<u8>>, Errno> {
        self.inner.get_xattr(dir, name, attr)
    }
    fn set_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
        value: &[u8],
    ) -> Result<(), Errno> {
        self.record(
            Op::SetXattr,
            &self.name_of(dir, name),
            attr.to_string_lossy().into_owned(),
        )?;
        self.inner.set_xattr(dir, name, attr, value)
    }
    fn chown(&self, dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> Result<(), Errno> {
        let named = self.name_of(dir, name);
        self.record(Op::Chown, &named, format!("{uid}:{gid}"))?;
        self.inner.chown(dir, name, uid, gid)?;
        if let Some(hook) = &self.after_chown {
            hook(&named);
        }
        Ok(())
    }
    fn chmod(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        self.record(Op::Chmod, &self.name_of(dir, name), format!("{perm:o}"))?;
        self.inner.chmod(dir, name, perm)
    }
}
