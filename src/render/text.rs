//! The text form of each command's output: plan lines, apply and rollback reports, status and
//! id translations.
use super::Render;
use crate::apply::{Outcome, Report, RollbackReport};
use crate::idmap::{HostIdOwner, ToHost};
use crate::model::escape;
use crate::plan::{Plan, Step};
use crate::status::Status;
use std::io::{Result, Write};

impl Render for Plan {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        for n in &self.notes {
            writeln!(out, "{}", escape::lines(&n.to_string()))?;
        }
        for s in &self.steps {
            writeln!(out, "{}", escape::lines(&s.to_string()))?;
        }
        if self.steps.is_empty() {
            writeln!(out, "nothing to do: the host matches the policy")
        } else {
            writeln!(
                out,
                "{} step(s); run `isolate apply` to make them",
                self.steps.len()
            )
        }
    }
}

impl Render for Report {
    /// The summary after the steps (which were printed as they were planned). Failures and
    /// skips are printed too, so the whole story is in one place.
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let mut done = 0;
        let mut present = 0;
        for s in &self.steps {
            match &s.outcome {
                Outcome::Done => done += 1,
                Outcome::AlreadyPresent => {
                    present += 1;
                    writeln!(
                        out,
                        "= {} (already present)",
                        escape::lines(s.line.trim_start_matches(['+', '~', ' ']))
                    )?;
                }
                Outcome::Failed { error } => writeln!(
                    out,
                    "FAILED {}\n  {}",
                    escape::lines(&s.line),
                    escape::lines(error).replace('\n', "\n  ")
                )?,
                Outcome::NotFound { detail } => writeln!(
                    out,
                    "! {}: {}",
                    escape::lines(&s.line),
                    escape::lines(detail)
                )?,
                Outcome::Skipped => writeln!(
                    out,
                    "skipped {} (an earlier step of this stack failed)",
                    escape::lines(&s.line)
                )?,
            }
            if let Some(d) = &s.isolation {
                writeln!(out, "  {}", d.line())?;
            }
            if let Some(m) = &s.summary {
                let path = match &s.step {
                    Step::Migrate { path, .. } => escape::path(path).into_owned(),
                    Step::Handoff(crate::handoff::HandoffStep::MoveVolume { name, .. }) => {
                        format!("volume {}", escape::lines(name))
                    }
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "  {path}: {} inodes seen, {} changed, {} already right, {} outside the legacy mapping, {} bytes, {:.1}s",
                    m.inodes, m.changed, m.skipped_already, m.skipped_outside, m.bytes, m.seconds
                )?;
                for p in &m.mounts_skipped {
                    writeln!(
                        out,
                        "  mount point skipped (not crossed): {}",
                        escape::path(p)
                    )?;
                }
                for p in &m.outside_samples {
                    writeln!(
                        out,
                        "  left as is (outside the legacy mapping): {}",
                        escape::path(p)
                    )?;
                }
            }
        }
        let failed = self.failures().len();
        writeln!(
            out,
            "applied {done} step(s), {present} already present, {failed} failed"
        )
    }
}

impl Render for RollbackReport {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        for (path, s) in &self.0 {
            writeln!(
                out,
                "rolled back {}: {} inodes seen, {} changed in {:.1}s",
                escape::path(path),
                s.inodes,
                s.changed,
                s.seconds
            )?;
        }
        Ok(())
    }
}

impl Render for crate::isolation::apply::ShareRollback {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(
            out,
            "rolled back share {}: {}",
            self.share,
            self.done.line()
        )
    }
}

impl Render for Status {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if !self.systemd {
            writeln!(
                out,
                "(no system bus or logind reachable: user manager and socket not checked)"
            )?;
        }
        let yn = |b: Option<bool>, yes: &str, no: &str| match b {
            Some(true) => yes.to_string(),
            Some(false) => no.to_string(),
            None => "unknown".to_string(),
        };
        for s in &self.stacks {
            writeln!(
                out,
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
            )?;
            writeln!(
                out,
                "  linger {}, user manager {}, podman.socket {}, _ping {}",
                if s.linger { "on" } else { "off" },
                yn(s.manager_active, "active", "inactive"),
                yn(s.socket_active, "active", "inactive"),
                yn(s.ping, "OK", "no answer")
            )?;
            writeln!(out, "  socket {}", escape::path(&s.socket))?;
            writeln!(
                out,
                "  env {}",
                s.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
            for m in &s.migrations {
                writeln!(
                    out,
                    "  data {} ({}, {})",
                    escape::path(&m.path),
                    m.mode.as_str(),
                    m.phase.as_str()
                )?;
            }
            for c in &s.closed {
                writeln!(out, "  {}", c.line())?;
            }
            for g in &s.grants {
                writeln!(out, "  {}", g.line())?;
            }
            for h in &s.handoff {
                writeln!(out, "  {h}")?;
            }
            if let Some(u) = &s.usage {
                writeln!(out, "  {}", super::usage_text::slice_line(u))?;
            }
        }
        Ok(())
    }
}

impl Render for ToHost {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(
            out,
            "host uid {} gid {}{}",
            self.host_uid,
            self.host_gid,
            if self.applied {
                ""
            } else {
                " (not applied yet)"
            }
        )
    }
}

/// `map --host ID`: the id and who it belongs to.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct HostIdOwners {
    #[serde(skip)]
    pub host: u32,
    pub owners: Vec<HostIdOwner>,
}

impl Render for HostIdOwners {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.owners.is_empty() {
            return writeln!(out, "host id {} belongs to no stack's mapping", self.host);
        }
        let show = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
        for o in &self.owners {
            match o {
                HostIdOwner::Stack {
                    stack,
                    container_uid,
                    container_gid,
                    ..
                } => writeln!(
                    out,
                    "stack {stack}: container uid {} gid {}",
                    show(*container_uid),
                    show(*container_gid)
                )?,
                HostIdOwner::LegacyOwner {
                    legacy_owner,
                    container_uid,
                    container_gid,
                } => writeln!(
                    out,
                    "legacy owner {legacy_owner}: container uid {} gid {}",
                    show(*container_uid),
                    show(*container_gid)
                )?,
            }
        }
        Ok(())
    }
}
