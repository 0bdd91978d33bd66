//! Stopping: grace then SIGKILL, whole trees (grandchildren that left the
//! group or the session included), no zombies, the manager on SIGTERM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::manager::Manager;
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::Stdio;
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

/// The manager's stop of every process sends each leader its SIGTERM
/// itself, in one pass, before it tells the supervisors: each process
/// still gets it once (the supervisor does not send it again), one that
/// exits at once is stopped and not restarted (its supervisor may hear the
/// exit before the stop), and one that ignores it is killed after its
/// `shutdown_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_every_process_signals_each_once_and_restarts_none() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mut yaml = t.header();
        let always = "      restart_policy:\n        strategy: always\n        restart_delay: 0s\n";
        let mut outs = Vec::new();
        for i in 0..40 {
            let (id, command) = match i % 8 {
                0 => (format!("stubborn{i}"), "ignore-term"),
                _ => (format!("quick{i}"), "run"),
            };
            let out = t.path(&id);
            let extra = control_keys("shutdown_timeout: 1s") + always;
            yaml += &child_entry_to_file(&id, command, &out, &extra);
            outs.push((id, out));
        }
        let m = t.manager(&yaml);
        m.start().await;
        for (_, out) in &outs {
            wait_file(out, "ready", Duration::from_secs(30)).await;
        }
        m.stop().await;
        for (id, out) in &outs {
            let s = m.handle(id).unwrap().status();
            assert_eq!(s.phase(), Phase::Stopped, "{id}");
            assert_eq!((s.runs, s.restarts), (1, 0), "{id}: one run, no restart");
            let text = std::fs::read_to_string(out).unwrap_or_default();
            assert_eq!(text.matches("got SIGTERM").count(), 1, "{id}: {text}");
            let end = match id.starts_with("stubborn") {
                true => ProcessEnd::Signaled {
                    signal: Signal::KILL,
                    core: false,
                },
                false => ProcessEnd::Exited(0),
            };
            assert_eq!(s.last_exit, Some(end), "{id}");
        }
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// A manager of one process, `svc` (the test child, its output to `out`),
/// and the cgroup directory its runs go in; `None` (skipped) without a
/// cgroup v2 hierarchy.
fn svc_in_cgroup(t: &Scratch, out: &Path) -> Option<(Manager, PathBuf)> {
    let yaml = t.header() + &child_entry_to_file("svc", "run", out, "");
    let m = t.manager(&yaml);
    let own = procman_core::platform::Host::current().own_v2();
    let (true, Some(own)) = (m.uses_cgroups(), own) else {
        skip_or_fail("no cgroup v2 hierarchy to hold the process trees");
        return None;
    };
    let tag = procman_core::state::tag(&t.path("state"));
    Some((m, own.join(format!("procman-{tag}")).join("svc")))
}

/// The pids in the cgroup `dir` (none when it is gone).
fn members(dir: &Path) -> Vec<u32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A stop removes the process's cgroup as soon as its tree is empty (a
/// shutdown then removes each while the others still stop); the next start
/// creates it again and runs the child in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_process_has_no_cgroup_until_it_starts_again() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("out");
        let Some((m, dir)) = svc_in_cgroup(&t, &out) else {
            return;
        };
        m.start().await;
        let pid = pids_in(
            &wait_file(&out, "ready", Duration::from_secs(20)).await,
            "ready",
        )[0];
        assert!(members(&dir).contains(&pid), "{pid} in {}", dir.display());
        m.stop_process("svc").await.expect("stop");
        assert!(!dir.exists(), "{} left after the stop", dir.display());
        std::fs::remove_file(&out).expect("remove out");
        m.start_process("svc").await.expect("start");
        let again = pids_in(
            &wait_file(&out, "ready", Duration::from_secs(20)).await,
            "ready",
        )[0];
        assert!(
            members(&dir).contains(&again),
            "{again} in {}",
            dir.display()
        );
        m.shutdown().await;
        assert!(!dir.exists(), "{} left after the shutdown", dir.display());
    })
    .await
    .expect("watchdog");
}

/// A process's cgroup is made by its first spawn, not when the manager
/// starts (hundreds of processes then make theirs beside the other
/// spawns). A directory of that name found then, with a process in it
/// (what a killed manager on the same state directory leaves), is emptied
/// and made anew before the child goes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cgroup_is_made_by_the_first_spawn_and_a_leftover_one_is_emptied_first() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("out");
        let Some((m, dir)) = svc_in_cgroup(&t, &out) else {
            return;
        };
        assert!(!dir.exists(), "{} made before any spawn", dir.display());
        std::fs::create_dir(&dir).expect("a leftover cgroup");
        let (left, left_end) =
            start_with(Path::new("sleep"), &["60"], &[], Stdio::Null, Stdio::Null);
        std::fs::write(dir.join("cgroup.procs"), left.to_string()).expect("move it in");
        m.start().await;
        let pid = pids_in(
            &wait_file(&out, "ready", Duration::from_secs(20)).await,
            "ready",
        )[0];
        let end = tokio::time::timeout(Duration::from_secs(20), left_end)
            .await
            .expect("the leftover is stopped")
            .expect("its end");
        assert_eq!(
            end,
            ProcessEnd::Signaled {
                signal: Signal::KILL,
                core: false
            }
        );
        assert_eq!(members(&dir), [pid], "only the child in {}", dir.display());
        m.shutdown().await;
        assert!(!dir.exists(), "{} left after the shutdown", dir.display());
    })
    .await
    .expect("watchdog");
}

/// A leader that exits at once on the manager's stop pass may be heard
/// exiting before its stop command arrives: that command is the same
/// stop, not a second one, so what the leader left (here a grandchild
/// that ignores SIGTERM) still gets its `shutdown_timeout` before the
/// SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_keeps_its_grace_when_its_leader_exits_at_the_stop_pass() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mut yaml = t.header();
        let mut files = Vec::new();
        for i in 0..20 {
            let gpid = t.path(&format!("gpid{i}"));
            // The grandchild writes its pid once its trap is set (`$$$$`
            // is `$$` after the config's expansion): a pid written by the
            // parent could name a grandchild not yet ignoring TERM.
            let script = format!(
                "sh -c 'trap \"\" TERM; echo $$$$ > {}; exec sleep 60' & exec {} run",
                gpid.display(),
                child().display()
            );
            yaml += &format!(
                "  - id: \"svc{i}\"\n    management:\n      control:\n        executable: \"sh\"\n        arguments: [\"-c\", {script:?}]\n        shutdown_timeout: 2s\n"
            );
            files.push(gpid);
        }
        let m = t.manager(&yaml);
        m.start().await;
        let mut gpids = Vec::new();
        for f in &files {
            let text = wait_file(f, "", Duration::from_secs(30)).await;
            gpids.push(text.trim().parse::<u32>().expect("a pid"));
        }
        let t0 = Instant::now();
        let watch = async {
            let mut died: Vec<Option<Duration>> = vec![None; gpids.len()];
            while died.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(30) {
                for (pid, at) in gpids.iter().zip(died.iter_mut()) {
                    if at.is_none() && !alive(*pid) {
                        *at = Some(t0.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            died
        };
        let ((), died) = tokio::join!(m.stop(), watch);
        for (pid, at) in gpids.iter().zip(&died) {
            let at = at.unwrap_or_else(|| panic!("grandchild {pid} outlived the stop"));
            assert!(
                at >= Duration::from_millis(1500),
                "grandchild {pid} killed {at:?} into a 2 s grace"
            );
        }
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}
