//! Stopping: grace then SIGKILL, whole trees (grandchildren that left the
//! group or the session included), no zombies, the manager on SIGTERM.

use std::time::{Duration, Instant};

use procman_core::manager::Manager;
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::supervisor::Phase;

use crate::support::*;

/// A manager running one child, `stubborn`, that ignores SIGTERM, with the
/// given `shutdown_timeout`; returns once the child is ready, with its pid.
async fn stubborn(t: &Scratch, shutdown_timeout: &str) -> (Manager, u32) {
    let out = t.path("out");
    let extra = control_keys(&format!("shutdown_timeout: {shutdown_timeout}"));
    let yaml = t.header() + &child_entry_to_file("stubborn", "ignore-term", &out, &extra);
    let m = t.manager(&yaml);
    m.start().await;
    let text = wait_file(&out, "ready", Duration::from_secs(20)).await;
    (m, pids_in(&text, "ready")[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_ignoring_sigterm_is_killed_after_shutdown_timeout() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (m, pid) = stubborn(&t, "700ms").await;
        let h = m.handle("stubborn").unwrap();
        assert_eq!(h.status().pid(), Some(pid), "exec keeps the pid");
        let t0 = Instant::now();
        m.stop_process("stubborn").await.expect("stop");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(650),
            "killed before the grace ended: {took:?}"
        );
        assert!(took < Duration::from_secs(6), "took {took:?}");
        assert!(!alive(pid));
        let s = h.status();
        assert_eq!(s.phase(), Phase::Stopped);
        assert_eq!(
            s.last_exit,
            Some(ProcessEnd::Signaled {
                signal: Signal::KILL,
                core: false
            })
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_kills_at_once() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (m, _) = stubborn(&t, "30s").await;
        let h = m.handle("stubborn").unwrap();
        let first = h.stop();
        wait_status(&h, Duration::from_secs(10), "stopping", |s| {
            s.phase() == Phase::Stopping
        })
        .await;
        let t0 = Instant::now();
        h.stop().await.expect("second stop");
        first.await.expect("first stop");
        let took = t0.elapsed();
        // "At once": far inside the 30 s grace, with room for a loaded
        // machine; and by SIGKILL, not by the child giving in.
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert_eq!(
            h.status().last_exit,
            Some(ProcessEnd::Signaled {
                signal: Signal::KILL,
                core: false
            })
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

async fn grandchildren_leave_nothing(extra_args: &str) {
    let t = Scratch::new();
    let out = t.path("out");
    let args = format!("grandchildren --daemon {extra_args}");
    let yaml = t.header()
        + &child_entry_to_file("tree", &args, &out, &control_keys("shutdown_timeout: 1s"));
    let m = t.manager(&yaml);
    m.start().await;
    let text = wait_file(&out, "ready", Duration::from_secs(20)).await;
    let mut pids = pids_in(&text, "grandchild");
    assert_eq!(
        pids.len(),
        3,
        "group, setsid and daemon grandchildren: {text}"
    );
    pids.extend(pids_in(&text, "ready"));
    assert!(
        pids.iter().all(|&p| alive(p)),
        "all running before the stop"
    );
    m.stop_process("tree").await.expect("stop");
    // The contract of a stop: when it returns, the whole tree is gone.
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still running after the stop: {left:?}");
    m.shutdown().await;
    let zombies = lasting_zombie_children(Duration::from_secs(5)).await;
    assert!(zombies.is_empty(), "zombies left unreaped: {zombies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grandchildren_in_the_group_in_a_new_session_or_daemonized_never_survive_a_stop() {
    tokio::time::timeout(WATCHDOG, grandchildren_leave_nothing(""))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grandchildren_ignoring_sigterm_are_killed_too() {
    tokio::time::timeout(WATCHDOG, grandchildren_leave_nothing("--ignore-term"))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_on_time_even_while_a_handle_is_held_elsewhere() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (m, pid) = stubborn(&t, "1s").await;
        // An API server or a test may hold a handle for as long as it likes.
        let held = m.handle("stubborn").unwrap().clone();
        let t0 = Instant::now();
        m.shutdown().await;
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
        assert!(!alive(pid));
        assert_eq!(held.status().phase(), Phase::Stopped);
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_rapid_crashes_leave_no_zombie() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "crashloop",
                &["exit", "1"],
                "      restart_policy:\n        restart_delay: 0s\n        max_attempts: 0\n",
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("crashloop").unwrap();
        wait_status(&h, Duration::from_secs(60), "100 runs", |s| s.runs >= 100).await;
        m.stop_process("crashloop").await.expect("stop");
        assert_eq!(h.status().phase(), Phase::Stopped);
        m.shutdown().await;
        let zombies = lasting_zombie_children(Duration::from_secs(5)).await;
        assert!(zombies.is_empty(), "zombies left unreaped: {zombies:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_exits_0_on_sigterm_with_none_of_its_20_processes_left() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mut yaml = t.header();
        let mut pidfiles = Vec::new();
        for i in 0..20 {
            let pidfile = t.path(&format!("pid{i}"));
            let args = ["--pidfile", &pidfile.display().to_string(), "run"].map(String::from);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            yaml += &child_entry(&format!("svc{i}"), &args, "");
            pidfiles.push(pidfile);
        }
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();
        let (mpid, exit, log) = start(
            std::path::Path::new(procman()),
            &["run", "-c", &file_s],
            &[],
        );
        let mut pids = Vec::new();
        for f in &pidfiles {
            let text = wait_file(f, "", Duration::from_secs(30)).await;
            pids.push(text.trim().parse::<u32>().expect("pid"));
        }
        assert!(pids.iter().all(|&p| alive(p)));
        procman_core::platform::signal_process(mpid, Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit)
            .await
            .expect("manager exits")
            .expect("status");
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert_eq!(end, ProcessEnd::Exited(0), "manager log:\n{text}");
        wait_gone(&pids, Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}
