//! A run that ends by itself: `procman run --exit-on-end` exits once every
//! process is final (0 when all succeeded, 1 otherwise), and a process
//! with `shutdown_on_exit: true` ends the manager when it ends. In both,
//! nothing is left running afterwards.

use std::path::Path;
use std::time::Duration;

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;

use crate::support::*;

/// Generous: a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(60);

/// Runs `procman run -c FILE ARGS` to its end: how it ended and what it
/// wrote. Killed (and the test failed) if it does not end in time.
async fn run_manager(config: &Path, extra: &[&str]) -> (ProcessEnd, String) {
    let mut args = vec!["run", "-c", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let (pid, exit, out) = start(Path::new(procman()), &args, &[]);
    match tokio::time::timeout(WITHIN, exit).await {
        Ok(end) => (
            end.expect("exit status"),
            std::fs::read_to_string(out.path()).unwrap_or_default(),
        ),
        Err(_) => {
            let _ = signal_process(pid, Signal::KILL);
            panic!(
                "procman did not end by itself within {WITHIN:?}:\n{}",
                std::fs::read_to_string(out.path()).unwrap_or_default()
            );
        }
    }
}

fn sh_entry(id: &str, script: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n{extra}    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", {script:?}]\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_on_end_exits_0_once_every_job_succeeded() {
    let t = Scratch::new();
    let marker = t.path("second-ran");
    let yaml = t.header()
        + &sh_entry("first", "sleep 0.3", "    profile_type: batch\n")
        + &sh_entry(
            "second",
            &format!("touch {}", marker.display()),
            "    profile_type: batch\n    depends_on: [{first: {condition: completed_successfully}}]\n",
        )
        + "  - id: off\n    enabled: false\n    management: {control: {executable: /bin/sleep, arguments: ['100']}}\n";
    t.config(&yaml);
    let (end, out) = run_manager(&t.path("procman.yaml"), &["--exit-on-end"]).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{out}");
    assert!(
        marker.exists(),
        "the dependent job ran before the end:\n{out}"
    );
    assert!(
        out.contains("every process has ended, all successfully"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_on_end_exits_1_naming_what_failed_and_what_never_started() {
    let t = Scratch::new();
    let yaml = t.header()
        + &sh_entry("migrate", "exit 3", "    profile_type: batch\n")
        + "      restart_policy: {max_attempts: 1, restart_delay: 50ms}\n"
        + &sh_entry(
            "api",
            "sleep 100",
            "    depends_on: [{migrate: {condition: completed_successfully}}]\n",
        )
        + &sh_entry("ok", "true", "    profile_type: batch\n");
    t.config(&yaml);
    let (end, out) = run_manager(&t.path("procman.yaml"), &["--exit-on-end"]).await;
    assert_eq!(end, ProcessEnd::Exited(1), "{out}");
    assert!(
        out.contains("every process has ended; not successful: migrate, api"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_on_exit_ends_the_manager_and_stops_the_rest() {
    for (code, expected) in [(0, 0), (4, 1)] {
        let t = Scratch::new();
        let runs = t.path("runs");
        let service = t.path("service.pid");
        let yaml = t.header()
            + &sh_entry(
                "main",
                &format!("echo run >> {}; sleep 0.5; exit {code}", runs.display()),
                "    shutdown_on_exit: true\n",
            )
            // Always restarted, were it not for shutdown_on_exit.
            + "      restart_policy: {strategy: always, restart_delay: 0s}\n"
            + &sh_entry(
                "service",
                // `$$` is how the config writes a `$`.
                // `$$` is how a config writes `$`: the shell sees `echo $$`.
                &format!("echo $$$$ > {}; exec sleep 100", service.display()),
                "",
            );
        t.config(&yaml);
        let (end, out) = run_manager(&t.path("procman.yaml"), &[]).await;
        assert_eq!(end, ProcessEnd::Exited(expected), "exit {code}:\n{out}");
        let runs = std::fs::read_to_string(&runs).unwrap_or_default();
        assert_eq!(
            runs.lines().count(),
            1,
            "main ran once, not restarted:\n{out}"
        );
        let pid: u32 = std::fs::read_to_string(&service)
            .expect("the service ran")
            .trim()
            .parse()
            .expect("pid");
        assert!(!alive(pid), "the other process was stopped:\n{out}");
        let said = if code == 0 {
            "`main` (shutdown_on_exit) ended successfully"
        } else {
            "`main` (shutdown_on_exit) ended without success"
        };
        assert!(out.contains(said), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_stopped_on_request_does_not_end_the_manager() {
    let t = Scratch::new();
    let yaml = t.header()
        + &sh_entry("main", "exec sleep 100", "    shutdown_on_exit: true\n")
        + &sh_entry("other", "exec sleep 100", "");
    let config = t.config(&yaml);
    let manager = procman_core::manager::Manager::new(config).expect("manager");
    manager.start().await;
    let control = manager.control().clone();
    let ended = tokio::spawn({
        let control = control.clone();
        async move { control.completion(false).await }
    });
    control.stop_process("main").await.expect("stop");
    control.start_process("main").await.expect("start again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ended.is_finished(), "a stop on request is no end");
    // Its own end is.
    control
        .signal_process("main", Signal::KILL, false)
        .await
        .expect("signal");
    let done = tokio::time::timeout(WITHIN, ended)
        .await
        .expect("ended in time")
        .expect("task");
    assert!(!done.success(), "{done}");
    manager.stop().await;
    manager.shutdown().await;
}

/// With `--exit-on-end`, a stop before the work has ended is no success:
/// SIGTERM stops everything gracefully, and the exit code is 1.
#[tokio::test(flavor = "multi_thread")]
async fn exit_on_end_cut_short_by_sigterm_exits_1() {
    let t = Scratch::new();
    let started = t.path("started");
    let yaml = t.header()
        + &sh_entry(
            "job",
            &format!("echo up > {}; exec sleep 100", started.display()),
            "    profile_type: batch\n",
        );
    t.config(&yaml);
    let file = t.path("procman.yaml");
    let args = ["run", "-c", file.to_str().expect("utf-8"), "--exit-on-end"];
    let (pid, exit, out) = start(Path::new(procman()), &args, &[]);
    wait_file(&started, "up", WITHIN).await;
    signal_process(pid, Signal::TERM).expect("signal");
    let end = match tokio::time::timeout(WITHIN, exit).await {
        Ok(end) => end.expect("exit status"),
        Err(_) => {
            let _ = signal_process(pid, Signal::KILL);
            panic!("procman did not stop on SIGTERM");
        }
    };
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert_eq!(end, ProcessEnd::Exited(1), "{text}");
    assert!(
        text.contains("stopped by SIGTERM before every process had ended"),
        "{text}"
    );
}
