//! Exact texts of `[stacks.NAME.limits]` problems, and what a good table reads to.
use super::*;
use crate::error::Error;
use crate::policy::Policy;
use std::path::Path;

fn errors(text: &str) -> Vec<String> {
    match Policy::parse(Path::new("policy.toml"), text) {
        Err(Error::Policy(lines)) => lines,
        Err(e) => panic!("not a policy error: {e}"),
        Ok(_) => panic!("policy was accepted"),
    }
}

const HEAD: &str = "[stacks.immich]\ndata = [\"/srv/immich\"]\n[stacks.immich.limits]\n";

#[test]
fn a_good_limits_table_reads_into_the_stack_policy() {
    let text = format!(
        "{HEAD}memory_max = \"4g\"\nmemory_high = \"3584M\"\nmemory_swap_max = 0x100000\ncpu_weight = 50\n\
         cpu_quota = \"150%\"\ntasks_max = \"infinity\"\nio_weight = 10000\ndisk_max = \"100G\"\n"
    );
    let p = Policy::parse(Path::new("p.toml"), &text).unwrap();
    let l = &p.stacks["immich"].limits;
    assert_eq!(l.memory_max.as_ref().unwrap().value.text, "4G");
    assert_eq!(l.memory_max.as_ref().unwrap().value.bytes, Some(4 << 30));
    assert_eq!(
        l.memory_high.as_ref().unwrap().value.bytes,
        Some(3584 << 20)
    );
    assert_eq!(l.memory_swap_max.as_ref().unwrap().value.text, "1048576");
    assert_eq!(l.cpu_weight.as_ref().unwrap().value, 50);
    assert_eq!(l.cpu_quota.as_ref().unwrap().value, 150);
    assert_eq!(l.tasks_max.as_ref().unwrap().value, Tasks::Infinity);
    assert_eq!(l.io_weight.as_ref().unwrap().value, 10000);
    assert_eq!(l.disk_max.as_ref().unwrap().value.bytes, Some(100 << 30));
    assert!(l.has_slice_limits());
    let none = Policy::parse(Path::new("p.toml"), "[stacks.a]\ndata = [\"/srv/a\"]\n").unwrap();
    assert_eq!(none.stacks["a"].limits, StackLimits::default());
}

#[test]
fn every_limits_problem_is_reported_at_once_with_its_position() {
    let text = format!(
        "{HEAD}memory_max = \"4X\"\nmemory_high = \"1.5G\"\nmemory_swap_max = -1\ncpu_weight = 0\n\
         cpu_quota = 150\ntasks_max = \"many\"\nio_weight = 10001\ndisk_max = \"infinity\"\nswap = 1\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            "policy.toml:4:14: `memory_max` must be a size in bytes as systemd writes it: a number with an optional K, M, G, T, P or E suffix (powers of 1024) or \"infinity\", such as \"4G\" or \"512M\"; found \"4X\"",
            "policy.toml:5:15: `memory_high` must be a size in bytes as systemd writes it: a number with an optional K, M, G, T, P or E suffix (powers of 1024) or \"infinity\", such as \"4G\" or \"512M\"; found \"1.5G\"",
            "policy.toml:6:19: `memory_swap_max` must be a size in bytes as systemd writes it: a number with an optional K, M, G, T, P or E suffix (powers of 1024) or \"infinity\", such as \"4G\" or \"512M\"; found -1",
            "policy.toml:7:14: `cpu_weight` must be a whole number from 1 to 10000 (100 is systemd's default); found 0",
            "policy.toml:8:13: `cpu_quota` must be a percentage of one CPU above 0, such as \"150%\" (one and a half CPUs); found 150",
            "policy.toml:9:13: `tasks_max` must be a whole number above 0 or \"infinity\"; found \"many\"",
            "policy.toml:10:13: `io_weight` must be a whole number from 1 to 10000 (100 is systemd's default); found 10001",
            "policy.toml:11:12: `disk_max` must be a size, not \"infinity\" (leave the key out for no disk budget)",
            "policy.toml:12:1: unknown key `swap` in [stacks.immich.limits]; expected one of: memory_max, memory_high, memory_swap_max, cpu_weight, cpu_quota, tasks_max, io_weight, disk_max",
        ]
    );
}

#[test]
fn memory_high_at_or_above_memory_max_and_a_limits_that_is_no_table_are_refused() {
    let text = format!("{HEAD}memory_max = \"1G\"\nmemory_high = \"1024M\"\n");
    assert_eq!(
        errors(&text),
        vec!["policy.toml:5:15: `memory_high` (1024M) must be below `memory_max` (1G): the stack would be killed before it is ever throttled"]
    );
    assert_eq!(
        errors("[stacks.a]\ndata = [\"/srv/a\"]\nlimits = \"4G\"\n"),
        vec!["policy.toml:3:10: `limits` must be a table, found a string"]
    );
}

#[test]
fn sizes_read_as_systemd_reads_them() {
    let bytes = |s: &str| parse_size(s).map(|s| (s.text, s.bytes));
    assert_eq!(bytes("512M"), Some(("512M".into(), Some(512 << 20))));
    assert_eq!(bytes("2t"), Some(("2T".into(), Some(2 << 40))));
    assert_eq!(bytes("infinity"), Some(("infinity".into(), None)));
    assert_eq!(bytes("017"), Some(("17".into(), Some(17))));
    for bad in ["", "G", "4 G", "-4G", "4GB", "99999999999E"] {
        assert_eq!(bytes(bad), None, "{bad:?}");
    }
}

#[test]
fn no_swap_is_a_budget_but_no_memory_is_not() {
    let p = Policy::parse(Path::new("p.toml"), &format!("{HEAD}memory_swap_max = 0\n")).unwrap();
    let swap = p.stacks["immich"].limits.memory_swap_max.clone().unwrap();
    assert_eq!((swap.value.text.as_str(), swap.value.bytes), ("0", Some(0)));
    assert!(p.stacks["immich"].limits.has_slice_limits());
    assert_eq!(
        errors(&format!("{HEAD}memory_max = \"0M\"\n")),
        vec!["policy.toml:4:14: `memory_max` must be more than 0 bytes"]
    );
}
