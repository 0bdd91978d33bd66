//! The manager says why: every ended run with its exit code or signal and
//! its duration, what the last check saw when `startup_timeout` ends a run,
//! the delay before a restart, and each error once.

use std::path::Path;
use std::time::Duration;

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;

use crate::support::*;

/// Runs `procman run` on `yaml` until `until` appears in its output (or
/// the deadline), then stops it; returns everything it wrote.
async fn manager_output(t: &Scratch, yaml: &str, until: &str) -> String {
    let file = t.path("procman.yaml");
    std::fs::write(&file, yaml).unwrap();
    let _cleanup = KillOnDrop(t.dir.path().display().to_string());
    let (mpid, exit, log) = start(
        Path::new(procman()),
        &["run", "-c", file.to_str().unwrap()],
        &[],
    );
    let text = wait_file(log.path(), until, Duration::from_secs(40)).await;
    signal_process(mpid, Signal::INT).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(30), exit)
        .await
        .expect("the manager ends")
        .expect("status");
    assert_eq!(end, ProcessEnd::Exited(0), "{text}");
    std::fs::read_to_string(log.path()).unwrap_or(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ended_run_is_logged_with_its_code_or_signal_and_duration() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let policy =
            "      restart_policy:\n        max_attempts: 1\n        restart_delay: 300ms\n";
        let yaml = t.header()
            + &child_entry("code", &["exit", "3"], policy)
            + &child_entry("signal", &["crash", "SEGV"], policy);
        let out = manager_output(&t, &yaml, "circuit breaker open").await;
        let ended = |what: &str| {
            out.lines()
                .filter(|l| l.contains("run ended: ") && l.contains(what))
                .count()
        };
        assert!(ended("exited with code 3") >= 1, "{out}");
        assert!(ended("killed by SIGSEGV") >= 1, "{out}");
        assert!(
            out.lines()
                .filter(|l| l.contains("run ended"))
                .all(|l| l.contains("after=") && l.contains("run=")),
            "each names its run and duration: {out}"
        );
        assert!(
            out.lines()
                .any(|l| l.contains("restarting after a delay") && l.contains("delay=")),
            "the backoff says its delay: {out}"
        );
        // And each process's own log closes every run with how it ended.
        for (id, how) in [
            ("code", "exited with code 3"),
            ("signal", "killed by SIGSEGV"),
        ] {
            let log = std::fs::read_to_string(t.path(&format!("state/logs/{id}.log"))).unwrap();
            let ends: Vec<&str> = log.lines().filter(|l| l.contains(" ended: ")).collect();
            assert!(!ends.is_empty(), "{id}: no run-end record in\n{log}");
            for line in ends {
                // A run still up when the test stops the manager ends by
                // that stop instead.
                let own = line.contains(&format!("ended: {how}"));
                let stopped = line.contains("(stop requested) after ");
                assert!(
                    (own || stopped) && line.contains(" after ") && line.ends_with(" -----"),
                    "{id}: {line}"
                );
            }
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_timeout_says_what_the_last_check_saw() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Nothing listens on a port we bound and let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let extra = format!(
            "{}      health_check:\n        http_endpoint: \"http://127.0.0.1:{port}/health\"\n        interval: 200ms\n      restart_policy:\n        strategy: never\n",
            control_keys("startup_timeout: 1s")
        );
        let yaml = t.header() + &child_entry("slow", &["run"], &extra);
        let out = manager_output(&t, &yaml, "startup_timeout expired").await;
        assert!(
            out.lines().any(|l| l.contains("startup_timeout expired; last check: connection refused")),
            "{out}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_failure_is_said_once_without_repeating_itself() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let not_a_dir = t.path("plain-file");
        std::fs::write(&not_a_dir, "").unwrap();
        let yaml = format!(
            "{}  - id: nodir\n    management:\n      control:\n        executable: /bin/true\n        working_directory: {:?}\n  - id: noexe\n    management:\n      control:\n        executable: no-such-program-procman\n",
            t.header(),
            not_a_dir.display().to_string()
        );
        let out = manager_output(&t, &yaml, "no-such-program-procman").await;
        let failures: Vec<&str> = out.lines().filter(|l| l.contains("to=\"failed\"") || l.contains("to=failed")).collect();
        assert_eq!(failures.len(), 2, "one line each: {out}");
        for line in failures {
            let words: Vec<&str> = line.split(": ").collect();
            for (i, w) in words.iter().enumerate() {
                assert!(!words[i + 1..].contains(w) || w.len() < 8, "repeated {w:?} in {line}");
            }
        }
        let nodir = out.lines().find(|l| l.contains("nodir") && l.contains("failed")).unwrap_or("");
        assert!(nodir.contains("is not a directory"), "{nodir}");
        assert_eq!(nodir.matches("not a directory").count(), 1, "{nodir}");
        let noexe = out.lines().find(|l| l.contains("noexe") && l.contains("failed")).unwrap_or("");
        assert_eq!(noexe.matches("no-such-program-procman").count(), 1, "{noexe}");
    })
    .await
    .expect("watchdog");
}
