//! procman as PID 1 of a new pid namespace (as in a container): orphans are
//! reparented to it, SIGTERM stops every process gracefully and it exits 0.
//!
//! Needs root and `unshare` (util-linux); skipped, saying why, otherwise
//! (and failing when `CI` is set).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::{resolve_program, signal_process};

use crate::support::*;

/// Why this machine cannot run the test, if it cannot.
async fn unshare_or_skip_reason() -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().expect("cwd");
    let unshare = resolve_program("unshare", &cwd, std::env::var_os("PATH").as_ref())
        .map_err(|e| format!("no unshare: {e}"))?;
    if !is_root() {
        return Err("not root: creating a pid namespace needs CAP_SYS_ADMIN".into());
    }
    let (end, out) = run(&unshare, &["--pid", "--fork", "--mount-proc", "true"], &[]).await;
    if end != ProcessEnd::Exited(0) {
        return Err(format!(
            "cannot create a pid namespace ({end}): {}",
            out.trim()
        ));
    }
    Ok(unshare)
}

/// `unshare` and a scratch dir; `None` (after saying why, or failing
/// under CI) when this machine cannot make a pid namespace.
async fn setup() -> Option<(PathBuf, Scratch)> {
    match unshare_or_skip_reason().await {
        Ok(unshare) => Some((unshare, Scratch::new())),
        Err(why) => {
            skip_or_fail(&format!("pid1: {why}"));
            None
        }
    }
}

/// Writes `yaml` as the scratch dir's config and starts `procman run` on
/// it as PID 1 of a new pid namespace, with `extra` arguments. The guard
/// kills what is left of it (by the scratch dir's path) when dropped:
/// killing procman, PID 1, would end the whole namespace.
fn run_as_pid_1(unshare: &Path, t: &Scratch, yaml: &str, extra: &[&str]) -> (KillOnDrop, Started) {
    let file = t.path("procman.yaml");
    std::fs::write(&file, yaml).expect("write the config");
    let (procman_s, file_s) = (procman().to_string(), file.display().to_string());
    let mut args = vec![
        "--pid",
        "--fork",
        "--mount-proc",
        &procman_s,
        "run",
        "-c",
        &file_s,
    ];
    args.extend_from_slice(extra);
    let guard = KillOnDrop(t.dir.path().display().to_string());
    (guard, start(unshare, &args, &[]))
}

/// What `start` returns: the pid, its exit, its output.
type Started = (
    u32,
    tokio::sync::oneshot::Receiver<ProcessEnd>,
    tempfile::NamedTempFile,
);

/// A `/proc/PID/status` field, e.g. `NSpid` or `PPid`.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The pid of `pid` inside its own (innermost) pid namespace.
fn inner_pid(pid: u32) -> Option<u32> {
    status_field(pid, "NSpid")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn pid_namespace(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The pid, as seen from here, of the process that is `inner` in the pid
/// namespace of `member`.
fn outer_pid(member: u32, inner: u32) -> Option<u32> {
    let ns = pid_namespace(member)?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        (pid_namespace(pid).as_ref() == Some(&ns) && inner_pid(pid) == Some(inner)).then_some(pid)
    })
}

