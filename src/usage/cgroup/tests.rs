//! The reader over temp trees holding the kernel's own file formats (copied from a cgroup v2
//! host: Linux 6.x `user-1000.slice`).
use super::*;

const CPU_STAT: &str = "usage_usec 2345678\nuser_usec 1345678\nsystem_usec 1000000\n\
nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n";
const MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
const IO_STAT: &str = "8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
253:1 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("sys/fs/cgroup")).unwrap();
    std::fs::write(
        t.path().join("sys/fs/cgroup/cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    t
}

fn slice(t: &tempfile::TempDir, uid: u32, files: &[(&str, &str)]) {
    let dir = t
        .path()
        .join(format!("sys/fs/cgroup/user.slice/user-{uid}.slice"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn every_file_of_a_v2_slice_is_read() {
    let t = tree();
    slice(
        &t,
        801,
        &[
            ("memory.current", "52428800\n"),
            ("memory.max", "67108864\n"),
            ("memory.events", MEMORY_EVENTS),
            ("cpu.stat", CPU_STAT),
            ("pids.current", "7\n"),
            ("pids.max", "max\n"),
            ("io.stat", IO_STAT),
        ],
    );
    let u = read(&Root::new(t.path()), 801);
    assert_eq!(u.unavailable, None);
    assert_eq!(
        u.cgroup,
        Path::new("/sys/fs/cgroup/user.slice/user-801.slice")
    );
    assert_eq!(u.memory_bytes, Some(52_428_800));
    assert_eq!(u.memory_max_bytes, Some(Limit::Value(67_108_864)));
    assert_eq!(u.oom_kills, Some(1));
    assert_eq!(u.cpu_usage_usec, Some(2_345_678));
    assert_eq!(u.cpu_seconds(), Some(2.345678));
    assert_eq!(u.tasks, Some(7));
    assert_eq!(u.tasks_max, Some(Limit::Max));
    assert_eq!(
        u.io,
        Some(vec![
            IoDevice {
                device: "8:0".into(),
                read_bytes: 1_459_200,
                written_bytes: 314_773_504,
            },
            IoDevice {
                device: "253:1".into(),
                read_bytes: 4096,
                written_bytes: 0,
            },
        ])
    );
    assert!(u.unreadable.is_empty(), "{:?}", u.unreadable);
    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["tasks_max"], "max");
    assert_eq!(json["memory_max_bytes"], 67_108_864);
}

#[test]
fn a_controller_the_slice_lacks_is_none_not_zero() {
    let t = tree();
    // The io and pids controllers not enabled: their files do not exist.
    slice(
        &t,
        801,
        &[("memory.current", "4096\n"), ("cpu.stat", CPU_STAT)],
    );
    let u = read(&Root::new(t.path()), 801);
    assert_eq!(u.unavailable, None);
    assert_eq!(u.memory_bytes, Some(4096));
    assert_eq!(u.tasks, None);
    assert_eq!(u.tasks_max, None);
    assert_eq!(u.io, None);
    assert_eq!(u.oom_kills, None);
    assert!(u.unreadable.is_empty());
}

#[test]
fn a_cgroup_v1_host_is_unavailable() {
    let t = tempfile::tempdir().unwrap();
    // v1: /sys/fs/cgroup is a tmpfs of controller directories, no cgroup.controllers.
    std::fs::create_dir_all(t.path().join("sys/fs/cgroup/memory/user.slice")).unwrap();
    let u = read(&Root::new(t.path()), 801);
    let why = u.unavailable.expect("unavailable on v1");
    assert!(why.contains("cgroup v2"), "{why}");
    assert_eq!(u.memory_bytes, None);
    assert_eq!(u.cpu_usage_usec, None);
}

#[test]
fn a_missing_slice_is_unavailable_with_its_path() {
    let t = tree();
    let u = read(&Root::new(t.path()), 802);
    let why = u.unavailable.expect("no slice");
    assert!(why.contains("user-802.slice"), "{why}");
    assert_eq!(u.tasks, None);
}

#[test]
fn a_garbled_file_is_unreadable_and_none() {
    let t = tree();
    slice(
        &t,
        801,
        &[("memory.current", "lots\n"), ("cpu.stat", "nr_periods 0\n")],
    );
    let u = read(&Root::new(t.path()), 801);
    assert_eq!(u.memory_bytes, None);
    assert_eq!(u.cpu_usage_usec, None);
    assert_eq!(u.unreadable.len(), 2, "{:?}", u.unreadable);
    assert!(
        u.unreadable[0].contains("memory.current"),
        "{:?}",
        u.unreadable
    );
}

#[test]
fn a_symlink_in_place_of_a_file_is_not_followed() {
    let t = tree();
    slice(&t, 801, &[("cpu.stat", CPU_STAT)]);
    std::fs::write(t.path().join("elsewhere"), "999\n").unwrap();
    std::os::unix::fs::symlink(
        t.path().join("elsewhere"),
        t.path()
            .join("sys/fs/cgroup/user.slice/user-801.slice/memory.current"),
    )
    .unwrap();
    let u = read(&Root::new(t.path()), 801);
    assert_eq!(u.memory_bytes, None);
    assert_eq!(u.unreadable.len(), 1, "{:?}", u.unreadable);
}
