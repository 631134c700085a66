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
