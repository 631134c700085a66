//! The command line, as clap parses it: every command, option and its help. Man pages and
//! completions are generated from this one definition.
use crate::policy::DEFAULT_POLICY;
use crate::render::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "isolate",
    version,
    about = "Give every rootless Podman stack its own user, id range and podman socket"
)]
pub struct Cli {
    /// Root directory to work on, as shadow's --prefix (default: the running system).
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Policy file.
    #[arg(long, global = true, default_value = DEFAULT_POLICY, value_name = "FILE")]
    pub policy: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print JSON instead of text (the same as --format json).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more (repeat for more detail: -v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Log errors only and show no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Threads the walks over data run on (default: 8 per core, from 8 to 64; more than
    /// cores keeps a cold disk and a busy machine from holding the walk up).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Selection {
    /// Limit to this stack (repeatable); all stacks when absent.
    #[arg(long = "stack", value_name = "NAME")]
    pub stacks: Vec<String>,
    /// Skip linger and podman.socket (hosts or roots without systemd).
    #[arg(long)]
    pub no_systemd: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a policy drafted from compose files or quadlet directories (reads only).
    Init {
        /// A compose file, a project directory, or a directory of project directories
        /// (`stacks/<name>/docker-compose.yml`); repeatable.
        #[arg(
            long = "compose",
            value_name = "FILE|DIR",
            required_unless_present = "quadlets"
        )]
        compose: Vec<PathBuf>,
        /// A quadlet directory (`~/.config/containers/systemd`, `/etc/containers/systemd/users/UID`,
        /// `/etc/containers/systemd`): each pod, with its containers, is a stack; repeatable.
        #[arg(long = "quadlets", value_name = "DIR")]
        quadlets: Vec<PathBuf>,
        /// Variables for interpolation, read before each project's own .env (repeatable).
        #[arg(long = "env", value_name = "FILE")]
        env: Vec<PathBuf>,
        /// The user whose rootless containers own the data today.
        #[arg(long, value_name = "USER")]
        legacy_owner: Option<String>,
    },
    /// Show the steps apply would take, without changing anything.
    Plan(Selection),
    /// Bring the host to the policy: accounts, subordinate ids, linger, socket, data.
    Apply {
        #[command(flatten)]
        sel: Selection,
        /// Migrate even when running containers hold the data.
        #[arg(long)]
        force: bool,
    },
    /// Per stack: user, ids, linger, user manager, socket, and the environment for compose.
    Status {
        #[command(flatten)]
        sel: Selection,
        /// Print, per stack, the drop-in a root-owned wrapper unit needs to run the compose
        /// project as the stack user (installs nothing).
        #[arg(long)]
        unit: bool,
    },
    /// Translate ids: `map STACK CONTAINER_ID` or `map --host HOST_ID`.
    Map {
        /// Stack whose mapping to use.
        #[arg(required_unless_present = "host")]
        stack: Option<String>,
        /// Container id to translate to host ids.
        #[arg(required_unless_present = "host")]
        id: Option<u32>,
        /// Host id to find the stack and container id of.
        #[arg(long, value_name = "ID", conflicts_with_all = ["stack", "id"])]
        host: Option<u32>,
    },
    /// Write the recorded stacks as another system's configuration.
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Who owns which data and who can reach it (read-only): text, JSON or Prometheus.
    Audit(AuditArgs),
    /// Give a stack's data back its previous owners exactly (the account stays; a closed
    /// data path is reopened first), or take isolate's ACL entries out of a share.
    Rollback {
        /// The stack whose data to roll back.
        #[arg(
            long = "stack",
            value_name = "NAME",
            required_unless_present = "share",
            conflicts_with = "share"
        )]
        stack: Option<String>,
        /// Remove isolate's ACL entries (those of every stack's ids) from this share.
        #[arg(long = "share", value_name = "NAME")]
        share: Option<String>,
        /// Roll back even when running containers hold the data.
        #[arg(long)]
        force: bool,
    },
    /// Every journal record of a stack's processes: its user manager, its compose unit, its
    /// containers whatever uid they run as (journalctl with journald's own matches; read-only).
    Logs {
        /// The stack (recorded by apply).
        stack: String,
        /// A compose service of the stack: only its containers' records.
        service: Option<String>,
        /// Keep printing new records as they come (journalctl --follow).
        #[arg(short, long)]
        follow: bool,
        /// Records from this time on, as journalctl reads it ("-1h", "today", "2026-12-03 10:00").
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        since: Option<String>,
        /// Only the last N records (journalctl --lines).
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<u32>,
    },
    /// Every stack's containers, asked of each stack's own podman socket: stack, container,
    /// image, state, health, ports (read-only).
    Ps {
        /// Limit to this stack (repeatable); all recorded stacks when absent.
        #[arg(long = "stack", value_name = "NAME")]
        stacks: Vec<String>,
    },
    /// Run a command as a stack user in its own session (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS,
    /// DOCKER_HOST, CONTAINER_HOST, HOME, working directory its home); exits with its exit code.
    Exec {
        /// The stack (recorded by apply).
        stack: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Write man pages, shell completions or the README's generated tables (packaging).
    #[command(name = "__generate", hide = true)]
    Generate {
        what: super::generate::What,
        /// The directory to write into (the README file for `readme`).
        path: PathBuf,
    },
    /// Print the policy's stack names, one a line (shell completion).
    #[command(name = "__complete-stacks", hide = true)]
    CompleteStacks,
}

#[derive(Subcommand, Debug)]
pub enum ExportTarget {
    /// A NixOS module declaring every stack's user, groups, subordinate ranges and linger
    /// (records allocations not recorded yet).
    Nixos {
        /// Write the module to FILE (atomically) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Limit to this stack's data and the shares granting it (repeatable).
    #[arg(long = "stack", value_name = "NAME")]
    pub stacks: Vec<String>,
    /// Write the output to FILE atomically (a temporary file in its directory, then rename).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when a finding of this severity or worse exists.
    #[arg(long, value_enum, default_value_t = FailOn::Error, value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// Only this part: `usage` reads each recorded stack's slice (cgroup files) and nothing
    /// else — no walk, no finding, cheap enough for a timer every minute.
    #[arg(long, value_enum, value_name = "PART", conflicts_with = "skip")]
    pub only: Option<AuditPart>,
    /// Leave this part out: `usage` leaves the slices to a separate `--only usage` run, so
    /// two textfiles never carry the same family.
    #[arg(long, value_enum, value_name = "PART")]
    pub skip: Option<AuditPart>,
}

/// The parts of `audit` one can run alone or leave out.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditPart {
    /// Each stack's slice: memory, CPU, tasks, OOM kills, I/O (cgroup v2).
    Usage,
}

/// `audit --fail-on` levels.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Info,
    Warning,
    Error,
}
