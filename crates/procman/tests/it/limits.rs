//! Resource limits on real processes in real cgroups: `procman run` on a
//! config of the test child, each test in its own temp dir, judged from
//! outside the manager where that can be done: what the child printed
//! (`allocated N`, `forked K`, `nofile soft=S hard=H`), its CPU time in
//! `/proc/<pid>/stat`, its processes in `/proc`, and the cgroup
//! directories left under the manager's own cgroups after it stopped.
//!
//! Memory, CPU and process limits need root and writable cgroup
//! controllers; without them these tests say why and skip (fail under
//! `CI`). `max_file_descriptors` is a plain rlimit and runs anywhere.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use procman_core::platform::{procstat, Controller, Controllers, Enforcer, Host};

use crate::cli_control::{ready_pid, svc_with, Running, SETTLE};
use crate::support::*;

/// Whether the kernel can enforce memory, CPU and process limits for a
/// manager this test starts; if not, says why (or fails under `CI`).
pub fn kernel_limits() -> bool {
    if !is_root() {
        skip_or_fail("limits in cgroups need root");
        return false;
    }
    let missing: Vec<String> = Controllers::probe(&Host::current())
        .into_iter()
        .filter_map(|(c, verdict)| verdict.err().map(|why| format!("{}: {why}", c.name())))
        .collect();
    if !missing.is_empty() {
        skip_or_fail(&format!(
            "cgroup controllers unavailable: {}",
            missing.join("; ")
        ));
        return false;
    }
    true
}

/// The manager's own cgroup directories (it inherits this test's): the v1
/// ones of memory, cpu and pids that exist, and the v2 one.
fn own_cgroups() -> (Vec<(Controller, PathBuf)>, Option<PathBuf>) {
    let host = Host::current();
    let v1 = Controller::ALL
        .into_iter()
        .filter_map(|c| Some((c, host.own_v1(c)?)))
        .collect();
    (v1, host.own_v2())
}

/// The cgroup directories a manager whose state dir is `state` creates:
/// `procman-<tag>` under each own cgroup.
fn manager_cgroups(state: &std::path::Path) -> (Vec<(Controller, PathBuf)>, Option<PathBuf>) {
    let name = format!("procman-{}", procman_core::state::tag(state));
    let (v1, v2) = own_cgroups();
    (
        v1.into_iter().map(|(c, d)| (c, d.join(&name))).collect(),
        v2.map(|d| d.join(&name)),
    )
}

