//! The real kernel behind [`WalkSys`]: the newer fd-relative syscalls (openat2, the
//! *xattrat family, fchmodat2) where the kernel has them, and for older kernels fallbacks
//! that still never follow a symlink (through `/proc/self/fd` of a pinned descriptor).
use super::{Stat, WalkSys};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

// Generic syscall numbers (the same on x86_64 and aarch64); libc 0.2 does not name them yet.
const SYS_SETXATTRAT: libc::c_long = 463;
const SYS_GETXATTRAT: libc::c_long = 464;
const SYS_LISTXATTRAT: libc::c_long = 465;

/// `struct xattr_args` of include/uapi/linux/xattr.h (XATTR_ARGS_SIZE_VER0 = 16).
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

const MISSING: u8 = 1;
const PRESENT: u8 = 2;

/// The real kernel. Remembers which newer syscalls (openat2, *xattrat, fchmodat2) exist
/// (0 = not tried yet).
#[derive(Default)]
pub struct RealSys {
    openat2: AtomicU8,
    xattrat: AtomicU8,
    fchmodat2: AtomicU8,
}

impl RealSys {
    pub fn new() -> Self {
        Self::default()
    }
}

fn at_flags(name: &CStr) -> AtFlags {
    if name.is_empty() {
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    }
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Runs `new` unless it is known missing; on ENOSYS remembers that and runs `old`.
fn with_fallback<T>(
    state: &AtomicU8,
    new: impl FnOnce() -> Result<T, Errno>,
    old: impl FnOnce() -> Result<T, Errno>,
) -> Result<T, Errno> {
    if state.load(Ordering::Relaxed) != MISSING {
        match new() {
            Err(Errno::NOSYS) => state.store(MISSING, Ordering::Relaxed),
            other => {
                state.store(PRESENT, Ordering::Relaxed);
                return other;
            }
        }
    }
    old()
}

/// `/proc/self/fd/N/name` (or `/proc/self/fd/N` for the directory itself): the path the
/// pre-6.13 fallback hands to l*xattr, which never follow the last component.
fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut path = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        path.push(b'/');
        path.extend_from_slice(name.to_bytes());
    }
    CString::new(path).expect("no NUL in a path built from a CStr")
}

