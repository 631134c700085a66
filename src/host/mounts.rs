//! Which processes hold a data path mounted, from /proc/*/mountinfo: any user, any engine
//! (the podman CLI without an API socket included). Not podman: the kernel's view of mounts.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A running process whose mount namespace has (part of) a data path mounted: a container that
/// would see its files change owner under it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MountHolder {
    /// The lowest pid in that mount namespace (one per namespace).
    pub pid: u32,
    pub uid: u32,
    pub comm: String,
    /// Where the namespace has it mounted.
    pub mount_point: PathBuf,
    /// The mount namespace's inode (`mnt:[N]`), 0 when unreadable.
    pub mntns: u64,
}

/// Processes of any user and any engine (podman CLI without an API socket included) whose
/// mount namespace bind-mounts `path` or a directory inside it, found in /proc/*/mountinfo.
/// Namespaces that merely copy the host's tree (services with PrivateTmp=) mount the whole
/// filesystem, not the data path, so they do not count; when the data path is itself a whole
/// filesystem, only namespaces in another user namespace (rootless containers) count.
/// Only meaningful for the live host (`path` is a real absolute path, not under --root).
pub fn mount_holders(path: &Path) -> Result<Vec<MountHolder>> {
    mount_holders_in(Path::new("/proc"), path)
}

/// Where this process's own mount namespace (the host's) has `path` or a directory inside
/// it mounted a second time, outside `path` (a bind mount of a subdirectory elsewhere): the
/// mount points. Nobody holds those; the host does.
pub fn own_binds_inside(path: &Path) -> Result<Vec<PathBuf>> {
    let own = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(own)
        .map_err(|e| Error::io(format!("reading {}", own.display()), e))?;
    let mounts = parse_mountinfo(&text);
    let Some((device, fs_path)) = locate(&mounts, path) else {
        return Ok(Vec::new());
    };
    Ok(mounts
        .into_iter()
        .filter(|m| m.device == device && m.root.starts_with(&fs_path))
        .filter(|m| !m.mount_point.starts_with(path))
        .map(|m| m.mount_point)
        .collect())
}

