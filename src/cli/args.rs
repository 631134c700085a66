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
    Status(Selection),
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
    /// Give a stack's data back its previous owners exactly (the account stays).
    Rollback {
        #[arg(long = "stack", value_name = "NAME", required = true)]
        stack: String,
        /// Roll back even when running containers hold the data.
        #[arg(long)]
        force: bool,
    },
}
