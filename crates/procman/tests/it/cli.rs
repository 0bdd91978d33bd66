//! The `procman` binary as a user runs it: `validate`, `run`, `--version`,
//! exit codes (0 success, 1 run-time failure, 2 invalid config), the
//! one-manager-per-state-dir lock, and SIGINT.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;

use crate::support::*;
use crate::validate_limits::LIMITS_HEADING;

/// Long enough for a process that was wrongly started to show up.
const SETTLE: Duration = Duration::from_secs(1);

fn procman_path() -> &'static Path {
    Path::new(procman())
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// The output of a started `procman`, for failure messages.
fn output_of(log: &tempfile::NamedTempFile) -> String {
    std::fs::read_to_string(log.path()).unwrap_or_default()
}

/// Waits for a started program to end; kills it at the deadline.
async fn ended(
    pid: u32,
    exit: tokio::sync::oneshot::Receiver<ProcessEnd>,
    within: Duration,
    log: &tempfile::NamedTempFile,
) -> ProcessEnd {
    match tokio::time::timeout(within, exit).await {
        Ok(end) => end.expect("exit status"),
        Err(_) => {
            let _ = signal_process(pid, Signal::KILL);
            panic!(
                "pid {pid} still running after {within:?}; output:\n{}",
                output_of(log)
            );
        }
    }
}