fn mount_holders_in(proc_root: &Path, path: &Path) -> Result<Vec<MountHolder>> {
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::io(format!("{what} {}", p.display()), e);
    let own = proc_root.join("self/mountinfo");
    let own_text = std::fs::read_to_string(&own).map_err(|e| io("reading", &own, e))?;
    let (device, fs_path) = locate(&parse_mountinfo(&own_text), path).ok_or_else(|| {
        Error::host(OnNoMount {
            path: path.to_path_buf(),
        })
    })?;
    let ns_of =
        |pid: &str, kind: &str| std::fs::read_link(proc_root.join(pid).join("ns").join(kind)).ok();
    let (own_mnt, own_user) = (ns_of("self", "mnt"), ns_of("self", "user"));
    let entries = std::fs::read_dir(proc_root).map_err(|e| io("listing", proc_root, e))?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut seen = std::collections::HashSet::new();
    let mut holders = Vec::new();
    for pid in pids {
        let pid_text = pid.to_string();
        // Processes come and go while we look: whatever vanished holds nothing.
        let Some(mnt) = ns_of(&pid_text, "mnt") else {
            continue;
        };
        if Some(&mnt) == own_mnt.as_ref() || !seen.insert(mnt.clone()) {
            continue;
        }
        let mntns = mnt
            .to_str()
            .and_then(|l| l.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok())
            .unwrap_or(0);
        let foreign_user_ns = ns_of(&pid_text, "user") != own_user;
        if fs_path == Path::new("/") && !foreign_user_ns {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(proc_root.join(&pid_text).join("mountinfo")) else {
            continue;
        };
        // A data path that is a filesystem's root (its own mount, e.g. overlayfs) shows up
        // in every copy of the host's tree (a rootless podman's pause process holds one) at
        // its own place; a container mounts it somewhere else.
        let copy_of_host_tree = |m: &MountEntry| fs_path == Path::new("/") && m.mount_point == path;
        let Some(mount) = parse_mountinfo(&text)
            .into_iter()
            .find(|m| m.device == device && m.root.starts_with(&fs_path) && !copy_of_host_tree(m))
        else {
            continue;
        };
        let status =
            std::fs::read_to_string(proc_root.join(&pid_text).join("status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        let comm =
            std::fs::read_to_string(proc_root.join(&pid_text).join("comm")).unwrap_or_default();
        holders.push(MountHolder {
            pid,
            uid,
            comm: comm.trim_end().to_string(),
            mount_point: mount.mount_point,
            mntns,
        });
    }
    Ok(holders)
}

/// One line of /proc/PID/mountinfo, the fields that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MountEntry {
    /// `major:minor`
    device: String,
    /// The directory of the filesystem that is mounted (a bind mount's source, fs-relative).
    root: PathBuf,
    mount_point: PathBuf,
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let device = fields.nth(2)?.to_string();
            let root = unescape_mountinfo(fields.next()?);
            let mount_point = unescape_mountinfo(fields.next()?);
            Some(MountEntry {
                device,
                root,
                mount_point,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The device and filesystem-relative path of absolute `path`, from the mount (the last of the
/// longest mount points, as later mounts cover earlier ones) that contains it.
fn locate(mounts: &[MountEntry], path: &Path) -> Option<(String, PathBuf)> {
    let mount = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))?
        .1;
    let inside = path.strip_prefix(&mount.mount_point).ok()?;
    Some((mount.device.clone(), mount.root.join(inside)))
}

/// A path the mount table does not cover (the table was read from another namespace).
#[derive(Debug, thiserror::Error)]
#[error("{} is on no mount of this namespace", path.display())]
pub struct OnNoMount {
    pub path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
40 22 254:16 / /srv/big rw,relatime shared:9 - ext4 /dev/vdb rw
41 22 254:0 /srv/with\\040space /mnt/sp rw shared:10 - ext4 /dev/vda rw
";

    #[test]
    fn locate_finds_the_covering_mount_and_the_path_inside_its_filesystem() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(
            locate(&mounts, Path::new("/srv/app")),
            Some(("254:0".into(), PathBuf::from("/srv/app")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/srv/big/photos")),
            Some(("254:16".into(), PathBuf::from("/photos")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/srv/big")),
            Some(("254:16".into(), PathBuf::from("/")))
        );
        assert_eq!(
            locate(&mounts, Path::new("/mnt/sp/x")),
            Some(("254:0".into(), PathBuf::from("/srv/with space/x")))
        );
    }

    /// A fake /proc: `self` plus processes, each with its namespaces and mountinfo.
    fn fake_proc(procs: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, mnt, user, mountinfo) in procs {
            let p = dir.path().join(pid);
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::os::unix::fs::symlink(format!("mnt:[{mnt}]"), p.join("ns/mnt")).unwrap();
            std::os::unix::fs::symlink(format!("user:[{user}]"), p.join("ns/user")).unwrap();
            std::fs::write(p.join("mountinfo"), mountinfo).unwrap();
            std::fs::write(p.join("status"), "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n").unwrap();
            std::fs::write(p.join("comm"), format!("proc{pid}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn a_data_path_that_is_its_own_mount_is_held_only_where_mounted_elsewhere() {
        let host = format!("{MOUNTINFO}50 22 0:77 / /srv/ovl rw - overlay overlay rw\n");
        let pause = host.clone();
        let container = "900 800 0:55 / / rw - overlay overlay rw\n901 900 0:77 / /data rw - overlay overlay rw\n";
        let proc = fake_proc(&[
            ("self", "1", "1", &host),
            ("200", "2", "9", &pause),
            ("400", "3", "9", container),
        ]);
        let holders = mount_holders_in(proc.path(), Path::new("/srv/ovl")).unwrap();
        let seen: Vec<(u32, &str)> = holders
            .iter()
            .map(|h| (h.pid, h.mount_point.to_str().unwrap()))
            .collect();
        assert_eq!(seen, vec![(400, "/data")]);
    }

    #[test]
    fn mount_holders_sees_bind_mounts_of_the_data_and_ignores_copies_of_the_host_tree() {
        let container = "\
900 800 0:55 / / rw - overlay overlay rw
901 900 254:0 /srv/app /data rw - ext4 /dev/vda rw
";
        let sub_container = "900 800 254:0 /srv/app/media /media rw - ext4 /dev/vda rw\n";
        let other_data = "900 800 254:0 /srv/other /data rw - ext4 /dev/vda rw\n";
        let proc = fake_proc(&[
            ("self", "1", "1", MOUNTINFO),
            ("1", "1", "1", MOUNTINFO),
            // A service with PrivateTmp=: a copy of the host's tree.
            ("300", "2", "1", MOUNTINFO),
            ("400", "3", "9", container),
            ("401", "3", "9", container),
            ("500", "4", "9", sub_container),
            ("600", "5", "9", other_data),
        ]);
        let holders = mount_holders_in(proc.path(), Path::new("/srv/app")).unwrap();
        let seen: Vec<(u32, &str)> = holders
            .iter()
            .map(|h| (h.pid, h.mount_point.to_str().unwrap()))
            .collect();
        assert_eq!(seen, vec![(400, "/data"), (500, "/media")]);
        assert_eq!(holders[0].uid, 1000);
        assert_eq!(holders[0].comm, "proc400");
        assert_eq!(holders[0].mntns, 3);
    }

    #[test]
    fn a_whole_filesystem_counts_only_in_another_user_namespace() {
        let copy = MOUNTINFO;
        let rootless = "900 800 254:16 / /data rw - ext4 /dev/vdb rw\n";
        let proc = fake_proc(&[
            ("self", "1", "1", MOUNTINFO),
            ("300", "2", "1", copy),
            ("400", "3", "9", rootless),
        ]);
        let holders = mount_holders_in(proc.path(), Path::new("/srv/big")).unwrap();
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].pid, 400);
    }
}