/// The first child of `pid` (unshare's only child is the program it runs).
async fn first_child(pid: u32, within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten();
        let child = tasks
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .find_map(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        if let Some(child) = child {
            return child;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} has no child after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_it_adopts_orphans_and_stops_everything_on_sigterm() {
    tokio::time::timeout(WATCHDOG, async {
        let Some((unshare, t)) = setup().await else {
            return;
        };
        let scratch = t.dir.path().display().to_string();
        let (tree_out, svc_out) = (t.path("tree.out"), t.path("svc.out"));
        // --pidfile puts our temp dir in every member's command line.
        let tree_args = format!(
            "--pidfile {} grandchildren --daemon",
            t.path("tree.pid").display()
        );
        let svc_args = format!("--pidfile {} run", t.path("svc.pid").display());
        let yaml = t.header()
            + &child_entry_to_file("tree", &tree_args, &tree_out, "")
            + &child_entry_to_file("svc", &svc_args, &svc_out, "");
        let (_cleanup, (upid, exit, log)) = run_as_pid_1(&unshare, &t, &yaml, &[]);
        let output = || std::fs::read_to_string(log.path()).unwrap_or_default();

        let manager = first_child(upid, Duration::from_secs(20)).await;
        assert_eq!(
            inner_pid(manager),
            Some(1),
            "procman is PID 1 of its namespace"
        );
        let text = wait_file(&tree_out, "ready", Duration::from_secs(30)).await;
        wait_file(&svc_out, "ready", Duration::from_secs(30)).await;
        let daemon_line = text
            .lines()
            .find(|l| l.contains("kind=daemon"))
            .expect("daemon line");
        let daemon_inner = pids_in(daemon_line, "grandchild")[0];
        let daemon = outer_pid(manager, daemon_inner).expect("the daemon grandchild runs");
        assert_eq!(
            status_field(daemon, "PPid").and_then(|p| p.parse().ok()),
            Some(manager),
            "the double-forked daemon was reparented to procman as PID 1"
        );

        signal_process(manager, Signal::TERM).unwrap();
        let end = match tokio::time::timeout(Duration::from_secs(30), exit).await {
            Ok(end) => end.expect("exit status"),
            Err(_) => {
                let _ = signal_process(manager, Signal::KILL);
                panic!(
                    "procman as PID 1 did not exit on SIGTERM; output:\n{}",
                    output()
                );
            }
        };
        assert_eq!(
            end,
            ProcessEnd::Exited(0),
            "unshare passes on procman's status; output:\n{}",
            output()
        );
        // Had procman died first, the kernel would have SIGKILLed the
        // service when the namespace ended, with no chance to say this.
        let svc = std::fs::read_to_string(&svc_out).unwrap_or_default();
        assert!(
            svc.contains("got SIGTERM"),
            "svc was stopped gracefully: {svc:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = procs_mentioning(&scratch);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left running: {left:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(daemon), "the adopted daemon is gone");
    })
    .await
    .expect("watchdog");
}

/// A one-shot container: procman as PID 1 with `--exit-on-end` runs a job
/// that leaves an orphan behind and fails; the orphan is stopped
/// gracefully (not killed by the namespace's end), and procman's exit
/// code, passed on by unshare as a container runtime would, is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_with_exit_on_end_it_exits_with_the_jobs_outcome() {
    tokio::time::timeout(WATCHDOG, async {
        let Some((unshare, t)) = setup().await else {
            return;
        };
        let orphan_out = t.path("orphan.out");
        // The subshell starts the orphan and exits at once; the job
        // fails once the orphan is ready.
        let script = format!(
            "({} --pidfile {} run > {} &); while ! grep -q ready {}; do sleep 0.05; done; exit 1",
            child().display(),
            t.path("orphan.pid").display(),
            orphan_out.display(),
            orphan_out.display(),
        );
        let yaml = t.header()
            + &format!(
                "  - id: job\n    profile_type: batch\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", {script:?}]\n      restart_policy: {{strategy: never}}\n"
            );
        let (_cleanup, (_, exit, log)) = run_as_pid_1(&unshare, &t, &yaml, &["--exit-on-end"]);
        let output = || std::fs::read_to_string(log.path()).unwrap_or_default();
        let end = match tokio::time::timeout(Duration::from_secs(60), exit).await {
            Ok(end) => end.expect("exit status"),
            Err(_) => panic!("procman as PID 1 did not exit by itself:\n{}", output()),
        };
        assert_eq!(end, ProcessEnd::Exited(1), "{}", output());
        assert!(
            output().contains("not successful: job"),
            "the failure is named: {}",
            output()
        );
        let orphan = std::fs::read_to_string(&orphan_out).unwrap_or_default();
        assert!(
            orphan.contains("got SIGTERM"),
            "the orphan was stopped by procman, gracefully: {orphan:?}\n{}",
            output()
        );
    })
    .await
    .expect("watchdog");
}
