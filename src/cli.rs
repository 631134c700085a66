// Command-line interface: the only place real backends are built. Each command reads the
// policy and host, prints human text or JSON, and maps errors to exit codes 0/1/2.
use crate::apply::{self, Backends, Outcome, Walker};
use crate::error::{Error, Result, EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};
use crate::host::accounts::check;
use crate::live::{self, Live};
use crate::observe::{self, LiveProbe, NoLiveProbe};
use crate::plan::{self, Options};
use crate::policy::{Policy, DEFAULT_POLICY};
use crate::render::escape;
use crate::state::{RunLock, State};
use crate::sys::shadow::Shadow;
use crate::sys::systemd::{DbusSystemd, Systemd};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

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
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
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

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return code;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISOLATE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                let msg =
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
                println!("{msg}");
            }
            eprintln!(
                "isolate: {}",
                escape::lines(&e.to_string()).replace('\n', "\nisolate: ")
            );
            e.exit_code()
        }
    }
}

fn opts(sel: &Selection, force: bool) -> Options {
    Options {
        stacks: sel.stacks.clone(),
        systemd: !sel.no_systemd,
        force,
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
}

pub fn run(cli: Cli) -> Result<i32> {
    let root = cli.root.as_path();
    match &cli.command {
        Command::Plan(sel) => {
            let policy = Policy::load(&cli.policy)?;
            let o = opts(sel, false);
            let sd = live::dbus(root);
            let live = live_probe(root, &o, &sd)?;
            let obs = observe::observe(root, &policy, &o, live.as_ref(), true)?;
            let p = plan::plan(&policy, &obs, &o)?;
            if cli.json {
                print_json(&p);
            } else {
                print_plan(&p);
            }
            Ok(EXIT_OK)
        }
        Command::Apply { sel, force } => {
            let policy = Policy::load(&cli.policy)?;
            crate::privilege::check()?;
            let _lock = RunLock::acquire(root)?;
            // Before planning: finish what a killed earlier run left in isolate's accounts.
            let own = check::own_names(&State::read(root)?, Some(&policy.shared_group.value));
            for line in check::repair_or_refuse(root, &own, &Shadow::new(root))? {
                if cli.json {
                    eprintln!("{}", escape::lines(&line));
                } else {
                    println!("{}", escape::lines(&line));
                }
            }
            let o = opts(sel, *force);
            let sd = live::dbus(root);
            let live = live_probe(root, &o, &sd)?;
            let obs = observe::observe(root, &policy, &o, live.as_ref(), true)?;
            let p = plan::plan(&policy, &obs, &o)?;
            if p.steps.is_empty() {
                if cli.json {
                    print_json(&serde_json::json!({"steps": [], "notes": p.notes}));
                } else {
                    println!("nothing to do: the host matches the policy");
                }
                return Ok(EXIT_OK);
            }
            let shadow = Shadow::new(root);
            let walker = Walker::new();
            let manager = Live {
                root,
                systemd: &sd,
                ping: false,
            };
            let b = Backends {
                accounts: &shadow,
                manager: o.systemd.then_some(&manager as &dyn apply::StackManager),
                migrator: &walker,
            };
            let progress = !cli.json && std::io::stderr().is_terminal();
            if !cli.json {
                for s in &p.steps {
                    println!("{}", escape::lines(&s.to_string()));
                }
            }
            let report = apply::apply(root, &p, &b, progress)?;
            let mut failures = report.failures().len();
            let accounts_left = check::own_problems(root, &policy.shared_group.value)?;
            if !accounts_left.is_empty() {
                failures += 1;
                eprintln!(
                    "FAILED account check after apply (as pwck/grpck):\n  {}",
                    escape::lines(&accounts_left.join("\n")).replace('\n', "\n  ")
                );
            }
            if cli.json {
                print_json(&report);
            } else {
                print_report(&report);
            }
            Ok(if failures == 0 { EXIT_OK } else { EXIT_FAILURE })
        }
        Command::Status(sel) => status(root, &cli.policy, sel, cli.json),
        Command::Map { stack, id, host } => {
            map(root, &cli.policy, stack.as_deref(), *id, *host, cli.json)
        }
        Command::Rollback { stack, force } => {
            let policy = Policy::load(&cli.policy)?;
            crate::privilege::check()?;
            let _lock = RunLock::acquire(root)?;
            if !force {
                refuse_running(root, Some(&policy), stack)?;
            }
            let progress = !cli.json && std::io::stderr().is_terminal();
            let done = apply::rollback(root, stack, &Walker::new(), progress)?;
            if cli.json {
                print_json(&done);
            } else {
                for (path, s) in &done {
                    println!(
                        "rolled back {}: {} inodes seen, {} changed in {:.1}s",
                        escape::path(path),
                        s.inodes,
                        s.changed,
                        s.seconds
                    );
                }
            }
            Ok(EXIT_OK)
        }
    }
}

fn print_plan(p: &plan::Plan) {
    for n in &p.notes {
        println!("{}", escape::lines(&n.to_string()));
    }
    for s in &p.steps {
        println!("{}", escape::lines(&s.to_string()));
    }
    if p.steps.is_empty() {
        println!("nothing to do: the host matches the policy");
    } else {
        println!(
            "{} step(s); run `isolate apply` to make them",
            p.steps.len()
        );
    }
}

fn print_report(r: &apply::Report) {
    let mut done = 0;
    let mut present = 0;
    for s in &r.steps {
        match &s.outcome {
            Outcome::Done => done += 1,
            Outcome::AlreadyPresent => {
                present += 1;
                println!(
                    "= {} (already present)",
                    escape::lines(s.line.trim_start_matches(['+', '~', ' ']))
                );
            }
            Outcome::Failed { error } => {
                eprintln!(
                    "FAILED {}\n  {}",
                    escape::lines(&s.line),
                    escape::lines(error).replace('\n', "\n  ")
                )
            }
            Outcome::Skipped => {
                eprintln!(
                    "skipped {} (an earlier step of this stack failed)",
                    escape::lines(&s.line)
                )
            }
        }
        if let Some(m) = &s.summary {
            let path = match &s.step {
                plan::Step::Migrate { path, .. } => escape::path(path).into_owned(),
                _ => String::new(),
            };
            println!(
                "  {path}: {} inodes seen, {} changed, {} already right, {} outside the legacy mapping, {} bytes, {:.1}s",
                m.inodes, m.changed, m.skipped_already, m.skipped_outside, m.bytes, m.seconds
            );
            for p in &m.mounts_skipped {
                println!("  mount point skipped (not crossed): {}", escape::path(p));
            }
            for p in &m.outside_samples {
                println!(
                    "  left as is (outside the legacy mapping): {}",
                    escape::path(p)
                );
            }
        }
    }
    let failed = r.failures().len();
    println!("applied {done} step(s), {present} already present, {failed} failed");
}

/// The live probe to observe with: systemd and podman unless --no-systemd. Without a
/// reachable system bus and logind, say so instead of hanging.
fn live_probe<'a>(
    root: &'a Path,
    o: &Options,
    sd: &'a DbusSystemd,
) -> Result<Box<dyn LiveProbe + 'a>> {
    if !o.systemd {
        return Ok(Box::new(NoLiveProbe { root }));
    }
    sd.probe()?;
    Ok(Box::new(Live {
        root,
        systemd: sd,
        ping: false,
    }))
}