/// Result of a libc call returning -1 on error.
fn sized(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// The xattr calls on a descriptor itself: directly (f*xattr) on a file opened for real
/// (`open_file`); on an O_PATH pin, which those and the *xattrat syscalls refuse with EBADF,
/// through its `/proc/self/fd/N` magic link, which the following variants resolve to
/// exactly the pinned inode, never by path lookup.
mod pinned_xattr {
    use super::*;

    pub fn list(fd: BorrowedFd<'_>, buf: *mut u8, len: usize) -> Result<usize, Errno> {
        // SAFETY: buffer of the given length.
        match sized(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.cast(), len) }) {
            Err(Errno::BADF) => {}
            direct => return direct,
        }
        let path = proc_path(fd, c"");
        // SAFETY: NUL-terminated path, buffer of the given length.
        sized(unsafe { libc::listxattr(path.as_ptr(), buf.cast(), len) })
    }

    pub fn get(fd: BorrowedFd<'_>, attr: &CStr, buf: *mut u8, len: usize) -> Result<usize, Errno> {
        // SAFETY: NUL-terminated name, buffer of the given length.
        match sized(unsafe { libc::fgetxattr(fd.as_raw_fd(), attr.as_ptr(), buf.cast(), len) }) {
            Err(Errno::BADF) => {}
            direct => return direct,
        }
        let path = proc_path(fd, c"");
        // SAFETY: NUL-terminated strings, buffer of the given length.
        sized(unsafe { libc::getxattr(path.as_ptr(), attr.as_ptr(), buf.cast(), len) })
    }

    pub fn set(fd: BorrowedFd<'_>, attr: &CStr, value: &[u8]) -> Result<(), Errno> {
        // SAFETY: NUL-terminated name, value of the given length.
        let direct = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                attr.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        match sized(direct as isize) {
            Err(Errno::BADF) => {}
            direct => return direct.map(drop),
        }
        let path = proc_path(fd, c"");
        // SAFETY: NUL-terminated strings, value of the given length.
        let r = unsafe {
            libc::setxattr(
                path.as_ptr(),
                attr.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        sized(r as isize).map(drop)
    }
}

impl WalkSys for RealSys {
    /// Opens the data path one component at a time from `/`, never following a symbolic
    /// link (ELOOP or ENOTDIR where one stands): the walk's root is what the policy names.
    fn open_root(&self, path: &Path) -> Result<OwnedFd, Errno> {
        use std::path::Component;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::open("/", flags, Mode::empty())?;
        for c in path.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(name) => {
                    fd = match rustix::fs::openat(&fd, name, flags, Mode::empty()) {
                        Ok(next) => next,
                        // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: tell them apart.
                        Err(Errno::NOTDIR) => {
                            let st = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
                            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                                return Err(Errno::LOOP);
                            }
                            return Err(Errno::NOTDIR);
                        }
                        Err(e) => return Err(e),
                    };
                }
                // `.` and `..` could step out of what the policy names.
                Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                    return Err(Errno::INVAL)
                }
            }
        }
        Ok(fd)
    }

    fn open_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, name, flags, Mode::empty()) {
            // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: tell them apart.
            Err(Errno::NOTDIR) => {
                let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                    return Err(Errno::LOOP);
                }
                Err(Errno::NOTDIR)
            }
            other => other,
        }
    }

    fn open_subdir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        with_fallback(
            &self.openat2,
            || {
                rustix::fs::openat2(
                    dir,
                    name,
                    flags,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
                )
            },
            // A single component relative to a trusted fd with O_NOFOLLOW cannot leave it;
            // a mount on it is refused by comparing mount ids, as RESOLVE_NO_XDEV would.
            || {
                let opened = rustix::fs::openat(dir, name, flags, Mode::empty())?;
                let (parent, child) = (self.stat(dir, c"")?, self.stat(opened.as_fd(), c"")?);
                if parent.mnt_id != child.mnt_id {
                    return Err(Errno::XDEV);
                }
                Ok(opened)
            },
        )
    }

    // f_type is i64 on x86_64 but narrower on other architectures.
    #[allow(clippy::unnecessary_cast)]
    fn fs_type(&self, fd: BorrowedFd<'_>) -> Result<i64, Errno> {
        // f_type is i64 on x86_64 but narrower on other targets.
        #[allow(clippy::unnecessary_cast)]
        rustix::fs::fstatfs(fd).map(|s| s.f_type as i64)
    }

    fn devices_open(&self, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
        rustix::fs::fstatvfs(fd).map(|s| !s.f_flag.contains(rustix::fs::StatVfsMountFlags::NODEV))
    }

    fn read_dir(
        &self,
        dir: BorrowedFd<'_>,
        each: &mut dyn FnMut(&CStr, FileType),
    ) -> Result<(), Errno> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 32 * 1024];
        let mut entries = rustix::fs::RawDir::new(dir, &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            each(name, entry.file_type());
        }
        Ok(())
    }

    fn stat(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
        let st = rustix::fs::statx(
            dir,
            name,
            at_flags(name),
            StatxFlags::TYPE
                | StatxFlags::MODE
                | StatxFlags::NLINK
                | StatxFlags::UID
                | StatxFlags::GID
                | StatxFlags::INO
                | StatxFlags::SIZE
                | StatxFlags::MNT_ID
                | StatxFlags::CTIME
                | StatxFlags::MTIME
                | StatxFlags::BTIME,
        )?;
        let has_btime = st.stx_mask & StatxFlags::BTIME.bits() != 0;
        Ok(Stat {
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            mnt_id: st.stx_mnt_id,
            ino: st.stx_ino,
            mode: u32::from(st.stx_mode),
            uid: st.stx_uid,
            gid: st.stx_gid,
            nlink: st.stx_nlink,
            size: st.stx_size,
            ctime: (st.stx_ctime.tv_sec, st.stx_ctime.tv_nsec),
            mtime: (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
            btime: has_btime.then_some((st.stx_btime.tv_sec, st.stx_btime.tv_nsec)),
            attributes: st.stx_attributes.bits(),
        })
    }

    fn list_xattrs(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
        // One call for most inodes: none or a few short attributes (an ACL, a capability)
        // fit the buffer on the stack; a longer list asks for its size, then reads it.
        let mut first = [0u8; 256];
        let mut buf: Vec<u8> = Vec::new();
        let mut sized_once = false;
        loop {
            let (ptr, len) = match (sized_once, buf.is_empty()) {
                (false, _) => (first.as_mut_ptr(), first.len()),
                (true, true) => (std::ptr::null_mut(), 0),
                (true, false) => (buf.as_mut_ptr(), buf.len()),
            };
            let got = if name.is_empty() {
                pinned_xattr::list(dir, ptr, len)
            } else {
                with_fallback(
                    &self.xattrat,
                    || {
                        // SAFETY: valid fd, NUL-terminated name, buffer of the given length.
                        let r = unsafe {
                            libc::syscall(
                                SYS_LISTXATTRAT,
                                dir.as_raw_fd(),
                                name.as_ptr(),
                                at_flags(name).bits(),
                                ptr,
                                len,
                            )
                        };
                        if r < 0 {
                            Err(last_errno())
                        } else {
                            Ok(r as usize)
                        }
                    },
                    || {
                        let path = proc_path(dir, name);
                        // SAFETY: NUL-terminated path, buffer of the given length.
                        let r = unsafe { libc::llistxattr(path.as_ptr(), ptr.cast(), len) };
                        if r < 0 {
                            Err(last_errno())
                        } else {
                            Ok(r as usize)
                        }
                    },
                )
            };
            match got {
                Ok(0) => return Ok(Vec::new()),
                Ok(n) if !sized_once => return Ok(first[..n].to_vec()),
                // A size answer: make room (plus some, in case a name is added meanwhile).
                Ok(n) if len == 0 => buf.resize(n + 64, 0),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // Longer than the stack buffer: ask for the size.
                Err(Errno::RANGE) if !sized_once => sized_once = true,
                // The list grew between the calls.
                Err(Errno::RANGE) if len < 1 << 20 => buf.resize(len * 2, 0),
                Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
    }

    fn get_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let mut buf = vec![0u8; 512];
        loop {
            let (ptr, len) = (buf.as_mut_ptr(), buf.len());
            let got = if name.is_empty() {
                pinned_xattr::get(dir, attr, ptr, len)
            } else {
                with_fallback(
                    &self.xattrat,
                    || {
                        let mut args = XattrArgs {
                            value: ptr as u64,
                            size: len as u32,
                            flags: 0,
                        };
                        // SAFETY: args points at a live buffer of `size` bytes.
                        let r = unsafe {
                            libc::syscall(
                                SYS_GETXATTRAT,
                                dir.as_raw_fd(),
                                name.as_ptr(),
                                at_flags(name).bits(),
                                attr.as_ptr(),
                                &mut args as *mut XattrArgs,
                                std::mem::size_of::<XattrArgs>(),
                            )
                        };
                        if r < 0 {
                            Err(last_errno())
                        } else {
                            Ok(r as usize)
                        }
                    },
                    || {
                        let path = proc_path(dir, name);
                        // SAFETY: NUL-terminated strings, buffer of the given length.
                        let r = unsafe {
                            libc::lgetxattr(path.as_ptr(), attr.as_ptr(), ptr.cast(), len)
                        };
                        if r < 0 {
                            Err(last_errno())
                        } else {
                            Ok(r as usize)
                        }
                    },
                )
            };
            match got {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(Errno::NODATA) | Err(Errno::OPNOTSUPP) => return Ok(None),
                Err(Errno::RANGE) if buf.len() < 1 << 16 => buf.resize(buf.len() * 8, 0),
                Err(e) => return Err(e),
            }
        }
    }

    fn set_xattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &CStr,
        value: &[u8],
    ) -> Result<(), Errno> {
        if name.is_empty() {
            return pinned_xattr::set(dir, attr, value);
        }
        with_fallback(
            &self.xattrat,
            || {
                let mut args = XattrArgs {
                    value: value.as_ptr() as u64,
                    size: value.len() as u32,
                    flags: 0,
                };
                // SAFETY: args points at `value`, which outlives the call.
                let r = unsafe {
                    libc::syscall(
                        SYS_SETXATTRAT,
                        dir.as_raw_fd(),
                        name.as_ptr(),
                        at_flags(name).bits(),
                        attr.as_ptr(),
                        &mut args as *mut XattrArgs,
                        std::mem::size_of::<XattrArgs>(),
                    )
                };
                if r < 0 {
                    Err(last_errno())
                } else {
                    Ok(())
                }
            },
            || {
                let path = proc_path(dir, name);
                // SAFETY: NUL-terminated strings, value of the given length.
                let r = unsafe {
                    libc::lsetxattr(
                        path.as_ptr(),
                        attr.as_ptr(),
                        value.as_ptr().cast(),
                        value.len(),
                        0,
                    )
                };
                if r < 0 {
                    Err(last_errno())
                } else {
                    Ok(())
                }
            },
        )
    }

    fn chown(&self, dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> Result<(), Errno> {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            at_flags(name),
        )
    }

    fn pin(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        if name.is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(dir, 0);
        }
        // One component (a name from getdents: no '/', never "." or "..") relative to a
        // trusted directory fd, with O_NOFOLLOW: it cannot leave the directory, and a symlink
        // is pinned itself. A mount point on it is crossed here and refused by the caller's
        // mount-id check on the pin's stat, as RESOLVE_NO_XDEV would (openat2 costs more
        // per call and adds nothing for one component).
        rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn open_file(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
        // One component relative to a trusted directory, as for a pin.
        rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn mkdir(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(perm))
    }

    fn chmod(&self, dir: BorrowedFd<'_>, name: &CStr, perm: u32) -> Result<(), Errno> {
        if name.is_empty() {
            // A pinned (O_PATH) fd: fchmod refuses it, fchmodat2 with AT_EMPTY_PATH (6.6+)
            // or the /proc magic link (which resolves to exactly this inode) do not.
            return with_fallback(
                &self.fchmodat2,
                || {
                    // SAFETY: valid fd and an empty NUL-terminated name.
                    let r = unsafe {
                        libc::syscall(
                            libc::SYS_fchmodat2,
                            dir.as_raw_fd(),
                            c"".as_ptr(),
                            perm,
                            libc::AT_EMPTY_PATH,
                        )
                    };
                    sized(r as isize).map(drop)
                },
                || {
                    let path = proc_path(dir, c"");
                    rustix::fs::chmod(path.as_c_str(), Mode::from_raw_mode(perm))
                },
            );
        }
        with_fallback(
            &self.fchmodat2,
            || {
                // SAFETY: valid fd and NUL-terminated name.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_fchmodat2,
                        dir.as_raw_fd(),
                        name.as_ptr(),
                        perm,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                if r < 0 {
                    Err(last_errno())
                } else {
                    Ok(())
                }
            },
            || {
                // Before 6.6: pin the inode with O_PATH|O_NOFOLLOW, refuse a symlink, and
                // chmod through /proc (which acts on the pinned inode, not a path).
                let pinned = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let st = rustix::fs::fstat(&pinned)?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                    return Err(Errno::OPNOTSUPP);
                }
                let path = proc_path(pinned.as_fd(), c"");
                rustix::fs::chmod(path.as_c_str(), Mode::from_raw_mode(perm))
            },
        )
    }
}