/// Waits until no live process mentions `needle` in its command line.
async fn wait_none_mentioning(needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = procs_mentioning(needle);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running after {within:?}: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_accepts_the_examples_with_a_one_line_summary() {
    tokio::time::timeout(WATCHDOG, async {
        for name in ["hsu-spec-example.yaml", "quickstart.yaml"] {
            let file = example(name).display().to_string();
            let (end, out) = run(procman_path(), &["validate", "-c", &file], &[]).await;
            assert_eq!(end, ProcessEnd::Exited(0), "{name}:\n{out}");
            let lines: Vec<&str> = out.lines().collect();
            assert!(lines[0].contains(name), "names the file: {out:?}");
            assert!(lines[0].contains("valid"), "{out:?}");
            if name == "quickstart.yaml" {
                assert_eq!(lines.len(), 1, "one line for {name}: {out:?}");
            } else {
                // The spec example's process has limits: what enforces them.
                assert_eq!(lines[1], LIMITS_HEADING, "{out}");
                assert!(
                    lines[2].starts_with("  my-service: max_memory_mb 512 ("),
                    "{out}"
                );
            }
        }
        let file = example("hsu-spec-example.yaml").display().to_string();
        let (_, out) = run(procman_path(), &["validate", "-c", &file], &[]).await;
        assert!(
            out.contains("1 process"),
            "the spec example has one process: {out:?}"
        );
    })
    .await
    .expect("watchdog");
}

/// A config with one valid process (it would write `pidfile`) and four
/// errors; returns the text and, per error, (line, offending token, key
/// path).
fn invalid_config(
    t: &Scratch,
    pidfile: &Path,
) -> (String, Vec<(usize, &'static str, &'static str)>) {
    let text = format!(
        r#"process_manager:
  port: 0
  log_level: "loud"
  state_dir: "{state}"
managed_processes:
  - id: "ok"
    management:
      control:
        executable: "{child}"
        arguments: ["--pidfile", "{pidfile}", "run"]
  - id: "bad"
    management:
      control:
        executable: "sh"
        shutdown_timeout: "soon"
      restart_policy:
        strategy: "sometimes"
        max_attemps: 3
"#,
        state = t.path("state").display(),
        child = child().display(),
        pidfile = pidfile.display(),
    );
    let errors = vec![
        (3, "\"loud\"", "process_manager.log_level"),
        (
            15,
            "\"soon\"",
            "managed_processes[1].management.control.shutdown_timeout",
        ),
        (
            17,
            "\"sometimes\"",
            "managed_processes[1].management.restart_policy.strategy",
        ),
        (
            18,
            "max_attemps",
            "managed_processes[1].management.restart_policy.max_attemps",
        ),
    ];
    (text, errors)
}

/// Checks that `out` holds exactly one `FILE:LINE:COL: key.path: message`
/// line per expected error, in order, the column pointing at the token.
fn assert_errors(out: &str, file: &Path, text: &str, want: &[(usize, &str, &str)]) {
    let file = file.display().to_string();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), want.len(), "one line per error:\n{out}");
    for (got, &(line, token, key)) in lines.iter().zip(want) {
        let rest = got
            .strip_prefix(&format!("{file}:"))
            .unwrap_or_else(|| panic!("does not start with the file name {file}: {got}"));
        let mut parts = rest.splitn(4, ':');
        let (l, c) = (parts.next().unwrap(), parts.next().unwrap_or(""));
        let (path, message) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert_eq!(l.parse::<usize>().ok(), Some(line), "line number in: {got}");
        let source_line = text.lines().nth(line - 1).unwrap();
        let col = source_line.find(token).unwrap() + 1;
        assert_eq!(
            c.parse::<usize>().ok(),
            Some(col),
            "column of {token} in: {got}"
        );
        assert_eq!(path.trim(), key, "key path in: {got}");
        assert!(!message.trim().is_empty(), "a message in: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_every_error_as_file_line_col_key_path_message() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (text, want) = invalid_config(&t, &t.path("ok.pid"));
        let file = t.path("procman.yaml");
        std::fs::write(&file, &text).unwrap();
        let file_s = file.display().to_string();
        let (end, out) = run(procman_path(), &["validate", "-c", &file_s], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        assert_errors(&out, &file, &text, &want);
        assert!(
            out.contains("did you mean `max_attempts`"),
            "an unknown key gets a hint:\n{out}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_an_invalid_config_exits_2_and_starts_nothing() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let pidfile = t.path("ok.pid");
        let (text, want) = invalid_config(&t, &pidfile);
        let file = t.path("procman.yaml");
        std::fs::write(&file, &text).unwrap();
        let file_s = file.display().to_string();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (pid, exit, log) = start(procman_path(), &["run", "-c", &file_s], &[]);
        let end = ended(pid, exit, Duration::from_secs(30), &log).await;
        let out = output_of(&log);
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        assert_errors(&out, &file, &text, &want);
        // Anything it had spawned would outlive it and write the pidfile.
        tokio::time::sleep(SETTLE).await;
        assert!(!pidfile.exists(), "the valid process was started");
        assert!(procs_mentioning(&t.dir.path().display().to_string()).is_empty());
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_state_dir_exits_1_naming_the_first_pid() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let pidfile = t.path("svc.pid");
        let pidfile_s = pidfile.display().to_string();
        let yaml = t.header() + &child_entry("svc", &["--pidfile", &pidfile_s, "run"], "");
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();

        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (first, first_exit, first_log) = start(procman_path(), &["run", "-c", &file_s], &[]);
        let svc = wait_pidfile(&pidfile, Duration::from_secs(30), |_| true).await;

        let (second, second_exit, second_log) = start(procman_path(), &["run", "-c", &file_s], &[]);
        let end = ended(second, second_exit, Duration::from_secs(30), &second_log).await;
        let out = output_of(&second_log);
        assert_eq!(end, ProcessEnd::Exited(1), "{out}");
        let first_s = first.to_string();
        assert!(
            out.split(|c: char| !c.is_ascii_digit())
                .any(|w| w == first_s),
            "the message names the first manager's pid {first}:\n{out}"
        );

        tokio::time::sleep(SETTLE).await;
        let mentioning = procs_mentioning(&pidfile_s);
        assert_eq!(
            mentioning.len(),
            1,
            "one service, no duplicate: {mentioning:#?}"
        );
        assert_eq!(mentioning[0].0, svc);
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap().trim(),
            svc.to_string()
        );

        signal_process(first, Signal::TERM).unwrap();
        let end = ended(first, first_exit, Duration::from_secs(30), &first_log).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{}", output_of(&first_log));
        wait_gone(&[svc], Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_prints_name_and_version() {
    tokio::time::timeout(WATCHDOG, async {
        let (end, out) = run(procman_path(), &["--version"], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{out}");
        assert_eq!(out.trim(), format!("procman {}", env!("CARGO_PKG_VERSION")));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_manager_with_exit_0_and_no_child_left() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mut yaml = t.header();
        let mut pidfiles = Vec::new();
        for i in 0..2 {
            let pidfile = t.path(&format!("svc{i}.pid"));
            let pidfile_s = pidfile.display().to_string();
            yaml += &child_entry(&format!("svc{i}"), &["--pidfile", &pidfile_s, "run"], "");
            pidfiles.push(pidfile);
        }
        // A tree that left the group, the session and its parent; each
        // member's command line names our temp dir (the --pidfile path).
        let tree_out = t.path("tree.out");
        let args = format!(
            "--pidfile {} grandchildren --daemon",
            t.path("tree.pid").display()
        );
        yaml += &child_entry_to_file("tree", &args, &tree_out, "");
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();

        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (mpid, exit, log) = start(procman_path(), &["run", "-c", &file_s], &[]);
        let mut pids = Vec::new();
        for f in &pidfiles {
            pids.push(wait_pidfile(f, Duration::from_secs(30), |_| true).await);
        }
        let text = wait_file(&tree_out, "ready", Duration::from_secs(30)).await;
        pids.extend(pids_in(&text, "grandchild"));
        pids.extend(pids_in(&text, "ready"));
        assert_eq!(pids.len(), 6, "{text}");
        assert!(pids.iter().all(|&p| alive(p)), "all running before SIGINT");

        signal_process(mpid, Signal::INT).unwrap();
        let end = ended(mpid, exit, Duration::from_secs(30), &log).await;
        assert_eq!(
            end,
            ProcessEnd::Exited(0),
            "manager output:\n{}",
            output_of(&log)
        );
        wait_gone(&pids, Duration::from_secs(5)).await;
        wait_none_mentioning(&t.dir.path().display().to_string(), Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}

/// A config that loads with one warning: a process restarted at once and
/// without limit. Returns the text and the warning's line.
fn config_with_a_warning(t: &Scratch, pidfile: &Path) -> (String, usize) {
    let extra = "      restart_policy:\n        max_attempts: 0\n        restart_delay: 0s\n";
    let pidfile = pidfile.display().to_string();
    let yaml = t.header() + &child_entry("svc", &["--pidfile", &pidfile, "run"], extra);
    let line = yaml
        .lines()
        .position(|l| l.contains("restart_delay"))
        .expect("restart_delay line")
        + 1;
    (yaml, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_prints_warnings_on_stderr_exits_0_and_counts_them() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (yaml, line) = config_with_a_warning(&t, &t.path("svc.pid"));
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let err_file = t.path("stderr.txt");
        let (file_s, err_s) = (file.display().to_string(), err_file.display().to_string());
        // Through sh, to tell stderr from stdout.
        let script = "exec \"$0\" validate -c \"$1\" 2>\"$2\"";
        let args = ["-c", script, procman(), file_s.as_str(), err_s.as_str()];
        let (end, out) = run(Path::new("/bin/sh"), &args, &[]).await;
        let err = std::fs::read_to_string(&err_file).unwrap_or_default();
        assert_eq!(end, ProcessEnd::Exited(0), "stdout:\n{out}\nstderr:\n{err}");
        assert_eq!(
            out.trim(),
            format!("{file_s}: valid (1 process, 1 enabled, 1 warning)")
        );
        let want = format!(
            "{file_s}:{line}:24: managed_processes[0].management.restart_policy.restart_delay: \
             warning: restart_delay 0s with max_attempts 0"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&want), "want {want:?}\ngot {err:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_a_file_of_nul_bytes_naming_the_place() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("procman.yaml");
        std::fs::write(&file, [0u8; 10]).unwrap();
        let file_s = file.display().to_string();
        let (end, out) = run(procman_path(), &["validate", "-c", &file_s], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        assert_eq!(
            out.trim(),
            format!(
                "{file_s}:1:1: a NUL byte (and 9 more after it) in the file: a config file is text"
            )
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_logs_each_warning_at_start_and_runs_anyway() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let pidfile = t.path("svc.pid");
        let (yaml, line) = config_with_a_warning(&t, &pidfile);
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();

        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (mpid, exit, log) = start(procman_path(), &["run", "-c", &file_s], &[]);
        let svc = wait_pidfile(&pidfile, Duration::from_secs(30), |_| true).await;
        let needle = format!("{file_s}:{line}:24: managed_processes[0]");
        let text = wait_file(log.path(), &needle, Duration::from_secs(30)).await;
        let warning = text.lines().find(|l| l.contains(&needle)).unwrap_or("");
        assert!(warning.contains("WARN"), "at warn level: {warning}");
        assert!(warning.contains("restart_delay 0s"), "{warning}");

        signal_process(mpid, Signal::INT).unwrap();
        let end = ended(mpid, exit, Duration::from_secs(30), &log).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{}", output_of(&log));
        wait_gone(&[svc], Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}
