//! `isolate logs STACK`: every journal record of a stack's processes, read by journalctl with
//! journald's own matches, whatever uid wrote them: the stack user's (`_UID`: its user manager,
//! its compose unit's output, podman's journald log driver, which writes as the stack user) and
//! every process of its user slice (`_SYSTEMD_OWNER_UID`: container processes that run as
//! subordinate uids), and the system manager's lines about its user manager (`UNIT=user@UID`).
//! A SERVICE narrows to the containers the compose project runs for it (`CONTAINER_NAME`).
//! Read-only: journalctl replaces isolate, so `-f`, the pager and its exit code are its own.
use crate::state::Allocation;
use std::ffi::OsString;

/// What the command line asked for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub follow: bool,
    pub since: Option<String>,
    pub lines: Option<u32>,
    /// `journalctl -o json` instead of its text.
    pub json: bool,
    /// `journalctl --root ROOT` when isolate works on another root than the running system.
    pub root: Option<std::path::PathBuf>,
}

/// The match groups: journalctl ORs groups separated by `+` and ANDs the terms in a group.
pub fn matches(a: &Allocation, containers: Option<&[String]>) -> Vec<Vec<String>> {
    let uid = a.uid;
    let mut groups = vec![
        vec![format!("_UID={uid}")],
        vec![format!("_SYSTEMD_OWNER_UID={uid}")],
    ];
    match containers {
        // Only the named containers' records: each group ANDed with each name (names of one
        // field OR among themselves inside a group).
        Some(names) => {
            for g in &mut groups {
                g.extend(names.iter().map(|n| format!("CONTAINER_NAME={n}")));
            }
        }
        None => groups.push(vec![format!("UNIT=user@{uid}.service")]),
    }
    groups
}

/// journalctl's arguments: options, then the match groups joined by `+`.
pub fn journalctl_args(
    a: &Allocation,
    containers: Option<&[String]>,
    req: &Request,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(r) = &req.root {
        args.push("--root".into());
        args.push(r.clone().into_os_string());
    }
    if req.follow {
        args.push("--follow".into());
    }
    if let Some(s) = &req.since {
        args.push(format!("--since={s}").into());
    }
    if let Some(n) = req.lines {
        args.push(format!("--lines={n}").into());
    }
    if req.json {
        args.push("--output=json".into());
    }
    for (i, g) in matches(a, containers).into_iter().enumerate() {
        if i > 0 {
            args.push("+".into());
        }
        args.extend(g.into_iter().map(OsString::from));
    }
    args
}

/// Replaces this process with journalctl (returns only when that fails).
pub fn exec_journalctl(args: &[OsString]) -> crate::error::Error {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new("journalctl").args(args).exec();
    crate::error::Error::io("running journalctl", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SubidRange;

    fn alloc() -> Allocation {
        Allocation {
            user: "stk-app".into(),
            uid: 70_000,
            gid: 70_000,
            subids: SubidRange::new(0x7000_0000, 65_536).unwrap(),
        }
    }

    fn shown(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_stack_is_its_users_records_its_slices_and_its_user_manager() {
        let req = Request {
            follow: true,
            since: Some("-1h".into()),
            ..Request::default()
        };
        assert_eq!(
            shown(&journalctl_args(&alloc(), None, &req)),
            "--follow --since=-1h _UID=70000 + _SYSTEMD_OWNER_UID=70000 + UNIT=user@70000.service"
        );
    }

    #[test]
    fn a_service_is_its_containers_records_of_this_stack_only() {
        let names = ["app_db_1".to_string(), "app_db_2".to_string()];
        let req = Request {
            json: true,
            root: Some("/mnt".into()),
            ..Request::default()
        };
        assert_eq!(
            shown(&journalctl_args(&alloc(), Some(&names), &req)),
            "--root /mnt --output=json _UID=70000 CONTAINER_NAME=app_db_1 CONTAINER_NAME=app_db_2 + _SYSTEMD_OWNER_UID=70000 CONTAINER_NAME=app_db_1 CONTAINER_NAME=app_db_2"
        );
    }
}
