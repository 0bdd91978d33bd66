//! Restart policy on real processes: strategies, backoff, the breaker,
//! `reset_after`, batch jobs, durable stop intent.

use std::time::Duration;

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::policy::BreakerState;
use procman_core::supervisor::Phase;

use crate::support::*;

fn policy(lines: &str) -> String {
    let mut s = String::from("      restart_policy:\n");
    for l in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        s.push_str("        ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_restarted_with_growing_delays() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let stamp = t.path("stamps");
        let stamp_s = stamp.display().to_string();
        let yaml = t.header()
            + &child_entry(
                "crasher",
                &["--stamp", &stamp_s, "exit", "1"],
                &policy(
                    "strategy: on_failure\nmax_attempts: 0\nrestart_delay: 200ms\n\
                     backoff_multiplier: 2.0\njitter: 0\nmax_delay: 10s",
                ),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let s = wait_starts(&stamp, 4, Duration::from_secs(30)).await;
        m.shutdown().await;
        // Gap between each exit and the next start: 200, 400, 800 ms.
        let mut gaps = Vec::new();
        for w in s.windows(2) {
            if let [('E', e, _), ('S', st, _)] = w {
                gaps.push(Duration::from_nanos(st - e));
            }
        }
        assert!(gaps.len() >= 3, "{s:?}");
        for (i, want_ms) in [200u64, 400, 800].into_iter().enumerate() {
            let want = Duration::from_millis(want_ms);
            assert!(
                gaps[i] >= want.mul_f64(0.95),
                "gap {i} {:?} < {want:?}",
                gaps[i]
            );
            assert!(
                gaps[i] < want * 3 + Duration::from_secs(1),
                "gap {i} {:?}",
                gaps[i]
            );
        }
        let pids: Vec<u32> = s.iter().filter(|(k, ..)| *k == 'S').map(|x| x.2).collect();
        assert!(
            pids.windows(2).all(|w| w[0] != w[1]),
            "every run has a new pid"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_leaves_a_clean_exit_alone() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "ok",
                &["exit", "0"],
                &policy("strategy: on_failure\nrestart_delay: 0s"),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("ok").unwrap();
        let s = wait_status(&h, Duration::from_secs(20), "exited", |s| {
            s.phase() == Phase::Exited
        })
        .await;
        assert_eq!(s.last_exit, Some(ProcessEnd::Exited(0)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(h.status().runs, 1, "not restarted");
        assert_eq!(h.status().phase(), Phase::Exited);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_restarts_a_clean_exit_and_never_restarts_nothing() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "always",
                &["exit", "0"],
                &policy("strategy: always\nrestart_delay: 0s\nmax_attempts: 0"),
            )
            + &child_entry("never", &["exit", "4"], &policy("strategy: never"));
        let m = t.manager(&yaml);
        m.start().await;
        let always = m.handle("always").unwrap();
        wait_status(&always, Duration::from_secs(20), "3 runs", |s| s.runs >= 3).await;
        let never = m.handle("never").unwrap();
        let s = wait_status(&never, Duration::from_secs(20), "failed", |s| {
            s.phase() == Phase::Failed
        })
        .await;
        assert_eq!(s.last_exit, Some(ProcessEnd::Exited(4)));
        assert!(
            s.last_error
                .as_deref()
                .unwrap_or("")
                .contains("exited with code 4"),
            "{s:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(never.status().runs, 1);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_ends_in_failed_and_a_manual_start_closes_the_breaker() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "flaky",
                &["exit", "3"],
                &policy(
                    "max_attempts: 2\nrestart_delay: 50ms\nbackoff_multiplier: 1.0\nwindow: 10m",
                ),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("flaky").unwrap();
        let s = wait_status(&h, Duration::from_secs(20), "failed", |s| {
            s.phase() == Phase::Failed
        })
        .await;
        assert_eq!(s.runs, 3, "1 run + max_attempts restarts");
        assert_eq!(s.restarts, 2);
        assert_eq!(s.breaker, BreakerState::Open);
        let reason = s.last_error.unwrap_or_default();
        assert!(
            reason.contains("circuit breaker open") && reason.contains("exited with code 3"),
            "{reason}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.status().runs, 3, "nothing restarts a failed process");

        m.start_process("flaky").await.expect("manual start");
        let s = wait_status(&h, Duration::from_secs(20), "failed again", |s| {
            s.runs == 6 && s.phase() == Phase::Failed
        })
        .await;
        assert_eq!(s.runs, 6, "the breaker was closed: three more runs");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_forgives_past_failures() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Each run lives 600 ms and fails. With reset_after 400ms every run
        // counts as healthy long enough, so a breaker of 1 never opens.
        let forgiving =
            policy("max_attempts: 1\nrestart_delay: 10ms\nreset_after: 400ms\nwindow: 10m");
        let strict = policy("max_attempts: 1\nrestart_delay: 10ms\nreset_after: 10m\nwindow: 10m");
        let yaml = t.header()
            + &child_entry("forgiven", &["exit", "1", "--after", "600ms"], &forgiving)
            + &child_entry("strict", &["exit", "1", "--after", "600ms"], &strict);
        let m = t.manager(&yaml);
        m.start().await;
        let strict = m.handle("strict").unwrap();
        let s = wait_status(&strict, Duration::from_secs(20), "strict failed", |s| {
            s.phase() == Phase::Failed
        })
        .await;
        assert_eq!(s.runs, 2);
        let forgiven = m.handle("forgiven").unwrap();
        let s = wait_status(&forgiven, Duration::from_secs(30), "4 runs", |s| {
            s.runs >= 4
        })
        .await;
        assert_ne!(s.phase(), Phase::Failed, "{s:?}");
        assert_eq!(s.breaker, BreakerState::Closed);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_that_succeeds_is_never_restarted() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + "  - id: \"job\"\n    profile_type: \"batch\"\n"
            + &child_entry(
                "job",
                &["exit", "0"],
                &policy("strategy: always\nrestart_delay: 0s"),
            )
            .replacen("  - id: \"job\"\n", "", 1);
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("job").unwrap();
        wait_status(&h, Duration::from_secs(20), "exited", |s| {
            s.phase() == Phase::Exited
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(h.status().runs, 1);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_backoff_is_durable() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "crasher",
                &["exit", "1"],
                &policy("restart_delay: 400ms\nmax_attempts: 0"),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("crasher").unwrap();
        wait_status(&h, Duration::from_secs(20), "backoff", |s| {
            s.phase() == Phase::Backoff
        })
        .await;
        m.stop_process("crasher").await.expect("stop");
        let runs = h.status().runs;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(h.status().phase(), Phase::Stopped);
        assert_eq!(h.status().runs, runs, "no restart after a stop");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signal_deaths_are_kept_apart() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry("code", &["exit", "137"], &policy("strategy: never"))
            + &child_entry("segv", &["crash", "SEGV"], &policy("strategy: never"));
        let m = t.manager(&yaml);
        m.start().await;
        let code = wait_status(&m.handle("code").unwrap(), Duration::from_secs(20), "failed", |s| {
            s.phase() == Phase::Failed
        })
        .await;
        assert_eq!(code.last_exit, Some(ProcessEnd::Exited(137)));
        let segv = wait_status(&m.handle("segv").unwrap(), Duration::from_secs(20), "failed", |s| {
            s.phase() == Phase::Failed
        })
        .await;
        assert!(
            matches!(segv.last_exit, Some(ProcessEnd::Signaled { signal, .. }) if signal == Signal(libc_sigsegv())),
            "{:?}",
            segv.last_exit
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

fn libc_sigsegv() -> i32 {
    Signal::parse("SEGV").map(|s| s.0).unwrap_or(11)
}
