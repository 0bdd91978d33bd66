//! Signals to the manager: no catchable signal ends it without an orderly
//! shutdown; SIGINT, SIGTERM and SIGQUIT shut down gracefully (exit 0); a
//! second one kills every process at once; a third exits at once (exit 1).

use std::time::{Duration, Instant};

use procman_core::outcome::{ProcessEnd, Signal};

use super::*;

const LONG: Duration = Duration::from_secs(30);

/// A header whose `force_shutdown_timeout` is far beyond any wait below.
fn patient_header(t: &Scratch) -> String {
    t.header().replace(
        "force_shutdown_timeout: \"30s\"",
        "force_shutdown_timeout: \"300s\"",
    )
}

/// Every signal whose default action would end the manager, except the
/// shutdown signals and the faults of the manager itself (SEGV, BUS, ILL,
/// FPE, ABRT, TRAP, SYS), which keep their default.
fn harmless_and_special() -> Vec<i32> {
    let named = [
        Sig::HUP,
        Sig::USR1,
        Sig::USR2,
        Sig::ALARM,
        Sig::VTALARM,
        Sig::PROF,
        Sig::IO,
        Sig::POWER,
        Sig::STKFLT,
        Sig::XCPU,
        Sig::XFSZ,
    ];
    named.iter().map(|s| s.as_raw()).chain(32..=64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_signal_but_a_shutdown_ends_the_manager_and_its_child_stays_supervised() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let stamp = t.path("crash.stamps");
        let (svc_entry, pidfile) = service(&t);
        let yaml = t.header() + &crashing_entry("crash", &stamp, "300ms") + &svc_entry;
        let config = config_file(&t, &yaml);
        let log = t.path("manager.log");
        let mut m = Running::run_logged(&config, &log, &[("PROCMAN_LOG", "debug")]);
        let svc = wait_pidfile(&pidfile, LONG, |_| true).await;
        wait_distinct_starts(&stamp, 2, LONG).await;

        let signals = harmless_and_special();
        for &n in &signals {
            m.signal(n);
        }
        // Each handled one leaves a line (32 and 33, which glibc keeps for
        // itself, are ignored without one).
        wait_file(&log, "SIGHUP: reloading the config", LONG).await;
        wait_file(&log, "SIGUSR1: reopening the log files", LONG).await;
        wait_file(&log, "SIGUSR2: the state of every process", LONG).await;
        let text = wait_file(&log, &format!("process=svc state=running pid={svc} "), LONG).await;
        assert!(
            text.contains("process=crash state="),
            "one line per process:\n{text}"
        );
        for &n in signals
            .iter()
            .filter(|&&n| n > 12 && !(32..=33).contains(&n))
        {
            let name = Signal(n).name();
            wait_file(&log, &format!("signal ignored signal={name}"), LONG).await;
        }

        // Still there, still supervising: the same svc, new crash runs.
        let before = wait_distinct_starts(&stamp, 1, LONG).await.len();
        wait_distinct_starts(&stamp, before + 2, LONG).await;
        assert!(m.running(), "the manager ended:\n{}", m.log_text());
        assert!(alive(svc), "svc {svc} was lost");

        m.signal(Sig::INT.as_raw());
        assert_eq!(
            m.ended(LONG).await,
            ProcessEnd::Exited(0),
            "{}",
            m.log_text()
        );
        wait_gone(&[svc], Duration::from_secs(5)).await;
        assert!(procs_mentioning(&t.dir.path().display().to_string()).is_empty());
    })
    .await
    .expect("watchdog");
}

