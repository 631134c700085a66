//! Whether a share's filesystem keeps POSIX ACLs. NFS and CIFS never do for a local root;
//! elsewhere (ZFS without `acltype=posixacl`, FUSE, ...) reading the ACL attribute answers
//! EOPNOTSUPP when the filesystem has none. Behind a trait so tests can be such a filesystem.
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

// statfs f_type values.
const NFS_SUPER_MAGIC: i64 = 0x6969;
const SMB_SUPER_MAGIC: i64 = 0x517b;
const CIFS_SUPER_MAGIC: i64 = 0xff53_4d42;
const SMB2_SUPER_MAGIC: i64 = 0xfe53_4d42;
const ZFS_SUPER_MAGIC: i64 = 0x2fc1_2fc1;

/// Asks a directory's filesystem whether it stores POSIX ACLs.
pub trait AclProbe {
    fn posix_acls(&self, dir: BorrowedFd<'_>) -> Result<bool, Errno>;
}

/// The real kernel: reads `system.posix_acl_access` of the directory itself.
pub struct RealAclProbe;

impl AclProbe for RealAclProbe {
    fn posix_acls(&self, dir: BorrowedFd<'_>) -> Result<bool, Errno> {
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .expect("no NUL in a number");
        let mut buf = [0u8; 256];
        // The /proc magic link is followed on purpose: it is the opened directory itself.
        // SAFETY: NUL-terminated strings, a buffer of the given length.
        let r = unsafe {
            libc::getxattr(
                path.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if r >= 0 {
            return Ok(true);
        }
        match Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        {
            Errno::NODATA | Errno::RANGE => Ok(true),
            Errno::OPNOTSUPP => Ok(false),
            e => Err(e),
        }
    }
}

/// None when the filesystem keeps POSIX ACLs, else its name for the refusal.
pub fn missing_acls(
    fs_type: i64,
    probe: &dyn AclProbe,
    dir: BorrowedFd<'_>,
) -> Result<Option<String>, Errno> {
    let name = match fs_type {
        NFS_SUPER_MAGIC => return Ok(Some("NFS".into())),
        SMB_SUPER_MAGIC | CIFS_SUPER_MAGIC | SMB2_SUPER_MAGIC => {
            return Ok(Some("CIFS/SMB".into()))
        }
        ZFS_SUPER_MAGIC => "ZFS without acltype=posixacl".to_string(),
        other => format!("a filesystem of type {other:#x}"),
    };
    Ok((!probe.posix_acls(dir)?).then_some(name))
}

/// The refusal for a share whose directory does not exist, with the command that creates it:
/// isolate does not create one itself (see the README: a missing share is most often an
/// unmounted disk or a typo, and a directory made in its place would hide the real one).
pub fn missing_share(name: &str, path: &std::path::Path) -> String {
    format!(
        "share `{name}`: {} does not exist; isolate does not create a share (a missing one is most often an unmounted disk or a typo): mount its filesystem, fix `path` in [shares.{name}], or create it empty with `install -d -o root -g root -m 0755 {}`",
        path.display(),
        path.display()
    )
}

/// The refusal text for a share on such a filesystem: what to do about it.
pub fn refusal(share: &str, path: &std::path::Path, fs: &str, group: &str) -> String {
    format!(
        "share `{share}`: {} is on {fs}, which keeps no POSIX ACLs, so grants to single stacks \
         cannot be made there; move the share to a filesystem with POSIX ACLs (ext4, xfs, btrfs, \
         or `zfs set acltype=posixacl` on its dataset), or set `mode = \"group\"` in \
         [shares.{share}] to give it to group {group} instead (every member of {group} then \
         reaches it: `isolate plan` lists them)",
        path.display()
    )
}
