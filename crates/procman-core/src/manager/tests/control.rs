//! What a client of the manager sees through its [`Control`]: the events
//! of every transition, numbered without gaps; signals to a process or its
//! whole tree; the pids of that tree; restarts counted by cause.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::config;
use crate::manager::{Control, Manager, ManagerError};
use crate::outcome::{ProcessEnd, Signal};
use crate::platform::procstat;
use crate::supervisor::{CommandError, Event, Phase};

/// Generous: these tests run on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A manager of one process `p` running `script` under `/bin/sh`.
fn manager(dir: &Path, script: &str, strategy: &str) -> Manager {
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{dir}/state\"\nmanaged_processes:\n  - id: p\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", \"{script}\"]\n        shutdown_timeout: 2s\n      restart_policy:\n        strategy: {strategy}\n        max_attempts: 0\n        restart_delay: 50ms\n",
        dir = dir.display(),
    );
    let file = dir.join("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    let config = config::load_file(&file).expect("valid config");
    Manager::new(config).expect("manager")
}

/// The next event, within the deadline.
async fn next(rx: &mut broadcast::Receiver<std::sync::Arc<Event>>) -> std::sync::Arc<Event> {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an event within the deadline")
        .expect("no event missed")
}

/// Waits until `p` is in `phase` with at least `runs` runs.
async fn wait_for(control: &Control, phase: Phase, runs: u32) {
    let handle = control.handle("p").expect("p");
    let mut status = handle.subscribe();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        {
            let s = status.borrow_and_update();
            if s.phase() == phase && s.runs >= runs {
                return;
            }
        }
        tokio::time::timeout_at(deadline, status.changed())
            .await
            .unwrap_or_else(|_| panic!("p never became {phase}: {:#?}", handle.status()))
            .expect("the supervisor is alive");
    }
}