/// Waits until `pid` blocks or handles SIGHUP: the earliest moment the
/// manager can look after signals (before `main`, nothing can).
async fn wait_signals_looked_after(pid: u32) {
    let deadline = Instant::now() + LONG;
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mask = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0)
        };
        let hup = 1u64 << (Sig::HUP.as_raw() - 1);
        if (mask("SigBlk:") | mask("SigCgt:")) & hup != 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} never looked after SIGHUP:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_that_arrive_during_start_up_are_handled_once_it_is_done() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (svc_entry, pidfile) = service(&t);
        let yaml = t.header() + &svc_entry;
        let config = config_file(&t, &yaml);
        let log = t.path("manager.log");
        let mut m = Running::run_logged(&config, &log, &[]);
        wait_signals_looked_after(m.pid).await;
        for sig in [Sig::HUP, Sig::USR1, Sig::USR2, Sig::ALARM, Sig::PROF] {
            m.signal(sig.as_raw());
        }
        let svc = wait_pidfile(&pidfile, LONG, |_| true).await;
        wait_file(&log, "SIGUSR2: the state of every process", LONG).await;
        wait_file(&log, "SIGHUP: reloading the config", LONG).await;
        assert!(m.running(), "the manager ended:\n{}", m.log_text());
        m.signal(Sig::INT.as_raw());
        assert_eq!(
            m.ended(LONG).await,
            ProcessEnd::Exited(0),
            "{}",
            m.log_text()
        );
        wait_gone(&[svc], Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_stops_every_process_gracefully_and_exits_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (svc_entry, pidfile) = service(&t);
        let yaml = t.header() + &svc_entry;
        let config = config_file(&t, &yaml);
        let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        let svc = wait_pidfile(&pidfile, LONG, |_| true).await;
        m.signal(Sig::QUIT.as_raw());
        assert_eq!(
            m.ended(LONG).await,
            ProcessEnd::Exited(0),
            "{}",
            m.log_text()
        );
        assert!(m.log_text().contains("signal=SIGQUIT"), "{}", m.log_text());
        wait_gone(&[svc], Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}

/// A manager running a tree that ignores SIGTERM (a leader and three
/// grandchildren that left its group, session or parent) with a
/// `shutdown_timeout` of 120 s; after its first SIGINT. Returns the
/// manager and every pid of the tree.
async fn shutting_down_a_stubborn_tree(t: &Scratch) -> (Running, Vec<u32>) {
    let out = t.path("tree.out");
    let args = format!(
        "--pidfile {} grandchildren --daemon --ignore-term",
        t.path("tree.pid").display()
    );
    let yaml = patient_header(t)
        + &child_entry_to_file("tree", &args, &out, &control_keys("shutdown_timeout: 120s"));
    let config = config_file(t, &yaml);
    let log = t.path("manager.log");
    let m = Running::run_logged(&config, &log, &[]);
    let text = wait_file(&out, "ready", LONG).await;
    let mut pids = pids_in(&text, "grandchild");
    pids.extend(pids_in(&text, "ready"));
    assert_eq!(pids.len(), 4, "{text}");

    m.signal(Sig::INT.as_raw());
    wait_file(&log, "shutting down", LONG).await;
    // The tree ignores the SIGTERM of the graceful stop.
    assert!(
        pids.iter().all(|&p| alive(p)),
        "the tree must ignore SIGTERM"
    );
    (m, pids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_shutdown_signal_kills_every_process_at_once_and_exits_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (mut m, pids) = shutting_down_a_stubborn_tree(&t).await;
        let t0 = Instant::now();
        m.signal(Sig::TERM.as_raw());
        wait_gone(&pids, Duration::from_secs(5)).await;
        assert_eq!(
            m.ended(LONG).await,
            ProcessEnd::Exited(0),
            "{}",
            m.log_text()
        );
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}, the grace is 120 s"
        );
        assert!(
            m.log_text().contains("second shutdown signal"),
            "{}",
            m.log_text()
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_shutdown_signal_kills_every_process_and_exits_1_at_once() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (mut m, pids) = shutting_down_a_stubborn_tree(&t).await;
        // Both more signals must arrive before the second one's kill can
        // complete the shutdown: hold the manager still while they are
        // sent, so that it receives them together.
        m.signal(Sig::STOP.as_raw());
        wait_stopped(m.pid).await;
        m.signal(Sig::TERM.as_raw());
        m.signal(Sig::QUIT.as_raw());
        let t0 = Instant::now();
        m.signal(Sig::CONT.as_raw());
        assert_eq!(
            m.ended(LONG).await,
            ProcessEnd::Exited(1),
            "{}",
            m.log_text()
        );
        // Killed synchronously before the exit: gone at once.
        wait_gone(&pids, Duration::from_secs(2)).await;
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}, the grace is 120 s"
        );
        let text = m.log_text();
        assert!(text.contains("third shutdown signal"), "{text}");
        assert!(
            text.contains("procman: exited at once"),
            "the exit message: {text}"
        );
    })
    .await
    .expect("watchdog");
}
