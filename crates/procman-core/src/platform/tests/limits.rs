//! The limits back ends against a fake cgroupfs: a temporary directory
//! laid out as the kernel lays out `/sys/fs/cgroup`, with the files the
//! kernel would create written by the test. The same on any host.

use super::*;
use crate::platform::oom::parse_kills;
use crate::platform::quota::{cpu_quota, write_v1, write_v2, Limits, Quota};
use std::sync::Arc;

const PURE_V2: &str =
    "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n";
const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

fn host(dir: &Path, mountinfo: &str, own: &str) -> Host {
    Host {
        mountinfo: mountinfo.to_string(),
        own: own.to_string(),
        prefix: dir.to_path_buf(),
        pid: 4242,
    }
}

fn touch(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap()
}

/// The files the kernel creates in a new v2 cgroup whose parent enabled
/// memory, cpu and pids.
fn v2_files(dir: &Path) {
    touch(
        dir,
        &[
            ("cgroup.procs", ""),
            ("cgroup.subtree_control", ""),
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.oom.group", "0"),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
        ],
    );
}

#[test]
fn own_cgroups_are_found_per_controller_on_a_hybrid_host() {
    let tmp = tempfile::tempdir().unwrap();
    let own = "4:memory:/session/42\n8:pids:/\n1:cpu,cpuacct:/x\n0::/\n";
    let h = host(tmp.path(), HYBRID, own);
    let base = tmp.path().join("sys/fs/cgroup");
    assert_eq!(
        h.own_v1(Controller::Memory),
        Some(base.join("memory/session/42"))
    );
    assert_eq!(h.own_v1(Controller::Pids), Some(base.join("pids")));
    assert_eq!(h.own_v1(Controller::Cpu), Some(base.join("cpu/x")));
    assert_eq!(h.own_v2(), Some(base.join("unified")));
    let v2_only = host(tmp.path(), PURE_V2, "0::/app.service\n");
    assert_eq!(v2_only.own_v1(Controller::Memory), None);
    assert_eq!(v2_only.own_v2(), Some(base.join("app.service")));
}

#[test]
fn a_hybrid_host_gets_v1_roots_under_the_managers_own_cgroups() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("sys/fs/cgroup");
    touch(&base.join("memory/session/42"), &[("cgroup.procs", "")]);
    touch(&base.join("pids"), &[("cgroup.procs", "")]);
    // The unified hierarchy offers no resource controller (hugetlb only).
    touch(
        &base.join("unified"),
        &[("cgroup.controllers", "hugetlb\n")],
    );
    touch(&base.join("unified/procman-t"), &[("cgroup.procs", "")]);
    let own = "4:memory:/session/42\n8:pids:/\n0::/\n";
    let h = host(tmp.path(), HYBRID, own);
    let c = Controllers::create(
        &h,
        "procman-t",
        Some(&base.join("unified/procman-t")),
        &[Controller::Memory, Controller::Pids, Controller::Cpu],
    );
    assert!(c.v2.is_empty(), "{c:?}");
    assert_eq!(
        c.v1_root(Controller::Memory),
        Some(base.join("memory/session/42/procman-t").as_path())
    );
    assert_eq!(
        c.v1_root(Controller::Pids),
        Some(base.join("pids/procman-t").as_path())
    );
    // cpu: mounted, but the manager has no line for it in /proc/self/cgroup.
    assert_eq!(c.missing().len(), 1, "{c:?}");
    assert_eq!(c.missing()[0].0, Controller::Cpu);
    c.remove(None);
    assert!(!base.join("memory/session/42/procman-t").exists());
}

