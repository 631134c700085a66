//! The usage families over hand-built readings: names, types, units, labels, and no sample
//! for what could not be read.
use super::*;
use crate::usage::cgroup::{IoDevice, Limit, SliceUsage};
use crate::usage::disk::Tree;
use crate::usage::StackUsage;

pub(crate) fn sample_usage() -> Usage {
    Usage {
        read_at: 1_700_000_060.25,
        stacks: vec![
            StackUsage {
                stack: "immich".into(),
                uid: 801,
                slice: SliceUsage {
                    cgroup: "/sys/fs/cgroup/user.slice/user-801.slice".into(),
                    unavailable: None,
                    memory_bytes: Some(52_428_800),
                    memory_max_bytes: Some(Limit::Max),
                    oom_kills: Some(1),
                    cpu_usage_usec: Some(2_345_678),
                    tasks: Some(7),
                    tasks_max: Some(Limit::Value(512)),
                    io: Some(vec![IoDevice {
                        device: "8:0".into(),
                        read_bytes: 4096,
                        written_bytes: 8192,
                    }]),
                    unreadable: vec![],
                },
            },
            StackUsage {
                stack: "paperless".into(),
                uid: 802,
                slice: SliceUsage {
                    cgroup: "/sys/fs/cgroup/user.slice/user-802.slice".into(),
                    unavailable: Some("no cgroup v2".into()),
                    ..SliceUsage::default()
                },
            },
        ],
    }
}

pub(crate) fn sample_disk() -> Vec<StackDisk> {
    vec![
        StackDisk {
            stack: "immich".into(),
            tree: Tree::Data,
            inodes: 3,
            bytes: 10,
        },
        StackDisk {
            stack: "immich".into(),
            tree: Tree::Store,
            inodes: 40,
            bytes: 5000,
        },
    ]
}

fn rendered() -> String {
    let mut out = String::new();
    usage(&sample_usage(), &mut out);
    disk(&sample_disk(), &mut out);
    out
}

#[test]
fn a_read_slice_gives_every_family_in_base_units() {
    let text = rendered();
    for line in [
        "# TYPE isolate_stack_memory_bytes gauge",
        "isolate_stack_memory_bytes{stack=\"immich\"} 52428800",
        "isolate_stack_memory_max_bytes{stack=\"immich\"} +Inf",
        "# TYPE isolate_stack_oom_kills_total counter",
        "isolate_stack_oom_kills_total{stack=\"immich\"} 1",
        "# TYPE isolate_stack_cpu_seconds_total counter",
        "isolate_stack_cpu_seconds_total{stack=\"immich\"} 2.345678",
        "isolate_stack_tasks{stack=\"immich\"} 7",
        "isolate_stack_tasks_max{stack=\"immich\"} 512",
        "isolate_stack_io_read_bytes_total{stack=\"immich\",device=\"8:0\"} 4096",
        "isolate_stack_io_written_bytes_total{stack=\"immich\",device=\"8:0\"} 8192",
        "isolate_stack_cgroup_available{stack=\"immich\"} 1",
        "isolate_usage_last_read_timestamp_seconds 1700000060.250",
        "isolate_stack_disk_bytes{stack=\"immich\",tree=\"data\"} 10",
        "isolate_stack_disk_inodes{stack=\"immich\",tree=\"store\"} 40",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[test]
fn an_unavailable_slice_has_no_sample_but_says_so() {
    let text = rendered();
    assert!(
        text.lines()
            .any(|l| l == "isolate_stack_cgroup_available{stack=\"paperless\"} 0"),
        "{text}"
    );
    let paperless: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("paperless") && !l.starts_with("isolate_stack_cgroup_available"))
        .collect();
    assert!(paperless.is_empty(), "fake values: {paperless:?}");
}

#[test]
fn promtool_accepts_the_usage_families() {
    crate::render::prometheus::tests::promtool_check(&rendered());
}

/// Every family the renderers can emit: the `# TYPE` lines of a full audit with every section
/// filled (findings, matrix, disk, usage) and of `--only usage`.
fn emitted_families() -> std::collections::BTreeSet<String> {
    let mut text =
        crate::render::prometheus::render(&crate::render::prometheus::tests::sample_report());
    usage(&sample_usage(), &mut text);
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// The metric names a PromQL expression uses (every `isolate_…` identifier).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("isolate_") {
        let start = i + at;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

/// contrib/grafana/isolate.json is valid JSON, every panel query and template variable names
/// only metrics the audit emits, and the dashboard covers memory, CPU, tasks, disk, OOM kills
/// and findings per stack.
#[test]
fn the_dashboard_queries_only_metrics_the_audit_emits() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana/isolate.json");
    let text = std::fs::read_to_string(path).expect("the dashboard exists");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let emitted = emitted_families();
    let mut exprs = Vec::new();
    let mut stack = vec![&doc];
    while let Some(v) = stack.pop() {
        match v {
            // A data source variable's `query` is a plugin type, not PromQL.
            serde_json::Value::Object(m) if m.get("type") == Some(&"datasource".into()) => {}
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr", serde_json::Value::String(e)) => exprs.push(e.clone()),
                        ("query", serde_json::Value::String(e)) => exprs.push(e.clone()),
                        ("query", serde_json::Value::Object(q)) => {
                            if let Some(serde_json::Value::String(e)) = q.get("query") {
                                exprs.push(e.clone());
                            }
                        }
                        _ => stack.push(x),
                    }
                }
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    assert!(exprs.len() >= 6, "panel queries found: {exprs:?}");
    let mut used = std::collections::BTreeSet::new();
    for e in &exprs {
        let names = metric_names(e);
        assert!(
            !names.is_empty() || e.starts_with("label_values("),
            "no metric in {e:?}"
        );
        for n in names {
            assert!(
                emitted.contains(&n),
                "the dashboard queries {n} (in {e:?}), which the audit does not emit; it emits {emitted:?}"
            );
            used.insert(n);
        }
    }
    for needed in [
        "isolate_stack_memory_bytes",
        "isolate_stack_cpu_seconds_total",
        "isolate_stack_tasks",
        "isolate_stack_disk_bytes",
        "isolate_stack_oom_kills_total",
        "isolate_audit_findings",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
    assert_eq!(
        metric_names("rate(isolate_a_total[5m]) / xisolate_b"),
        vec!["isolate_a_total"]
    );
}
