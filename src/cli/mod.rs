//! The command line: parse arguments, then for each command gather -> core -> render. The only
//! place real backends are built. Errors map to exit codes 0/1/2 in `main`.
mod args;
pub mod generate;

pub use args::{AuditArgs, AuditPart, Cli, Command, ExportTarget, FailOn, Selection};

use crate::accounts::check;
use crate::apply::{self, Backends, Walker};
use crate::error::{Error, Result, EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};
use crate::host::accounts::{Accounts, Shadow};
use crate::host::podman::ApiSockets;
use crate::host::procs::RealProcs;
use crate::host::session::Session;
use crate::host::systemd::DbusSystemd;
use crate::layout::Root;
use crate::model::escape;
use crate::observe::{self, Live};
use crate::plan::{self, Options};
use crate::policy::Policy;
use crate::render::{self, text::HostIdOwners, Format};
use crate::state::{RunLock, State};
use crate::walk::sys::RealSys;
use clap::Parser;
use std::io::IsTerminal;

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
    crate::logging::init(crate::logging::Verbosity {
        verbose: cli.verbose,
        quiet: cli.quiet,
    });
    let format = cli.format();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if format == Format::Json {
                let msg =
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
                println!("{msg}");
            }
            eprintln!("{}", render::refusal_lines(&e.to_string()));
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

/// The real kernel probes observe reads through.
fn probes(sys: &RealSys) -> observe::Probes<'_> {
    observe::Probes {
        procs: &RealProcs,
        sys,
        acl: &crate::isolation::fs::RealAclProbe,
        quota: &crate::quota::real::RealQuota,
    }
}

fn print<T: render::Render + ?Sized>(format: Format, value: &T) -> Result<()> {
    render::print(format, value).map_err(|e| Error::io("writing the output", e))
}

