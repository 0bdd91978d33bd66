//! The manager's own output can never stop supervision: with stdout and
//! stderr closed (`procman run 2>&1 | head -1`) or stuck (a full pipe
//! nobody reads), children are still restarted, SIGINT still exits 0 and
//! leaves nothing behind, and the exit code of a failure is still 1 or 2.
//! The lines a stuck stderr could not take are counted, and the count said
//! at the end.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use procman_core::outcome::ProcessEnd;
use procman_core::platform::Stdio;

use super::*;

/// Generous for a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(30);

/// Aggregation targets that copy every child's output to the manager's
/// stdout and stderr, so the children's lines hit the broken streams too.
const TO_MANAGER_STREAMS: &str = "log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: process_manager_stdout\n      - type: process_manager_stderr\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stdout_and_stderr_closed_a_crashing_child_is_restarted_and_sigint_exits_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let stamp = t.path("crash.stamps");
        let (svc_entry, pidfile) = service(&t);
        let yaml = t.header()
            + &crashing_entry("crash", &stamp, "100ms")
            + &svc_entry
            + &child_entry("chatty", &["lines", "1000000", "--interval", "5ms"], "")
            + TO_MANAGER_STREAMS;
        let config = config_file(&t, &yaml);
        let config_s = config.display().to_string();
        // Debug logging: every restart writes a dozen lines to the broken
        // stderr.
        let mut m = Running::start(
            Path::new(procman()),
            &["run", "-c", &config_s],
            &[("PROCMAN_LOG", "debug")],
            Stdio::Fd(closed_pipe()),
            Stdio::Fd(closed_pipe()),
        );

        let svc = wait_pidfile(&pidfile, LONG, |_| true).await;
        let cgroup = manager_cgroup(svc);
        if std::env::var_os("CI").is_some() {
            assert!(
                cgroup.is_some(),
                "CI runs as root with cgroup v2: svc {svc} is in no cgroup of ours"
            );
        }
        let first = wait_distinct_starts(&stamp, 3, LONG).await;
        // Still restarting long after the first failed writes.
        let pids = wait_distinct_starts(&stamp, first.len() + 3, LONG).await;
        assert!(m.running(), "the manager ended:\n{}", m.log_text());

        m.signal(Sig::INT.as_raw());
        assert_eq!(m.ended(LONG).await, ProcessEnd::Exited(0));
        let mut all = pids;
        all.push(svc);
        wait_gone(&all, Duration::from_secs(5)).await;
        assert!(procs_mentioning(&t.dir.path().display().to_string()).is_empty());
        if let Some(dir) = cgroup {
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stderr_a_full_pipe_nobody_reads_a_crashing_child_is_restarted_and_sigint_exits_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let stamp = t.path("crash.stamps");
        let yaml = t.header() + &crashing_entry("crash", &stamp, "100ms");
        let config = config_file(&t, &yaml);
        let config_s = config.display().to_string();
        let (_keep_open, write) = stuck_pipe();
        let mut m = Running::start(
            Path::new(procman()),
            &["run", "-c", &config_s],
            &[("PROCMAN_LOG", "debug")],
            Stdio::Null,
            Stdio::Fd(write),
        );
        let pids = wait_distinct_starts(&stamp, 6, LONG).await;
        assert!(m.running(), "the manager ended:\n{}", m.log_text());
        m.signal(Sig::INT.as_raw());
        // The last lines cannot be written: the manager gives them up
        // after a bounded wait instead of hanging at exit.
        assert_eq!(m.ended(LONG).await, ProcessEnd::Exited(0));
        wait_gone(&pids, Duration::from_secs(5)).await;
        assert!(procs_mentioning(&t.dir.path().display().to_string()).is_empty());
    })
    .await
    .expect("watchdog");
}

