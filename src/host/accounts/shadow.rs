//! Creates groups, users and subordinate ranges through shadow-utils (groupadd, useradd,
//! usermod), so shadow's locks, backups and cache invalidation stay right. Which ids to use
//! is decided by isolate; these tools only write them.
use crate::error::{Error, Result};
use crate::ids::SubidRange;
use crate::layout::Root;
use std::path::Path;
use std::process::Command;

/// The repairs `accounts::check` makes of what a killed run left half done, through
/// shadow's tools so their locks and formats stay right.
pub trait AccountRepairs {
    /// Gives `user` the shadow line useradd would have written (locked password).
    fn add_shadow_line(&self, user: &str) -> Result<()>;
    /// Gives `group` the gshadow line groupadd would have written (`!`, members from group).
    fn add_gshadow_line(&self, group: &str) -> Result<()>;
    /// Adds `user` to `group` wherever it is missing (group and gshadow).
    fn add_member(&self, user: &str, group: &str) -> Result<()>;
    /// Creates the home directory (mode 0700) owned by the user.
    fn create_home(&self, home: &Path, uid: u32, gid: u32) -> Result<()>;
}

/// The account changes apply makes. A trait so apply can be tested with a recording fake.
pub trait AccountTools {
    fn create_group(&self, name: &str, gid: Option<u32>) -> Result<()>;
    fn create_user(
        &self,
        name: &str,
        uid: u32,
        gid: u32,
        home: &Path,
        shell: &str,
        comment: &str,
    ) -> Result<()>;
    fn add_to_group(&self, user: &str, group: &str) -> Result<()>;
    fn add_subids(&self, user: &str, range: SubidRange, subuid: bool, subgid: bool) -> Result<()>;
}

/// The real tools, acting on `root` (`--prefix ROOT` unless the root is `/`).
pub struct Shadow {
    root: Root,
}

impl Shadow {
    pub fn new(root: &Root) -> Self {
        Shadow { root: root.clone() }
    }

    fn run(&self, tool: &str, args: &[String]) -> Result<()> {
        self.run_rooted(tool, "--prefix", args)
    }

    /// Runs `tool` with `root_flag ROOT` unless the root is `/` (chage and gpasswd know only
    /// `--root`, a chroot, where the others take `--prefix`).
    fn run_rooted(&self, tool: &str, root_flag: &str, args: &[String]) -> Result<()> {
        let mut cmd = Command::new(tool);
        if !self.root.is_host() {
            cmd.arg(root_flag).arg(self.root.path());
        }
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C");
        let shown = format!("{tool} {}", args.join(" "));
        let out = cmd.output().map_err(|e| {
            Error::io(
                format!("cannot run `{shown}` (is shadow-utils installed?)"),
                e,
            )
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Tool {
            command: shown,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl AccountTools for Shadow {
    fn create_group(&self, name: &str, gid: Option<u32>) -> Result<()> {
        let mut args = vec!["--system".to_string()];
        if let Some(g) = gid {
            args.extend(["--gid".into(), g.to_string()]);
        }
        args.push(name.into());
        self.run("groupadd", &args)
    }

    fn create_user(
        &self,
        name: &str,
        uid: u32,
        gid: u32,
        home: &Path,
        shell: &str,
        comment: &str,
    ) -> Result<()> {
        // The parent of the home directory must exist; useradd creates only the last part.
        if let Some(parent) = home.parent() {
            let on_root = self.root.at(parent);
            std::fs::create_dir_all(&on_root)
                .map_err(|e| Error::io(format!("creating {}", on_root.display()), e))?;
        }
        let args: Vec<String> = vec![
            "--system".into(),
            "--uid".into(),
            uid.to_string(),
            "--gid".into(),
            gid.to_string(),
            "--home-dir".into(),
            home.display().to_string(),
            "--create-home".into(),
            "--key".into(),
            "HOME_MODE=0700".into(),
            "--shell".into(),
            shell.into(),
            "--comment".into(),
            comment.into(),
            name.into(),
        ];
        self.run("useradd", &args)
    }

    fn add_to_group(&self, user: &str, group: &str) -> Result<()> {
        self.run(
            "usermod",
            &[
                "--append".into(),
                "--groups".into(),
                group.into(),
                user.into(),
            ],
        )
    }

    fn add_subids(&self, user: &str, range: SubidRange, subuid: bool, subgid: bool) -> Result<()> {
        let mut args = Vec::new();
        if subuid {
            args.extend(["--add-subuids".to_string(), range.to_string()]);
        }
        if subgid {
            args.extend(["--add-subgids".to_string(), range.to_string()]);
        }
        args.push(user.into());
        self.run("usermod", &args)
    }
}

impl AccountRepairs for Shadow {
    fn add_shadow_line(&self, user: &str) -> Result<()> {
        // chage creates the missing shadow line (moving passwd's `x` into it); usermod then
        // locks the password exactly as useradd does (`!`).
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        self.run_rooted(
            "chage",
            "--root",
            &["--lastday".into(), days.to_string(), user.into()],
        )?;
        self.run("usermod", &["--password".into(), "!".into(), user.into()])
    }

    fn add_gshadow_line(&self, group: &str) -> Result<()> {
        // --restrict writes the `!` password groupadd writes; a missing line is made from
        // /etc/group's (members included).
        self.run_rooted("gpasswd", "--root", &["--restrict".into(), group.into()])
    }

    fn add_member(&self, user: &str, group: &str) -> Result<()> {
        self.add_to_group(user, group)
    }

    fn create_home(&self, home: &Path, uid: u32, gid: u32) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let on_root = self.root.at(home);
        let parent = on_root.parent().unwrap_or(self.root.path());
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&on_root)
            .map_err(|e| Error::io(format!("creating {}", on_root.display()), e))?;
        std::os::unix::fs::lchown(&on_root, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("chown {}", on_root.display()), e))
    }
}