/// Stops the manager and checks that it left no cgroup of its own.
async fn stop_and_check_cgroups(m: Running) {
    let (v1, v2) = manager_cgroups(&m.t.path("state"));
    m.stop().await;
    let left: Vec<&PathBuf> = v1
        .iter()
        .map(|(_, d)| d)
        .chain(&v2)
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left after the stop: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_oom_killed_and_restarted() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let stamp = t.path("hog.stamp");
        let entries = svc_with(
            &t,
            "hog",
            &["hog", "200", "--step", "4", "--interval", "20ms"],
            "resource_limits:\n  max_memory_mb: 64\nrestart_policy:\n  strategy: always\n  max_attempts: 0\n  restart_delay: 500ms\n",
        );
        let m = Running::start(t, &entries).await;
        let d = m.wait_detail( "hog", "a restart after an OOM kill", |d| {
            d.restarts_by_cause.get("oom").copied().unwrap_or(0) >= 1
        })
        .await;
        assert!(d.process.runs >= 2, "{d:#?}");
        // Each run stamped its pid at start: the restart is a new process.
        let pids = wait_starts(&stamp, 2, SETTLE).await;
        let starts: Vec<u32> = pids.iter().filter(|(k, ..)| *k == 'S').map(|s| s.2).collect();
        assert_ne!(starts[0], starts[1], "the restart has a new pid: {starts:?}");

        // The first run's end, as the event feed and the journal tell it.
        let events = m.client().events(Some("hog"), 1000).await.expect("events");
        assert!(
            events
                .iter()
                .any(|e| e.cause_kind == "oom" && e.pid == Some(starts[0])),
            "no oom transition of pid {}: {events:#?}",
            starts[0]
        );
        let journal = std::fs::read_to_string(m.t.path("state").join("events.jsonl"))
            .expect("the event journal");
        assert!(
            journal.lines().any(|l| {
                let e: serde_json::Value = serde_json::from_str(l).expect("a JSON event");
                e["process"] == "hog" && e["cause_kind"] == "oom"
            }),
            "no oom event in the journal:\n{journal}"
        );

        // It really allocated (every page written), and never got past
        // the limit: the step that crossed it was killed before it said so.
        let log = m.process_log("hog");
        let held: Vec<u64> = log
            .lines()
            .filter_map(|l| l.split("allocated ").nth(1)?.trim().parse().ok())
            .collect();
        assert!(!held.is_empty(), "the hog said nothing:\n{log}");
        assert!(
            held.iter().all(|&mib| mib <= 64),
            "the hog held more than 64 MiB: {held:?}"
        );
        assert!(!log.contains("ready pid="), "a run held all 200 MiB:\n{log}");
        stop_and_check_cgroups(m).await;
    })
    .await
    .expect("watchdog");
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = procstat::Stat::read(pid)
        .expect("read its stat")
        .expect("the spinner runs");
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (stat.utime + stat.stime) as f64 / ticks as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinner_gets_at_most_its_cpu_share() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc_with(
            &t,
            "spin",
            &["spin"],
            "resource_limits:\n  max_cpu_percent: 20\n",
        );
        let m = Running::start(t, &entries).await;
        let pid = ready_pid(&m.wait_log("spin", "ready pid=").await).expect("its pid");
        let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
        // The measurement window itself, not a wait for an event.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (cpu1, wall) = (cpu_seconds(pid), t0.elapsed());
        let share = (cpu1 - cpu0) / wall.as_secs_f64();
        // 20 % of a core, with room for a loaded machine's accounting.
        assert!(
            share > 0.0 && share <= 0.30,
            "the spinner used {:.0} % of a core over {wall:?}",
            share * 100.0
        );
        assert_eq!(m.process("spin").await.pid, Some(pid), "the same run");
        stop_and_check_cgroups(m).await;
    })
    .await
    .expect("watchdog");
}