/// A config that fails validation (exit 2).
fn invalid(t: &Scratch) -> std::path::PathBuf {
    config_file(t, &(t.header() + "  - id: \"bad id!\"\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_exits_2_even_when_stderr_is_closed_or_stuck() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let config = invalid(&t).display().to_string();
        let args = ["run", "-c", config.as_str()];
        let mut closed = Running::start(
            Path::new(procman()),
            &args,
            &[],
            Stdio::Null,
            Stdio::Fd(closed_pipe()),
        );
        assert_eq!(closed.ended(LONG).await, ProcessEnd::Exited(2));

        let (_keep_open, write) = stuck_pipe();
        let mut stuck = Running::start(
            Path::new(procman()),
            &args,
            &[],
            Stdio::Null,
            Stdio::Fd(write),
        );
        assert_eq!(stuck.ended(LONG).await, ProcessEnd::Exited(2));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_state_dir_exits_1_even_when_stderr_is_closed() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (svc_entry, pidfile) = service(&t);
        let yaml = t.header() + &svc_entry;
        let config = config_file(&t, &yaml);
        let mut first = Running::run_logged(&config, &t.path("first.log"), &[]);
        wait_pidfile(&pidfile, LONG, |_| true).await;

        let config_s = config.display().to_string();
        let mut second = Running::start(
            Path::new(procman()),
            &["run", "-c", &config_s],
            &[],
            Stdio::Null,
            Stdio::Fd(closed_pipe()),
        );
        assert_eq!(second.ended(LONG).await, ProcessEnd::Exited(1));

        first.signal(Sig::TERM.as_raw());
        assert_eq!(
            first.ended(LONG).await,
            ProcessEnd::Exited(0),
            "{}",
            first.log_text()
        );
    })
    .await
    .expect("watchdog");
}

/// Reads everything `read` has (non-blocking) until it holds `needle`.
async fn drain_until(read: OwnedFd, needle: &str) -> String {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(&read).expect("getfl");
    fcntl_setfl(&read, flags | OFlags::NONBLOCK).expect("setfl");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + LONG;
    loop {
        match rustix::io::read(&read, &mut buf) {
            Ok(0) => {}
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                continue;
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(e) => panic!("read the manager's stderr: {e}"),
        }
        let text = String::from_utf8_lossy(&got);
        if text.contains(needle) {
            return text.into_owned();
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_a_stuck_stderr_could_not_take_are_counted_and_said() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        // Restarted at once, forever: about 400 bytes of log per run.
        let policy = "      restart_policy:\n        restart_delay: 0s\n        max_attempts: 0\n";
        let yaml = t.header() + &child_entry("loop", &["exit", "1"], policy);
        let config = config_file(&t, &yaml).display().to_string();
        let (read, write) = stuck_pipe();
        let mut m = Running::start(
            Path::new(procman()),
            &["run", "-c", &config],
            &[],
            Stdio::Null,
            Stdio::Fd(write),
        );
        // 2500 runs write about 1 MiB: far more than the full pipe and the
        // manager's queue (256 KiB) hold, so lines were dropped.
        let client =
            procman_api::client::Client::unix(t.path("state").join(procman_api::SOCKET_NAME));
        let deadline = Instant::now() + LONG * 2;
        loop {
            let runs = match client.processes().await {
                Ok(ps) => ps.first().map_or(0, |p| p.runs),
                Err(_) => 0,
            };
            if runs >= 2500 {
                break;
            }
            assert!(Instant::now() < deadline, "only {runs} runs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(m.running(), "the manager ended");
        // stderr takes lines again; the last one says how many were lost.
        let drained = tokio::spawn(drain_until(read, "procman stopped"));
        m.signal(Sig::INT.as_raw());
        assert_eq!(m.ended(LONG).await, ProcessEnd::Exited(0));
        let text = drained.await.expect("drain");
        let last = text
            .lines()
            .find(|l| l.contains("procman stopped"))
            .unwrap_or_default();
        let lost: u64 = last
            .split("lost_manager_log_lines=")
            .nth(1)
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no count in {last:?}"));
        assert!(lost > 0, "{last}");
    })
    .await
    .expect("watchdog");
}