/// Refuses a rollback while containers of the stack or the legacy owner hold its data.
fn refuse_running(root: &Path, policy: Option<&Policy>, stack: &str) -> Result<()> {
    let state = State::read(root)?;
    let Some(rec) = state.stacks.get(stack) else {
        return Ok(());
    };
    let paths: Vec<PathBuf> = rec.migrations.iter().map(|m| m.path.clone()).collect();
    let sd = live::dbus(root);
    let live = Live {
        root,
        systemd: &sd,
        ping: false,
    };
    let acc = crate::sys::etc::Accounts::read(root)?;
    let mut owners = vec![(rec.allocation.user.as_str(), rec.allocation.uid)];
    if let Some(l) = policy
        .and_then(|p| p.legacy_owner.as_ref())
        .and_then(|l| acc.user(&l.value))
    {
        owners.push((l.name.as_str(), l.uid));
    }
    let holders = observe::holders(root, &acc, &live, &owners, &paths);
    if holders.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "containers are running on the data of `{stack}`: {}; stop them first (or pass --force)",
        holders
            .iter()
            .map(|c| format!("{} (of {}) on {}", c.name, c.owner, c.data_path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// One stack's line in `status`.
#[derive(serde::Serialize)]
struct StackStatus {
    stack: String,
    user: String,
    uid: u32,
    gid: u32,
    subids: crate::ids::SubidRange,
    /// Recorded in the state file (apply ran for it).
    applied: bool,
    in_policy: bool,
    user_exists: bool,
    linger: bool,
    manager_active: Option<bool>,
    socket_enabled: Option<bool>,
    socket_active: Option<bool>,
    socket: PathBuf,
    ping: Option<bool>,
    env: std::collections::BTreeMap<&'static str, String>,
    migrations: Vec<serde_json::Value>,
}

fn status(root: &Path, policy_file: &Path, sel: &Selection, json: bool) -> Result<i32> {
    let policy = Policy::load(policy_file)?;
    let o = opts(sel, false);
    plan::check_selection(&policy, &o)?;
    let state = State::read(root)?;
    let acc = crate::sys::etc::Accounts::read(root)?;
    let known = known_allocations(Some(&policy), &acc, &state, &o.stacks);
    let sd = live::dbus(root);
    let systemd = o.systemd && sd.probe().is_ok();
    let live = Live {
        root,
        systemd: &sd,
        ping: true,
    };
    let mut names: Vec<String> = policy.stacks.keys().cloned().collect();
    names.extend(
        state
            .stacks
            .keys()
            .filter(|n| !policy.stacks.contains_key(*n))
            .cloned(),
    );
    let mut out = Vec::new();
    for name in names
        .into_iter()
        .filter(|n| o.stacks.is_empty() || o.stacks.contains(n))
    {
        let Some((a, applied)) = known.get(&name).cloned() else {
            continue;
        };
        let facts = if systemd {
            live.manager(&a.user, a.uid)
        } else {
            NoLiveProbe { root }.manager(&a.user, a.uid)
        };
        let socket = plan::socket_path(a.uid);
        let runtime = format!("/run/user/{}", a.uid);
        let host = format!("unix://{}", socket.display());
        let env = [
            ("XDG_RUNTIME_DIR", runtime),
            ("DOCKER_HOST", host.clone()),
            ("CONTAINER_HOST", host),
        ]
        .into_iter()
        .collect();
        let migrations = state
            .stacks
            .get(&name)
            .map(|r| {
                r.migrations
                    .iter()
                    .map(|m| serde_json::json!({"path": m.path, "mode": m.mode, "phase": m.phase}))
                    .collect()
            })
            .unwrap_or_default();
        out.push(StackStatus {
            in_policy: policy.stacks.contains_key(&name),
            stack: name,
            user_exists: acc.user(&a.user).is_some_and(|u| u.uid == a.uid),
            user: a.user,
            uid: a.uid,
            gid: a.gid,
            subids: a.subids,
            applied,
            linger: facts.linger,
            manager_active: systemd.then_some(facts.manager_active),
            socket_enabled: systemd.then_some(facts.socket_enabled),
            socket_active: systemd.then_some(facts.socket_active),
            socket,
            ping: systemd.then_some(facts.ping_ok),
            env,
            migrations,
        });
    }
    if json {
        print_json(&serde_json::json!({ "systemd": systemd, "stacks": out }));
        return Ok(EXIT_OK);
    }
    if !systemd {
        println!("(no system bus or logind reachable: user manager and socket not checked)");
    }
    let yn = |b: Option<bool>, yes: &str, no: &str| match b {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => "unknown".to_string(),
    };
    for s in &out {
        println!(
            "{}: user {} uid {} gid {}, subordinate ids {}{}{}",
            escape::text(&s.stack),
            escape::text(&s.user),
            s.uid,
            s.gid,
            s.subids,
            if s.applied { "" } else { " (not applied yet)" },
            if s.in_policy {
                ""
            } else {
                " (no longer in the policy)"
            }
        );
        println!(
            "  linger {}, user manager {}, podman.socket {}, _ping {}",
            if s.linger { "on" } else { "off" },
            yn(s.manager_active, "active", "inactive"),
            yn(s.socket_active, "active", "inactive"),
            yn(s.ping, "OK", "no answer")
        );
        println!("  socket {}", escape::path(&s.socket));
        println!(
            "  env {}",
            s.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for m in &s.migrations {
            println!(
                "  data {} ({}, {})",
                escape::text(m["path"].as_str().unwrap_or("?")),
                m["mode"].as_str().unwrap_or("?"),
                m["phase"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(EXIT_OK)
}

/// Every stack's allocation with whether it is recorded (applied): the state file's, then the
/// ones apply would make for the policy's other stacks (limited to `stacks` when given).
fn known_allocations(
    policy: Option<&Policy>,
    acc: &crate::sys::etc::Accounts,
    state: &State,
    stacks: &[String],
) -> std::collections::BTreeMap<String, (crate::state::Allocation, bool)> {
    let mut out: std::collections::BTreeMap<_, _> = state
        .stacks
        .iter()
        .map(|(n, r)| (n.clone(), (r.allocation.clone(), true)))
        .collect();
    if let Some(planned) = policy.and_then(|p| crate::alloc::allocate(p, acc, state, stacks).ok()) {
        for (n, a) in planned {
            out.entry(n).or_insert((a.allocation, false));
        }
    }
    out
}

/// `map STACK ID` and `map --host ID`, from the recorded allocations (or the ones apply would make).
fn map(
    root: &Path,
    policy_file: &Path,
    stack: Option<&str>,
    id: Option<u32>,
    host: Option<u32>,
    json: bool,
) -> Result<i32> {
    let state = State::read(root)?;
    let policy = Some(Policy::load(policy_file)?);
    let acc = crate::sys::etc::Accounts::read(root)?;
    let allocs = known_allocations(policy.as_ref(), &acc, &state, &[]);
    if let Some(h) = host {
        let mut found = Vec::new();
        for (n, (a, recorded)) in &allocs {
            let m = plan::stack_maps(a);
            let (u, g) = (m.uid.to_container(h), m.gid.to_container(h));
            if u.is_some() || g.is_some() {
                found.push(serde_json::json!({"stack": n, "user": a.user, "container_uid": u, "container_gid": g, "applied": recorded}));
            }
        }
        if let Some(l) = policy.as_ref().and_then(|p| {
            plan::legacy_maps(p, &acc).map(|m| (p.legacy_owner.clone().unwrap().value, m))
        }) {
            let (u, g) = (l.1.uid.to_container(h), l.1.gid.to_container(h));
            if u.is_some() || g.is_some() {
                found.push(serde_json::json!({"legacy_owner": l.0, "container_uid": u, "container_gid": g}));
            }
        }
        if json {
            print_json(&found);
        } else if found.is_empty() {
            println!("host id {h} belongs to no stack's mapping");
        } else {
            for f in &found {
                let who = f
                    .get("stack")
                    .or(f.get("legacy_owner"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                let kind = if f.get("stack").is_some() {
                    "stack"
                } else {
                    "legacy owner"
                };
                let show =
                    |v: &serde_json::Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
                println!(
                    "{kind} {who}: container uid {} gid {}",
                    show(&f["container_uid"]),
                    show(&f["container_gid"])
                );
            }
        }
        return Ok(EXIT_OK);
    }
    let (stack, id) = (stack.unwrap_or_default(), id.unwrap_or_default());
    let Some((a, recorded)) = allocs.get(stack) else {
        return Err(Error::Usage(format!(
            "no stack `{stack}` in the state file or the policy"
        )));
    };
    let m = plan::stack_maps(a);
    let (u, g) = (m.uid.to_host(id), m.gid.to_host(id));
    if u.is_none() {
        return Err(Error::Usage(format!(
            "container id {id} does not exist in stack `{stack}` (ids 0 to {})",
            a.subids.count
        )));
    }
    if json {
        print_json(
            &serde_json::json!({"stack": stack, "container_id": id, "host_uid": u, "host_gid": g, "applied": recorded}),
        );
    } else {
        println!(
            "host uid {} gid {}{}",
            u.unwrap(),
            g.unwrap(),
            if *recorded { "" } else { " (not applied yet)" }
        );
    }
    Ok(EXIT_OK)
}