/// Processes of the tree led by `pid`: itself and its children (the
/// forks of `fork-loop` fork no further).
fn tree_size(pid: u32) -> usize {
    let children = other_pids()
        .filter(|&p| matches!(procstat::Stat::read(p), Ok(Some(s)) if s.ppid == pid))
        .count();
    1 + children
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_loop_is_held_at_max_processes() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc_with(
            &t,
            "forks",
            &["fork-loop", "100"],
            "resource_limits:\n  max_processes: 10\n",
        );
        let m = Running::start(t, &entries).await;
        let pid = m.process("forks").await.pid.expect("its pid");
        // Its size, sampled all along until it has tried every fork.
        let deadline = Instant::now() + SETTLE;
        let mut most = 0;
        let log = loop {
            most = most.max(tree_size(pid));
            let log = m.process_log("forks");
            if log.contains("forked ") {
                break log;
            }
            assert!(
                Instant::now() < deadline,
                "fork-loop never finished:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        most = most.max(tree_size(pid));
        assert!(
            log.contains("fork failed errno=11"),
            "no fork was refused (EAGAIN):\n{log}"
        );
        let forked: usize = log
            .lines()
            .find_map(|l| l.split("forked ").nth(1)?.trim().parse().ok())
            .expect("forked K");
        // The main process counts: 9 children beside it, and no more.
        assert_eq!(forked, 9, "children beside the main process");
        assert!(most <= 10, "{most} processes in the tree");
        assert_eq!(tree_size(pid), forked + 1, "its children sleep on");
        let d = m.client().process("forks").await.expect("detail");
        assert!(d.pids.len() <= 10, "the manager counts {:?}", d.pids);
        stop_and_check_cgroups(m).await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_file_descriptors_is_the_soft_and_hard_nofile_limit() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc_with(
            &t,
            "fds",
            &["rlimits", "--stay"],
            "resource_limits:\n  max_file_descriptors: 77\n",
        );
        let m = Running::start(t, &entries).await;
        let log = m.wait_log("fds", "nofile ").await;
        assert!(
            log.lines().any(|l| l.contains("nofile soft=77 hard=77")),
            "{log}"
        );
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_manager_leaves_no_cgroup() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (v1, v2) = manager_cgroups(&t.path("state"));
        let entries = svc_with(
            &t,
            "svc",
            &["run"],
            "resource_limits:\n  max_memory_mb: 256\n  max_cpu_percent: 150\n  max_processes: 50\n",
        );
        let m = Running::start(t, &entries).await;
        ready_pid(&m.wait_log("svc", "ready pid=").await).expect("its pid");
        // While it runs: the process's directory under the manager's, in
        // the hierarchy that enforces each limit.
        for (ctrl, verdict) in Controllers::probe(&Host::current()) {
            let dir = match verdict {
                Ok(Enforcer::CgroupV1) => v1.iter().find(|(c, _)| *c == ctrl).map(|(_, d)| d),
                _ => v2.as_ref(),
            };
            let dir = dir.expect("a hierarchy").join("svc");
            assert!(dir.is_dir(), "{} ({}) missing", dir.display(), ctrl.name());
            if ctrl == Controller::Memory && dir.join("memory.limit_in_bytes").exists() {
                let max = std::fs::read_to_string(dir.join("memory.limit_in_bytes"));
                assert_eq!(max.expect("the limit").trim(), (256u64 << 20).to_string());
            }
        }
        stop_and_check_cgroups(m).await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_managers_processes_are_reattached_or_stopped_when_gone_from_the_config() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let limits = "resource_limits:\n  max_memory_mb: 128\n  max_processes: 20\n";
        let entries = format!(
            "{}{}",
            svc_with(&t, "old", &["run"], limits),
            svc_with(&t, "keep", &["run"], limits)
        );
        let only_keep = svc_with(&t, "keep", &["run"], "");
        let mut first = Running::start(t, &entries).await;
        let old = ready_pid(&first.wait_log("old", "ready pid=").await).expect("old's pid");
        let keep = ready_pid(&first.wait_log("keep", "ready pid=").await).expect("keep's pid");
        let _ =
            procman_core::platform::signal_process(first.pid, procman_core::outcome::Signal::KILL);
        first.exited(SETTLE).await;
        assert!(
            procman_core::platform::procstat::alive(old)
                && procman_core::platform::procstat::alive(keep),
            "a manager killed by SIGKILL leaves its processes running"
        );
        // The next manager on the same state directory, with `old` gone
        // from its config: `old` is stopped (never left unsupervised),
        // `keep` is re-attached (its limits changed: it says so), and
        // every cgroup of both is removed when the manager stops.
        let t = first.t;
        let second = Running::start(t, &only_keep).await;
        wait_gone(&[old], SETTLE).await;
        let now = second.process("keep").await.pid.expect("keep runs");
        assert_eq!(now, keep, "re-attached, not a new copy");
        let log = second.wait_manager_log("configuration changed").await;
        assert!(
            log.contains("re-attached") && log.contains("configuration changed"),
            "{log}"
        );
        stop_and_check_cgroups(second).await;
        assert!(!procman_core::platform::procstat::alive(keep));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_kill_of_a_grandchild_ends_the_run_with_cause_oom() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The main process stays small and lives on; its background child
        // is the one the OOM killer takes.
        let stamp = t.path("main.stamp");
        let script = format!(
            "{child} hog 200 --step 4 --interval 20ms & exec {child} --stamp {stamp} run",
            child = child().display(),
            stamp = stamp.display()
        );
        let entries = format!(
            "  - id: \"g\"\n    management:\n      control:\n        executable: \"sh\"\n        arguments: [\"-c\", {script:?}]\n      resource_limits:\n        max_memory_mb: 64\n      restart_policy:\n        strategy: never\n"
        );
        let m = Running::start(t, &entries).await;
        let d = m.wait_detail( "g", "the run ended by the OOM kill", |d| {
            d.process.state == "failed"
        })
        .await;
        assert_eq!(d.oom_kills, 1, "{d:#?}");
        let last = d.last_transition.as_ref().expect("a transition");
        assert_eq!(last.cause_kind, "oom", "{d:#?}");
        // The main process, never OOM-killed itself, was stopped with it.
        let starts = wait_starts(&stamp, 1, SETTLE).await;
        wait_gone(&[starts[0].2], SETTLE).await;
        stop_and_check_cgroups(m).await;
    })
    .await
    .expect("watchdog");
}