#[test]
fn a_pure_v2_host_enables_the_controllers_in_the_managers_subtree() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("sys/fs/cgroup");
    let own = base.join("system.slice/app.service");
    touch(
        &own,
        &[
            ("cgroup.controllers", "cpuset cpu io memory pids\n"),
            ("cgroup.subtree_control", "memory\n"),
            ("cgroup.procs", "4242\n"),
        ],
    );
    let root = own.join("procman-t");
    touch(&root, &[("cgroup.subtree_control", "")]);
    let h = host(tmp.path(), PURE_V2, "0::/system.slice/app.service\n");
    let needed = [Controller::Memory, Controller::Cpu, Controller::Pids];
    let c = Controllers::create(&h, "procman-t", Some(&root), &needed);
    assert_eq!(c.v2, needed, "{c:?}");
    assert!(c.missing().is_empty(), "{c:?}");
    assert!(c.v1.is_empty());
    // The last write of each file is what the fake keeps.
    assert_eq!(read(&own.join("cgroup.subtree_control")), "+pids");
    assert_eq!(read(&root.join("cgroup.subtree_control")), "+pids");
    // `validate`'s view of the same host.
    let probe = Controllers::probe(&h);
    assert!(
        probe.iter().all(|(_, e)| *e == Ok(Enforcer::CgroupV2)),
        "{probe:?}"
    );
}

#[test]
fn the_manager_moves_into_a_leaf_only_when_alone_in_its_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    let own = tmp.path().join("sys/fs/cgroup");
    touch(&own, &[("cgroup.procs", "4242\n")]);
    touch(&own.join("procman-t-manager"), &[("cgroup.procs", "")]);
    let h = host(tmp.path(), PURE_V2, "0::/\n");
    let leaf = make_room(&h, &own, "procman-t").expect("alone: room is made");
    assert_eq!(leaf, own.join("procman-t-manager"));
    assert_eq!(read(&leaf.join("cgroup.procs")), "4242");

    touch(&own, &[("cgroup.procs", "4242\n77\n")]);
    let why = make_room(&h, &own, "procman-t").expect_err("a stranger is there");
    assert!(why.contains("other processes (77)"), "{why}");
    assert!(why.contains("Delegate=yes"), "{why}");
}

#[test]
fn v2_limits_are_written_in_the_kernels_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    v2_files(&dir);
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        cpu_percent: Some(250.0),
        processes: Some(32),
    };
    for c in Controller::ALL {
        write_v2(&dir, c, &limits).unwrap();
    }
    assert_eq!(read(&dir.join("memory.max")), "67108864");
    assert_eq!(read(&dir.join("memory.swap.max")), "0");
    assert_eq!(read(&dir.join("memory.oom.group")), "1");
    assert_eq!(read(&dir.join("cpu.max")), "250000 100000");
    assert_eq!(read(&dir.join("pids.max")), "32");
    // Removed limits go back to the kernel's defaults.
    for c in Controller::ALL {
        write_v2(&dir, c, &Limits::default()).unwrap();
    }
    assert_eq!(read(&dir.join("memory.max")), "max");
    assert_eq!(read(&dir.join("cpu.max")), "max 100000");
    assert_eq!(read(&dir.join("pids.max")), "max");
    // A host without swap has no memory.swap.max: not an error.
    std::fs::remove_file(dir.join("memory.swap.max")).unwrap();
    write_v2(&dir, Controller::Memory, &limits).unwrap();
}

#[test]
fn v1_limits_are_written_in_the_kernels_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    touch(
        &dir,
        &[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
            ("pids.max", "max"),
        ],
    );
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        cpu_percent: Some(20.0),
        processes: Some(8),
    };
    for c in Controller::ALL {
        write_v1(&dir, c, &limits).unwrap();
    }
    assert_eq!(read(&dir.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&dir.join("memory.memsw.limit_in_bytes")), "67108864");
    assert_eq!(read(&dir.join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&dir.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&dir.join("pids.max")), "8");
}

#[test]
fn cpu_percentages_become_a_quota_the_kernel_accepts() {
    assert_eq!(cpu_quota(100.0), (100_000, 100_000));
    assert_eq!(cpu_quota(250.0), (250_000, 100_000));
    assert_eq!(cpu_quota(1.0), (1000, 100_000));
    // Under 1 ms per period: a longer period instead.
    assert_eq!(cpu_quota(0.5), (1000, 200_000));
    assert_eq!(cpu_quota(0.01), (1000, 1_000_000));
}

