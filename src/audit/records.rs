//! The audit's records for the journal: the report is the output, these are its trace.
use crate::logging::stack_span;

/// An audit's records for the journal: one per stack (findings and inodes in its data) and
/// one per finding, each in its stack's span (`ISOLATE_STACK`), with `ISOLATE_FINDING` and
/// `ISOLATE_SEVERITY`. Info level: the report itself is the output.
pub fn record_audit(report: &super::model::Report) {
    for s in &report.stacks {
        let findings = report
            .findings
            .iter()
            .filter(|f| f.stack.as_deref() == Some(s.stack.as_str()))
            .count();
        let inodes: u64 = report
            .paths
            .iter()
            .filter(|p| p.stack.as_deref() == Some(s.stack.as_str()))
            .map(|p| p.inodes)
            .sum();
        stack_span(&s.stack).in_scope(|| {
            tracing::info!(
                findings,
                inodes,
                "audited: {findings} finding(s), {inodes} inodes in its data"
            )
        });
    }
    for f in &report.findings {
        stack_span(f.stack.as_deref().unwrap_or("")).in_scope(|| {
            tracing::info!(
                finding = f.kind.name(),
                severity = f.severity.name(),
                path = f.path.as_deref().unwrap_or(""),
                count = f.count,
                "{}",
                f.detail
            )
        });
    }
}
