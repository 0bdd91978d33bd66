//! What a new user found by trying to break the manager: a restart during
//! a deploy, a stopped child at shutdown, a trickle of output without a
//! newline, a manager killed and started again, and error messages that
//! must blame the right thing.

use std::path::Path;
use std::time::{Duration, Instant};

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;
use procman_core::supervisor::{Cause, Phase};

use crate::support::*;

/// A restart whose executable is briefly missing (a deploy that replaces
/// it) is a failed run for the restart policy: it goes on retrying, and
/// runs again once the file is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_executable_is_missing_keeps_retrying() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let app = t.path("app.sh");
        std::fs::write(&app, "#!/bin/sh\nsleep 0.3\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        let yaml = format!(
            "{}  - id: app\n    management:\n      control:\n        executable: \"./app.sh\"\n        working_directory: \"{}\"\n      restart_policy:\n        strategy: always\n        max_attempts: 0\n        restart_delay: 100ms\n        backoff_multiplier: 1.0\n",
            t.header(),
            t.dir.path().display()
        );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("app").unwrap();
        wait_status(&h, Duration::from_secs(20), "running", |s| s.phase() == Phase::Running).await;
        let away = t.path("app.sh.away");
        std::fs::rename(&app, &away).unwrap();
        let s = wait_status(&h, Duration::from_secs(20), "a failed spawn", |s| {
            matches!(
                s.last_transition.as_ref().map(|t| &t.cause),
                Some(Cause::SpawnFailed(_))
            )
        })
        .await;
        assert_eq!(s.phase(), Phase::Backoff, "retrying, not failed: {s:#?}");
        let runs = s.runs;
        std::fs::rename(&away, &app).unwrap();
        wait_status(&h, Duration::from_secs(20), "running again", |s| {
            s.runs > runs && s.phase().is_active()
        })
        .await;
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// A stopped (`SIGSTOP`ped) child still gets to handle its stop signal:
/// SIGCONT follows it, as with systemd, so its graceful exit happens at
/// once rather than a SIGKILL at `shutdown_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_child_still_exits_gracefully_on_a_stop() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let ready = t.path("ready");
        let script = format!(
            "trap 'exit 0' TERM; touch {}; while :; do sleep 0.1; done",
            ready.display()
        );
        let yaml = format!(
            "{}  - id: frozen\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", {script:?}]\n        shutdown_timeout: 20s\n",
            t.header()
        );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("frozen").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = h.status().pid().expect("pid");
        signal_process(pid, Signal(libc_sigstop())).unwrap();
        let t0 = Instant::now();
        m.stop_process("frozen").await.expect("stop");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(10), "waited for SIGKILL: {took:?}");
        assert_eq!(h.status().last_exit, Some(ProcessEnd::Exited(0)));
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

fn libc_sigstop() -> i32 {
    Signal::parse("STOP").expect("SIGSTOP").0
}

/// Output that never ends its line but keeps coming (a progress bar) is
/// written within a fraction of a second of its first byte, not held until
/// the line ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_without_newline_reaches_the_file_in_pieces() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = format!(
            "{}  - id: dots\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", \"while :; do printf .; sleep 0.05; done\"]\n",
            t.header()
        );
        let m = t.manager(&yaml);
        m.start().await;
        let log = t.path("state/logs/dots.log");
        // Pieces of a line to be continued: `stdout` then `stdout+`.
        let text = wait_file(&log, "stdout+ ", Duration::from_secs(10)).await;
        assert!(text.contains(" stdout ."), "{text}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// A manager killed with SIGKILL leaves its processes; the next one on the
/// same state directory stops them before it starts its own, so that no
/// second copy runs beside the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_killed_manager_the_next_one_reattaches_and_runs_no_second_copy() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let pidfile = t.path("svc.pid");
        let pidfile_s = pidfile.display().to_string();
        let yaml = t.header() + &child_entry("svc", &["--pidfile", &pidfile_s, "run"], "");
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();
        let (first, exit, _log) = start(Path::new(procman()), &["run", "-c", &file_s], &[]);
        let old = wait_pidfile(&pidfile, Duration::from_secs(30), |_| true).await;
        if !std::fs::read_to_string(format!("/proc/{old}/cgroup"))
            .unwrap_or_default()
            .contains("/procman-")
        {
            return skip_or_fail("no cgroup v2 tree here: leftovers are found by their cgroup");
        }
        signal_process(first, Signal::KILL).unwrap();
        let _ = exit.await;
        assert!(alive(old), "the service outlives its killed manager");
        // The next manager re-attaches to it: no second copy starts.
        let (second, exit, log) = start(Path::new(procman()), &["run", "-c", &file_s], &[]);
        let text = wait_file(log.path(), "re-attached", Duration::from_secs(30)).await;
        assert!(alive(old), "{text}");
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap_or_default().trim(),
            old.to_string(),
            "no second copy wrote its pid"
        );
        signal_process(second, Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit).await;
        assert!(matches!(end, Ok(Ok(ProcessEnd::Exited(0)))), "{text}");
        wait_gone(&[old], Duration::from_secs(30)).await;
    })
    .await
    .expect("watchdog");
}

