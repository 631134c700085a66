//! The audit as Prometheus text exposition (format 0.0.4) for node_exporter's textfile
//! collector: `isolate_` prefix, base units, labels of bounded cardinality (stack, share,
//! policy path, id kind, owner class, finding kind, severity — never a file's path).
use crate::audit::model::{FindingKind, PathReport, Report, Severity};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes a label value as the exposition format requires.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// One metric family: HELP and TYPE once, then its samples.
pub(super) struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    pub(super) fn gauge(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        Family::typed(out, name, help, "gauge")
    }
    pub(super) fn counter(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        Family::typed(out, name, help, "counter")
    }
    fn typed(out: &'a mut String, name: &str, help: &str, kind: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }
    pub(super) fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }
}

/// The labels naming a policy path: its path, whether data or share, and its stack or share.
fn path_labels(p: &PathReport) -> Vec<(&'static str, &str)> {
    let mut l = vec![("path", p.path.as_str()), ("kind", p.kind.name())];
    if let Some(s) = &p.stack {
        l.push(("stack", s));
    }
    if let Some(s) = &p.share {
        l.push(("share", s));
    }
    l
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for (metric, help, bytes) in [
        (
            "isolate_audit_inodes",
            "Inodes under a data path or share by owner class (stack, legacy, other_stack, host, unmapped) of their uid or gid.",
            false,
        ),
        (
            "isolate_audit_bytes",
            "Bytes of regular files under a data path or share by owner class of their uid or gid.",
            true,
        ),
    ] {
        let mut f = Family::gauge(&mut out, metric, help);
        for p in &report.paths {
            for (id, classes) in [("uid", &p.uid_classes), ("gid", &p.gid_classes)] {
                for (class, c) in classes {
                    let mut l = path_labels(p);
                    l.push(("id", id));
                    l.push(("class", class));
                    f.sample(metric, &labels(&l), if bytes { c.bytes } else { c.inodes });
                }
            }
        }
    }
    let mut f = Family::gauge(
        &mut out,
        "isolate_audit_path_walked",
        "Whether the data path or share could be walked (1) or not (0, see the unreadable finding).",
    );
    for p in &report.paths {
        f.sample(
            "isolate_audit_path_walked",
            &labels(&path_labels(p)),
            u8::from(p.walked),
        );
    }

    // Findings summed per label set (several findings may share one).
    let mut per_labels: BTreeMap<Vec<(&str, String)>, u64> = BTreeMap::new();
    for finding in &report.findings {
        let mut l = vec![
            ("kind", finding.kind.name().to_string()),
            ("severity", finding.severity.name().to_string()),
        ];
        if let Some(s) = &finding.stack {
            l.push(("stack", s.clone()));
        }
        if let Some(p) = &finding.path {
            l.push(("path", p.clone()));
        }
        *per_labels.entry(l).or_default() += finding.count;
    }
    let mut f = Family::gauge(
        &mut out,
        "isolate_audit_findings",
        "Inodes, entries or lines a finding concerns, per finding kind, severity, stack and policy path.",
    );
    for (l, count) in &per_labels {
        let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.sample("isolate_audit_findings", &labels(&pairs), count);
    }
    let mut f = Family::gauge(
        &mut out,
        "isolate_audit_findings_by_kind",
        "Findings of each kind over the whole audit (0 when none), for alerting.",
    );
    for kind in FindingKind::ALL {
        let n = report.findings.iter().filter(|x| x.kind == kind).count();
        let l = labels(&[("kind", kind.name()), ("severity", kind.severity().name())]);
        f.sample("isolate_audit_findings_by_kind", &l, n);
    }

    for (metric, help, intended) in [
        (
            "isolate_audit_access",
            "Access a stack's processes have to a policy path, predicted from modes and ACLs along the path: 0 none, 1 read, 2 write.",
            false,
        ),
        (
            "isolate_audit_access_intended",
            "Access the policy intends a stack to have to a policy path: 0 none, 1 read, 2 write.",
            true,
        ),
    ] {
        let mut f = Family::gauge(&mut out, metric, help);
        for c in &report.matrix {
            let l = labels(&[
                ("stack", c.stack.as_str()),
                ("path", c.path.as_str()),
                ("kind", c.kind.name()),
            ]);
            let v = if intended { c.intended } else { c.predicted };
            f.sample(metric, &l, v.level());
        }
    }
    super::prometheus_usage::disk(&report.disk, &mut out);
    if let Some(u) = &report.usage {
        super::prometheus_usage::usage(u, &mut out);
    }
    let worst = report.worst().map_or(-1, |s: Severity| s as i64);
    Family::gauge(
        &mut out,
        "isolate_audit_worst_severity",
        "The worst finding's severity: -1 none, 0 info, 1 warning, 2 error.",
    )
    .sample("isolate_audit_worst_severity", "", worst);
    Family::gauge(
        &mut out,
        "isolate_audit_last_completion_timestamp_seconds",
        "Unix time the last audit completed.",
    )
    .sample(
        "isolate_audit_last_completion_timestamp_seconds",
        "",
        format!("{:.3}", report.completed_at),
    );
    Family::gauge(
        &mut out,
        "isolate_audit_duration_seconds",
        "How long the last audit took.",
    )
    .sample(
        "isolate_audit_duration_seconds",
        "",
        format!("{:.3}", report.duration_seconds),
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::model::*;

    /// A report with every section filled and awkward label values.
    pub(crate) fn sample_report() -> Report {
        let counts = |inodes, bytes| Counts { inodes, bytes };
        Report {
            schema_version: SCHEMA_VERSION,
            completed_at: 1_700_000_000.5,
            duration_seconds: 1.25,
            legacy_owner: Some("alice".into()),
            stacks: vec![],
            paths: vec![
                PathReport {
                    path: "/srv/im\"m\\ich\n".into(),
                    kind: PathKind::Data,
                    stack: Some("immich".into()),
                    share: None,
                    walked: true,
                    inodes: 3,
                    bytes: 10,
                    uid_classes: [
                        ("stack".to_string(), counts(2, 10)),
                        ("legacy".to_string(), counts(1, 0)),
                    ]
                    .into(),
                    gid_classes: [("stack".to_string(), counts(3, 10))].into(),
                    uids: vec![],
                    gids: vec![],
                },
                PathReport {
                    path: "/srv/media".into(),
                    kind: PathKind::Share,
                    stack: None,
                    share: Some("media".into()),
                    walked: false,
                    inodes: 0,
                    bytes: 0,
                    uid_classes: BTreeMap::new(),
                    gid_classes: BTreeMap::new(),
                    uids: vec![],
                    gids: vec![],
                },
            ],
            matrix: vec![MatrixCell {
                stack: "immich".into(),
                path: "/srv/media".into(),
                kind: PathKind::Share,
                predicted: Access::Read,
                intended: Access::Write,
                via_container_uid: Some(0),
            }],
            findings: vec![
                Finding {
                    kind: FindingKind::SubidOverlap,
                    severity: Severity::Error,
                    stack: None,
                    path: None,
                    count: 2,
                    samples: vec![],
                    detail: "x".into(),
                },
                Finding {
                    kind: FindingKind::AccessBelowPolicy,
                    severity: Severity::Warning,
                    stack: Some("immich".into()),
                    path: Some("/srv/media".into()),
                    count: 1,
                    samples: vec![],
                    detail: "y".into(),
                },
            ],
            reaches: vec![],
            disk: crate::render::prometheus_usage::tests::sample_disk(),
            usage: Some(crate::render::prometheus_usage::tests::sample_usage()),
        }
    }

    #[test]
    fn families_have_help_and_type_and_labels_are_escaped() {
        let text = render(&sample_report());
        assert!(text.contains("# TYPE isolate_audit_inodes gauge\n"));
        assert!(text.contains(
            "isolate_audit_inodes{path=\"/srv/im\\\"m\\\\ich\\n\",kind=\"data\",stack=\"immich\",id=\"uid\",class=\"legacy\"} 1\n"
        ));
        assert!(
            text.contains("isolate_audit_findings{kind=\"subid_overlap\",severity=\"error\"} 2\n")
        );
        assert!(text.contains(
            "isolate_audit_access{stack=\"immich\",path=\"/srv/media\",kind=\"share\"} 1\n"
        ));
        assert!(text.contains("isolate_audit_last_completion_timestamp_seconds 1700000000.500\n"));
        assert!(text.contains("isolate_audit_worst_severity 2\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("isolate_"), "{line}");
        }
    }

    /// promtool (Debian package `prometheus`, installed by scripts/install-deps) parses and
    /// lints the output: a real parser, not our own reading of the format.
    #[test]
    fn promtool_accepts_the_output() {
        promtool_check(&render(&sample_report()));
    }

    /// Runs `promtool check metrics` on `text` and fails the test on any complaint.
    pub(crate) fn promtool_check(text: &str) {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs (scripts/install-deps installs package prometheus)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