pub fn run(cli: Cli) -> Result<i32> {
    crate::walk::threads::configure(cli.threads.map(usize::from))?;
    let root = Root::new(&cli.root);
    let format = cli.format();
    if format == Format::Prometheus && !matches!(cli.command, Command::Audit(_)) {
        return Err(Error::Usage(
            "--format prometheus is only for `isolate audit`".to_string(),
        ));
    }
    match &cli.command {
        Command::Plan(sel) => {
            let policy = Policy::load(&cli.policy)?;
            let o = opts(sel, false);
            let sd = DbusSystemd::new(&root);
            let podman = ApiSockets { root: &root };
            let live = session(&root, &o, &sd, &podman)?;
            let sys = RealSys::new();
            let (obs, allocs) = observe::observe(&root, &policy, &o, &live, &probes(&sys))?;
            let (p, refusals) = plan::preview_allocated(&policy, &obs, &allocs, &o)?;
            for s in &p.steps {
                let _span = crate::plan::step_span(s).entered();
                tracing::info!("planned: {s}");
            }
            render::plan_preview::print(format, &p, &refusals)
                .map_err(|e| Error::io("writing the output", e))
        }
        Command::Apply { sel, force } => {
            let policy = Policy::load(&cli.policy)?;
            crate::privilege::check()?;
            let _lock = RunLock::acquire(&root)?;
            // Before planning: finish what a killed earlier run left in isolate's accounts.
            let own = State::read(&root)?.own_names(Some(&policy.shared_group.value));
            for line in check::repair_or_refuse(&root, &own, &Shadow::new(&root))? {
                // Only text output has room for it on stdout; JSON and metrics stay parseable.
                if format == Format::Text {
                    println!("{}", escape::lines(&line));
                } else {
                    eprintln!("{}", escape::lines(&line));
                }
            }
            let o = opts(sel, *force);
            let sd = DbusSystemd::new(&root);
            let podman = ApiSockets { root: &root };
            let live = session(&root, &o, &sd, &podman)?;
            let sys = RealSys::new();
            let (obs, allocs) = observe::observe(&root, &policy, &o, &live, &probes(&sys))?;
            let p = plan::plan_allocated(&policy, &obs, &allocs, &o)?;
            if let Some(refusal) = p.nixos_refusal() {
                return Err(refusal);
            }
            if p.steps.is_empty() {
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"steps": [], "notes": p.notes})
                        )
                        .expect("serialisable")
                    ),
                    Format::Text | Format::Prometheus => {
                        println!("nothing to do: the host matches the policy")
                    }
                }
                return Ok(EXIT_OK);
            }
            let shadow = Shadow::new(&root);
            let walker = Walker::locking(*force);
            let walk_sys = crate::walk::sys::RealSys::new();
            let legacy_compose = crate::reach::legacy_run::RunAsUser { root: &root };
            let b = Backends {
                accounts: &shadow,
                session: o.systemd.then_some(Session {
                    systemd: &sd,
                    podman: &podman,
                }),
                migrator: &walker,
                walk_sys: &walk_sys,
                acl_probe: &crate::isolation::fs::RealAclProbe,
                compose: o.systemd.then_some(&legacy_compose as _),
                quota: &crate::quota::real::RealQuota,
            };
            let progress = format == Format::Text && !cli.quiet && std::io::stderr().is_terminal();
            if format == Format::Text {
                for s in &p.steps {
                    println!("{}", escape::lines(&s.to_string()));
                }
            }
            crate::logging::narrate::enable(
                format == Format::Text && !cli.quiet,
                std::io::stderr().is_terminal(),
            );
            let report = apply::apply(&root, &p, &b, progress)?;
            print(format, &report)?;
            let accounts_left = check::own_problems(
                &root,
                &State::read(&root)?.own_names(Some(&policy.shared_group.value)),
            )?;
            if !accounts_left.is_empty() {
                eprintln!(
                    "FAILED account check after apply (as pwck/grpck):\n  {}",
                    escape::lines(&accounts_left.join("\n")).replace('\n', "\n  ")
                );
            }
            Ok(
                if report.failures().is_empty() && accounts_left.is_empty() {
                    EXIT_OK
                } else {
                    EXIT_FAILURE
                },
            )
        }
        Command::Init {
            compose,
            env,
            legacy_owner,
            quadlets,
        } => {
            let draft = crate::init::run(&crate::init::Request {
                root: &root,
                compose,
                env,
                legacy_owner: legacy_owner.as_deref(),
                quadlets,
            })?;
            print!("{draft}");
            Ok(EXIT_OK)
        }
        Command::Export {
            target: ExportTarget::Nixos { output },
        } => {
            let summary = crate::export::run_nixos(
                &root,
                &cli.policy,
                output.as_deref(),
                &crate::export::units::compose_units,
            )?;
            eprintln!("isolate: {summary}");
            Ok(EXIT_OK)
        }
        Command::Status { sel, unit: true } => {
            let policy = Policy::load(&cli.policy)?;
            let o = opts(sel, false);
            crate::plan::check_selection(&policy, &o)?;
            let state = State::read(&root)?;
            let mut text = String::new();
            for s in crate::plan::selected(&policy, &o) {
                let rec = state.stacks.get(&s.name).ok_or_else(|| {
                    Error::Usage(format!(
                        "stack `{}` has no user yet: run `isolate apply --stack {}` first",
                        s.name, s.name
                    ))
                })?;
                text.push_str(&crate::handoff::service::render_dropin(s, &rec.allocation));
                text.push('\n');
            }
            print!("{text}");
            Ok(EXIT_OK)
        }
        Command::Status { sel, unit: false } => {
            let policy = Policy::load(&cli.policy)?;
            let o = opts(sel, false);
            let sd = DbusSystemd::new(&root);
            let podman = ApiSockets { root: &root };
            let reachable = o.systemd && sd.probe().is_ok();
            let live = Live {
                root: &root,
                session: reachable.then_some(Session {
                    systemd: &sd,
                    podman: &podman,
                }),
                ping: true,
            };
            let status = crate::status::gather(&root, &policy, &o, &live, &RealSys::new())?;
            for s in &status.stacks {
                crate::logging::stack_span(&s.stack).in_scope(|| {
                    tracing::info!(
                        linger = s.linger,
                        manager_active = s.manager_active,
                        socket_active = s.socket_active,
                        ping = s.ping,
                        "user {} uid {}, subordinate ids {}",
                        s.user,
                        s.uid,
                        s.subids
                    )
                });
            }
            print(format, &status)?;
            Ok(EXIT_OK)
        }
        Command::Generate { what, path } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let files = generate::generate(*what, cmd, path)
                .map_err(|e| Error::io(format!("writing {what:?} into {}", path.display()), e))?;
            for file in files {
                println!("{}", file.display());
            }
            Ok(EXIT_OK)
        }
        Command::CompleteStacks => {
            // Completion must stay quiet: a broken or unreadable policy offers nothing.
            if let Ok(policy) = Policy::load(&cli.policy) {
                for name in policy.stacks.keys() {
                    println!("{name}");
                }
            }
            Ok(EXIT_OK)
        }
        Command::Logs {
            stack,
            service,
            follow,
            since,
            lines,
        } => logs(
            &root,
            format,
            stack,
            service.as_deref(),
            *follow,
            since,
            *lines,
        ),
        Command::Ps { stacks } => {
            let state = State::read(&root)?;
            let listing = crate::stacks::ps::gather(
                &root,
                &state,
                stacks,
                &crate::stacks::ps::Socket {
                    timeout: std::time::Duration::from_secs(10),
                },
            )?;
            print(format, &listing)?;
            Ok(EXIT_OK)
        }
        Command::Exec { stack, command } => {
            crate::privilege::check()?;
            let (_, user) = crate::stacks::recorded(&root, stack)?;
            let acc = Accounts::read(&root)?;
            let inherited = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .collect();
            let who = crate::stacks::exec::identity(&root, &acc, &user, &inherited);
            crate::stacks::exec::run(&who, command)
        }
        Command::Map { stack, id, host } => {
            let policy = load_if_present(&cli.policy)?;
            if let Some(host) = host {
                let owners = crate::idmap::from_host(&root, policy.as_ref(), *host)?;
                print(
                    format,
                    &HostIdOwners {
                        host: *host,
                        owners,
                    },
                )?;
            } else {
                let (stack, id) = (stack.as_deref().unwrap_or_default(), id.unwrap_or_default());
                print(
                    format,
                    &crate::idmap::to_host(&root, policy.as_ref(), stack, id)?,
                )?;
            }
            Ok(EXIT_OK)
        }
        Command::Audit(args) => audit(&root, &cli.policy, args, format),
        Command::Rollback {
            share: Some(share), ..
        } => {
            let policy = load_if_present(&cli.policy)?;
            crate::privilege::check()?;
            let _lock = RunLock::acquire(&root)?;
            let done = crate::ops::rollback::share(
                &root,
                policy.as_ref(),
                share,
                &crate::walk::sys::RealSys::new(),
                &crate::isolation::fs::RealAclProbe,
            )?;
            print(format, &done)?;
            Ok(EXIT_OK)
        }
        Command::Rollback { stack: None, .. } => Err(Error::Usage(
            "rollback needs --stack NAME or --share NAME".into(),
        )),
        Command::Rollback {
            stack: Some(stack),
            force,
            ..
        } => {
            let policy = load_if_present(&cli.policy)?;
            crate::privilege::check()?;
            let _lock = RunLock::acquire(&root)?;
            let sd = DbusSystemd::new(&root);
            let podman = ApiSockets { root: &root };
            let session = Session {
                systemd: &sd,
                podman: &podman,
            };
            let live = Live {
                root: &root,
                session: Some(session),
                ping: false,
            };
            let progress = format == Format::Text && !cli.quiet && std::io::stderr().is_terminal();
            let backends = crate::ops::rollback::StackBackends {
                live: &live,
                migrator: &Walker::locking(*force),
                walk_sys: &crate::walk::sys::RealSys::new(),
                compose: &crate::reach::legacy_run::RunAsUser { root: &root },
                quota: &crate::quota::real::RealQuota,
            };
            let done = crate::ops::rollback::stack(
                &root,
                policy.as_ref(),
                stack,
                *force,
                progress,
                &backends,
            )?;
            print(format, &done)?;
            Ok(EXIT_OK)
        }
    }
}