/// Spawn errors blame the right thing: the working directory when it is
/// not a directory (not a missing executable in it), a script's missing
/// interpreter (not the script), the directory a `chdir` failed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_errors_name_what_is_wrong() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("afile");
        std::fs::write(&file, "").unwrap();
        let script = t.path("bad.sh");
        std::fs::write(&script, "#!/no/such/interp\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let yaml = format!(
            "{h}  - id: cwd\n    management:\n      control:\n        executable: \"./x.sh\"\n        working_directory: \"{f}\"\n  - id: shebang\n    management:\n      control:\n        executable: \"{s}\"\n  - id: dir\n    management:\n      control:\n        executable: \"{d}\"\n",
            h = t.header(),
            f = file.display(),
            s = script.display(),
            d = t.dir.path().display(),
        );
        let m = t.manager(&yaml);
        m.start().await;
        let reason = |id: &str| m.handle(id).unwrap().status().last_error.unwrap_or_default();
        assert!(reason("cwd").contains("is not a directory"), "{}", reason("cwd"));
        assert!(
            reason("shebang").contains("its interpreter /no/such/interp was not found"),
            "{}",
            reason("shebang")
        );
        assert!(reason("dir").contains("is a directory"), "{}", reason("dir"));
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// A process SIGKILLed at the end of its `shutdown_timeout` (its cgroup
/// killed) runs again when restarted: the kernel kills a child created
/// into a cgroup that was once killed, so the cgroup is renewed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_at_its_stop_deadline_runs_again_when_restarted() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("out");
        let yaml = t.header()
            + &child_entry_to_file(
                "stubborn",
                "ignore-term",
                &out,
                &control_keys("shutdown_timeout: 300ms"),
            );
        let m = t.manager(&yaml);
        m.start().await;
        wait_file(&out, "ready", Duration::from_secs(20)).await;
        let h = m.handle("stubborn").unwrap();
        m.restart_process("stubborn").await.expect("restart");
        let s = h.status();
        assert_eq!(
            s.last_exit,
            Some(ProcessEnd::Signaled {
                signal: Signal::KILL,
                core: false
            }),
            "the first run was killed at its deadline"
        );
        let pid = s.pid().expect("running again");
        // Still the same run a moment later: not killed as it was born.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = h.status();
        assert!(s.phase().is_active() && s.pid() == Some(pid), "{s:#?}");
        assert!(alive(pid));
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// `logrotate` without `copytruncate`: the log file is renamed, SIGUSR1
/// makes the manager open a new one at the path; every line is in one of
/// the two files, none in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_log_files_after_an_external_rename() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let yaml =
            t.header() + &child_entry("ticker", &["lines", "100000", "--interval", "20ms"], "");
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();
        let (mpid, exit, log) = start(Path::new(procman()), &["run", "-c", &file_s], &[]);
        let live = t.path("state/logs/ticker.log");
        wait_file(&live, "stdout", Duration::from_secs(30)).await;
        let rotated = t.path("state/logs/ticker.log.1");
        std::fs::rename(&live, &rotated).unwrap();
        signal_process(mpid, Signal::parse("USR1").unwrap()).unwrap();
        let fresh = wait_file(&live, "stdout", Duration::from_secs(30)).await;
        signal_process(mpid, Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit).await;
        let manager = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(matches!(end, Ok(Ok(ProcessEnd::Exited(0)))), "{manager}");
        let old = std::fs::read_to_string(&rotated).unwrap();
        let fresh = std::fs::read_to_string(&live).unwrap_or(fresh);
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.split_once(" stdout ").map(|(_, r)| r.to_string()))
                .collect()
        };
        let (a, b) = (lines(&old), lines(&fresh));
        assert!(!a.is_empty() && !b.is_empty(), "both files have lines");
        assert!(a.iter().all(|l| !b.contains(l)), "no line in both files");
    })
    .await
    .expect("watchdog");
}
