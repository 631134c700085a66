//! The audit as text for a terminal: per path its owners, the access matrix beside the
//! policy, then the findings. Every name printed goes through `escape`, the one escaper.
use crate::audit::model::{Owner, OwnerRow, PathKind, Report};
use crate::model::escape;
use std::fmt::Write;

/// How many owner rows per id kind a path shows (JSON has them all).
const ROWS: usize = 8;

fn owner_text(o: &Owner) -> String {
    match o {
        Owner::Stack {
            stack,
            container_id,
        } => format!("stack {stack}:{container_id}"),
        Owner::Legacy {
            owner,
            container_id,
        } => format!("legacy {owner}:{container_id}"),
        Owner::OtherStack {
            stack,
            container_id,
        } => {
            format!("OTHER STACK {stack}:{container_id}")
        }
        Owner::Host { name } => format!("host {name}"),
        Owner::Unmapped => "unmapped".to_string(),
    }
}

pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn safe(s: &str) -> String {
    escape::text(s).into_owned()
}

fn rows(out: &mut String, id: &str, rows: &[OwnerRow]) {
    for r in rows.iter().take(ROWS) {
        let _ = writeln!(
            out,
            "    {id}  {:>10}  {:<28} {:>10}  {:>10}",
            r.host_id,
            safe(&owner_text(&r.owner)),
            r.inodes,
            bytes(r.bytes)
        );
    }
    if rows.len() > ROWS {
        let _ = writeln!(
            out,
            "    {id}  ... {} more ids (see --format json)",
            rows.len() - ROWS
        );
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let worst = report.worst().map_or("none", |s| s.name());
    let _ = writeln!(
        out,
        "isolate audit: {} path(s), {} finding(s), worst {worst}, {:.1}s",
        report.paths.len(),
        report.findings.len(),
        report.duration_seconds
    );
    let _ = writeln!(out, "\nOWNERS");
    for p in &report.paths {
        let whose = match (p.kind, &p.stack, &p.share) {
            (PathKind::Data, Some(s), _) => format!("data of {}", safe(s)),
            (_, _, Some(s)) => format!("share {}", safe(s)),
            _ => "?".to_string(),
        };
        if !p.walked {
            let _ = writeln!(
                out,
                "  {} ({whose}): not walked (see findings)",
                safe(&p.path)
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {} ({whose}): {} inodes, {}",
            safe(&p.path),
            p.inodes,
            bytes(p.bytes)
        );
        let _ = writeln!(
            out,
            "    id  {:>10}  {:<28} {:>10}  {:>10}",
            "host id", "owner", "inodes", "bytes"
        );
        rows(&mut out, "uid", &p.uids);
        rows(&mut out, "gid", &p.gids);
    }
    let _ = writeln!(
        out,
        "\nACCESS (predicted from modes and ACLs / intended by the policy)"
    );
    let _ = writeln!(
        out,
        "  {:<16} {:<40} {:<9} {:<9}",
        "STACK", "PATH", "PREDICTED", "INTENDED"
    );
    for c in &report.matrix {
        let mark = match c.predicted.cmp(&c.intended) {
            std::cmp::Ordering::Greater => "  <- more than the policy grants",
            std::cmp::Ordering::Less => "  <- less than the policy grants",
            std::cmp::Ordering::Equal => "",
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<40} {:<9} {:<9}{mark}",
            safe(&c.stack),
            format!("{} ({})", safe(&c.path), c.kind.name()),
            c.predicted.name(),
            c.intended.name()
        );
    }
    if !report.reaches.is_empty() {
        let _ = writeln!(
            out,
            "\nREACHES (declared paths, a TCP connect from the reaching stack's network namespace)"
        );
        for c in &report.reaches {
            let verdict = match c.answers {
                Some(true) => "answers",
                Some(false) => "DOES NOT ANSWER",
                None => "not tried",
            };
            let port = c
                .host_port
                .map_or(String::new(), |p| format!(" (host port {p})"));
            let _ = writeln!(
                out,
                "  reach {} -> {}{port}: {verdict}: {}",
                safe(&c.stack),
                safe(&c.reach),
                safe(&c.detail)
            );
        }
    }
    super::usage_text::disk(&mut out, &report.disk);
    if let Some(u) = &report.usage {
        let _ = writeln!(out, "\nUSAGE (each stack's slice, cgroup v2)");
        for s in &u.stacks {
            let _ = writeln!(
                out,
                "  {:<16} {}",
                safe(&s.stack),
                super::usage_text::slice_line(&s.slice)
            );
        }
    }
    let _ = writeln!(out, "\nFINDINGS");
    if report.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "  {:<7}  {:<22} {:<12} {:>8}  {}",
            f.severity.name(),
            f.kind.name(),
            f.stack.as_deref().map_or("-".to_string(), safe),
            f.count,
            f.detail
        );
        // Samples and details are made printable when the report is built.
        for s in &f.samples {
            let _ = writeln!(out, "           e.g. {s}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_every_section_and_escapes_paths() {
        let text = render(&crate::render::prometheus::tests::sample_report());
        assert!(text.contains("OWNERS\n  /srv/im\"m\\\\ich\\x0a (data of immich): 3 inodes"));
        assert!(text.contains("/srv/media (share)"));
        assert!(text.contains("<- less than the policy grants"));
        assert!(text.contains("  error    subid_overlap"));
        assert!(!text.contains("ich\n"), "no raw newline from a path");
    }
}