/// `logs`: journalctl with the stack's matches replaces isolate (a SERVICE is first turned into
/// its containers' names through the stack's podman socket).
fn logs(
    root: &Root,
    format: Format,
    stack: &str,
    service: Option<&str>,
    follow: bool,
    since: &Option<String>,
    lines: Option<u32>,
) -> Result<i32> {
    use crate::stacks::{logs, ps};
    let (alloc, _) = crate::stacks::recorded(root, stack)?;
    let names = match service {
        None => None,
        Some(service) => {
            let socket = root.podman_socket(alloc.uid);
            let all = ps::Lister::list(
                &ps::Socket {
                    timeout: std::time::Duration::from_secs(10),
                },
                &socket,
            )?;
            let names: Vec<String> = all
                .iter()
                .filter(|c| c.service.as_deref() == Some(service))
                .map(|c| c.name.clone())
                .collect();
            if names.is_empty() {
                let mut known: Vec<&str> =
                    all.iter().filter_map(|c| c.service.as_deref()).collect();
                known.sort_unstable();
                known.dedup();
                return Err(Error::Usage(format!(
                    "stack `{stack}` has no container of service `{service}` (services: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            Some(names)
        }
    };
    let req = logs::Request {
        follow,
        since: since.clone(),
        lines,
        json: format == Format::Json,
        root: (!root.is_host()).then(|| root.path().to_path_buf()),
    };
    let args = logs::journalctl_args(&alloc, names.as_deref(), &req);
    Err(logs::exec_journalctl(&args))
}

/// `audit`: reads the policy, the host's accounts and state, asks systemd and podman when a
/// system bus answers, walks every path read-only and renders the report.
fn audit(
    root: &Root,
    policy_file: &std::path::Path,
    args: &AuditArgs,
    format: Format,
) -> Result<i32> {
    use crate::audit::model::Severity;
    use crate::audit::run;
    let policy = Policy::load(policy_file)?;
    if args.only == Some(AuditPart::Usage) {
        let usage = run::slices_only(root, &policy, &args.stacks)?;
        let text = match format {
            Format::Text => render::usage_text::render(&usage),
            Format::Json => serde_json::to_string_pretty(&usage).expect("serialisable") + "\n",
            Format::Prometheus => {
                let mut out = String::new();
                render::prometheus_usage::usage(&usage, &mut out);
                out
            }
        };
        emit(args.output.as_deref(), &text)?;
        return Ok(EXIT_OK);
    }
    let state = State::read(root)?;
    let accounts = Accounts::read(root)?;
    let isolation = crate::isolation::record::Record::read(root)?;
    let sd = DbusSystemd::new(root);
    let podman = ApiSockets { root };
    let live = run::SessionCheck {
        root,
        session: sd.probe().is_ok().then_some(Session {
            systemd: &sd,
            podman: &podman,
        }),
    };
    let host = run::Host {
        root,
        accounts: &accounts,
        state: &state,
        isolation: &isolation,
        live: &live,
    };
    let mut report = run::audit(
        &crate::walk::sys::RealSys::new(),
        &policy,
        &host,
        &args.stacks,
    )?;
    let net = crate::reach::audit::ProcNet {
        root: root.path().to_path_buf(),
        timeout: std::time::Duration::from_secs(3),
    };
    let selected = |s: &str| args.stacks.is_empty() || args.stacks.iter().any(|x| x == s);
    let any_reach = policy.stacks.values().any(|s| !s.reaches.is_empty());
    let net_kind = crate::reach::Networking::for_podman(
        any_reach.then(crate::reach::plan::podman_major).flatten(),
    );
    report.reaches = crate::reach::audit::check(root, &policy, &state, &net, net_kind, &selected);
    if args.skip == Some(AuditPart::Usage) {
        report.usage = None;
    }
    crate::audit::records::record_audit(&report);
    let text = match format {
        Format::Text => render::audit_text::render(&report),
        Format::Json => serde_json::to_string_pretty(&report).expect("serialisable") + "\n",
        Format::Prometheus => render::prometheus::render(&report),
    };
    emit(args.output.as_deref(), &text)?;
    let fail_on = match args.fail_on {
        FailOn::Info => Severity::Info,
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    Ok(if report.fails(fail_on) {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

/// Writes `text` to `output` atomically, or to stdout.
fn emit(output: Option<&std::path::Path>, text: &str) -> Result<()> {
    match output {
        Some(file) => crate::host::files::write_atomic(file, text.as_bytes(), 0o644),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| Error::io("writing the output", e))
        }
    }
}

/// The policy when its file exists: rollback and map work from the state file alone, but a
/// policy that exists and is broken is bad input, as for every other command.
fn load_if_present(file: &std::path::Path) -> Result<Option<Policy>> {
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => Policy::load(file).map(Some),
    }
}

/// The session to observe with: systemd and podman unless --no-systemd. Without a reachable
/// system bus and logind, say so instead of hanging.
fn session<'a>(
    root: &'a Root,
    o: &Options,
    sd: &'a DbusSystemd,
    podman: &'a ApiSockets<'a>,
) -> Result<Live<'a>> {
    if !o.systemd {
        return Ok(Live::offline(root));
    }
    sd.probe()?;
    Ok(Live {
        root,
        session: Some(Session {
            systemd: sd,
            podman,
        }),
        ping: false,
    })
}