/// The pids of `p`'s tree once it has at least `n`.
async fn pids(control: &Control, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let pids = control.handle("p").expect("p").pids().await;
        if pids.len() >= n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "the tree never had {n}: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_gone(pid: u32) {
    let deadline = Instant::now() + DEADLINE;
    while procstat::alive(pid) {
        assert!(Instant::now() < deadline, "{pid} is still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_numbered_from_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "exec sleep 100", "never");
    let mut rx = m.control().events();
    m.start().await;
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    let pid = m.handle("p").expect("p").status().pid();
    assert_eq!(first.seq, 1, "{first:#?}");
    assert_eq!(&*first.process, "p");
    assert_eq!(
        (first.transition.from, first.transition.to),
        (Phase::Registered, Phase::Starting)
    );
    assert_eq!(first.transition.cause.kind(), "start_requested");
    assert_eq!(first.run, 1);
    assert_eq!(first.pid, pid);
    assert_eq!(second.seq, 2, "{second:#?}");
    assert_eq!(
        (second.transition.from, second.transition.to),
        (Phase::Starting, Phase::Running)
    );
    assert_eq!(second.transition.cause.kind(), "ready");
    m.control().stop_process("p").await.expect("stop");
    let third = next(&mut rx).await;
    let fourth = next(&mut rx).await;
    assert_eq!((third.seq, fourth.seq), (3, 4));
    assert_eq!(
        (third.transition.to, fourth.transition.to),
        (Phase::Stopping, Phase::Stopped)
    );
    assert!(third.transition.at <= fourth.transition.at);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_to_a_service_restarts_it_counted_as_an_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "exec sleep 100", "always");
    let control = m.control().clone();
    m.start().await;
    wait_for(&control, Phase::Running, 1).await;
    let first = control.handle("p").expect("p").status().pid();
    control
        .signal_process("p", Signal::TERM, false)
        .await
        .expect("signal");
    wait_for(&control, Phase::Running, 2).await;
    let s = control.handle("p").expect("p").status();
    assert_ne!(s.pid(), first, "a new run: {s:#?}");
    assert_eq!(
        s.last_exit,
        Some(ProcessEnd::Signaled {
            signal: Signal::TERM,
            core: false
        })
    );
    assert_eq!(s.restarts, 1, "{s:#?}");
    assert_eq!(
        s.restart_causes.iter().collect::<Vec<_>>(),
        [("exit", 1)],
        "{s:#?}"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_to_a_stopped_process_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "exec sleep 100", "always");
    // Never started: registered.
    let e = m
        .control()
        .signal_process("p", Signal::TERM, false)
        .await
        .expect_err("nothing runs");
    assert!(
        matches!(e, ManagerError::Command(CommandError::NotRunning(ref id)) if id == "p"),
        "{e:?}"
    );
    m.start().await;
    wait_for(m.control(), Phase::Running, 1).await;
    m.control().stop_process("p").await.expect("stop");
    let e = m
        .control()
        .signal_process("p", Signal::TERM, true)
        .await
        .expect_err("stopped");
    assert!(
        matches!(e, ManagerError::Command(CommandError::NotRunning(_))),
        "{e:?}"
    );
    assert!(m.handle("p").expect("p").pids().await.is_empty());
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_and_a_tree_signal_reach_a_grandchild() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The grandchild is forked before the trap, so USR1 kills it; the main
    // process ignores USR1 (an ignored signal stays ignored across exec).
    let m = manager(
        dir.path(),
        "sleep 100 & trap '' USR1; exec sleep 100",
        "never",
    );
    let control = m.control().clone();
    m.start().await;
    wait_for(&control, Phase::Running, 1).await;
    let main = control
        .handle("p")
        .expect("p")
        .status()
        .pid()
        .expect("a pid");
    let tree = pids(&control, 2).await;
    assert_eq!(tree[0], main, "the main process first: {tree:?}");
    // The trap is set once the shell has become `sleep`.
    let deadline = Instant::now() + DEADLINE;
    while std::fs::read_to_string(format!("/proc/{main}/comm"))
        .map_or(true, |c| c.trim() != "sleep")
    {
        assert!(
            Instant::now() < deadline,
            "the main process never became sleep"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grandchild = tree[1];
    let stat = procstat::Stat::read(grandchild)
        .expect("stat")
        .expect("the grandchild exists");
    assert_eq!(stat.ppid, main, "a child of the main process");
    let usr1 = Signal(libc::SIGUSR1);
    control
        .signal_process("p", usr1, false)
        .await
        .expect("signal the main process");
    // Nothing to wait on for a signal that changed nothing: a short pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        procstat::alive(grandchild),
        "only the main process was signalled"
    );
    control
        .signal_process("p", usr1, true)
        .await
        .expect("signal the tree");
    until_gone(grandchild).await;
    let s = control.handle("p").expect("p").status();
    assert_eq!((s.phase(), s.pid()), (Phase::Running, Some(main)), "{s:#?}");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_restart_wins_and_the_process_stays_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Ignores SIGTERM: the restart's stop lasts its 2 s shutdown_timeout.
    // The marker says the trap is set: `running` alone comes before the
    // shell has read its script, and a TERM then ends it at once.
    let marker = dir.path().join("trapped");
    let m = manager(
        dir.path(),
        &format!(
            "trap '' TERM; : > {}; while :; do sleep 0.2; done",
            marker.display()
        ),
        "always",
    );
    m.start().await;
    let control = m.control().clone();
    wait_for(&control, Phase::Running, 1).await;
    let deadline = Instant::now() + DEADLINE;
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the shell never set its trap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handle = control.handle("p").expect("p").clone();
    let restart = handle.restart();
    wait_for(&control, Phase::Stopping, 1).await;
    control.stop_process("p").await.expect("the stop succeeds");
    assert_eq!(
        restart.await,
        Err(CommandError::Superseded("p".to_string())),
        "the restart gives way to the later stop"
    );
    // And nothing starts it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = handle.status();
    assert_eq!(s.phase(), Phase::Stopped, "{s:#?}");
    assert_eq!(s.runs, 1, "{s:#?}");
    m.shutdown().await;
}