#[test]
fn a_quota_says_what_enforces_each_limit_and_joins_v1_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let v1_root = tmp.path().join("memory/procman-t");
    touch(&v1_root, &[]);
    let controllers = Arc::new(Controllers {
        v2: vec![Controller::Pids],
        v1: vec![(Controller::Memory, v1_root.clone())],
        ..Controllers::default()
    });
    let v2_dir = tmp.path().join("unified/procman-t/web");
    v2_files(&v2_dir);
    let mut quota = Quota::new(controllers, "web");
    // The kernel creates the files of a new v1 directory: so does the test.
    touch(
        &v1_root.join("web"),
        &[
            ("cgroup.procs", ""),
            ("memory.limit_in_bytes", ""),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
        ],
    );
    let limits = Limits {
        memory_bytes: Some(1 << 20),
        cpu_percent: Some(50.0),
        processes: Some(4),
    };
    let e = quota.apply(Some(&v2_dir), &limits);
    assert_eq!(e.of(Controller::Memory), Some(Enforcer::CgroupV1));
    assert_eq!(e.of(Controller::Pids), Some(Enforcer::CgroupV2));
    assert_eq!(
        e.of(Controller::Cpu),
        Some(Enforcer::Monitor),
        "no cpu controller"
    );
    assert_eq!(e.monitored().collect::<Vec<_>>(), [Controller::Cpu]);
    assert_eq!(read(&v1_root.join("web/memory.limit_in_bytes")), "1048576");
    assert_eq!(read(&v2_dir.join("pids.max")), "4");
    assert_eq!(
        quota.join_fds().unwrap().len(),
        1,
        "joins the v1 memory cgroup"
    );
    let (enforcer, dir) = quota.memory(Some(&v2_dir)).unwrap();
    assert_eq!((enforcer, dir), (Enforcer::CgroupV1, v1_root.join("web")));
    // A run without limits joins nothing and resets the v2 files.
    let e = quota.apply(Some(&v2_dir), &Limits::default());
    assert!(e.0.is_empty());
    assert!(quota.join_fds().unwrap().is_empty());
    assert_eq!(read(&v2_dir.join("pids.max")), "max");
}

#[test]
fn oom_kills_are_read_from_both_versions_files() {
    let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
    assert_eq!(parse_kills(v2), Some(2));
    let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
    assert_eq!(parse_kills(v1), Some(1));
    assert_eq!(parse_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
}

#[tokio::test]
async fn a_v2_oom_kill_is_heard_through_memory_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    v2_files(&dir);
    std::fs::write(dir.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
    let mut watch = crate::platform::OomWatch::open(Enforcer::CgroupV2, &dir).unwrap();
    assert_eq!(watch.kills(), 0, "kills before the run are not its own");
    let events = dir.join("memory.events");
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        std::fs::write(&events, "oom 2\noom_kill 2\n").unwrap();
    });
    let n = tokio::time::timeout(std::time::Duration::from_secs(20), watch.fired())
        .await
        .expect("the modification wakes the watch");
    assert_eq!(n, 1);
    writer.await.unwrap();
}

#[test]
fn an_id_named_like_a_v1_file_gets_a_directory_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let v1_root = tmp.path().join("pids/procman-t");
    // v1's own files in every directory, as the kernel makes them.
    touch(&v1_root, &[("tasks", ""), ("notify_on_release", "0")]);
    let controllers = Arc::new(Controllers {
        v1: vec![(Controller::Pids, v1_root.clone())],
        ..Controllers::default()
    });
    let limits = Limits {
        processes: Some(4),
        ..Limits::default()
    };
    for id in ["tasks", "notify_on_release"] {
        // The directory as the kernel would make it (the quota finds it
        // there, as after an earlier run).
        let dir = v1_root.join(format!("{id}.process"));
        touch(&dir, &[("pids.max", "max"), ("cgroup.procs", "")]);
        let mut quota = Quota::new(controllers.clone(), id);
        let e = quota.apply(None, &limits);
        assert_eq!(e.of(Controller::Pids), Some(Enforcer::CgroupV1), "{id}");
        assert_eq!(read(&dir.join("pids.max")), "4", "{id}");
    }
    assert_eq!(read(&v1_root.join("tasks")), "", "v1's own file untouched");
}
