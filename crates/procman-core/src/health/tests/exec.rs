//! Exec checks with real processes: exit codes, signals, the timeout that
//! kills the whole group, and no process or zombie left behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::health::probe::{Probe, ProbeOutcome};
use crate::platform::Credentials;

const TIMEOUT: Duration = Duration::from_secs(5);
const WATCHDOG: Duration = Duration::from_secs(20);

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn run(argv: Vec<String>, cwd: &Path, timeout: Duration) -> ProbeOutcome {
    let probe = Probe::Exec {
        argv,
        cwd: cwd.to_path_buf(),
        env: Vec::new(),
        credentials: Ok(Credentials::default()),
    };
    tokio::time::timeout(WATCHDOG, probe.check(timeout))
        .await
        .expect("the check returns before the watchdog")
}

/// The state letter from `/proc/<pid>/stat`, or None when the pid is gone.
fn proc_state(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next().map(str::to_string)
}

/// Waits (with a deadline) until `pid` no longer exists at all.
async fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if proc_state(pid).is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}

#[tokio::test]
async fn exit_0_is_healthy() {
    let out = run(sh("exit 0"), Path::new("/"), TIMEOUT).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "exit code 0");
}

#[tokio::test]
async fn exit_3_is_unhealthy() {
    let out = run(sh("exit 3"), Path::new("/"), TIMEOUT).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "exit code 3");
}

#[tokio::test]
async fn a_signal_death_is_named() {
    let out = run(sh("kill -TERM $$"), Path::new("/"), TIMEOUT).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "killed by SIGTERM");
}

#[tokio::test]
async fn a_missing_program_is_unhealthy() {
    let out = run(
        vec!["no-such-health-check-program".into()],
        Path::new("/"),
        TIMEOUT,
    )
    .await;
    assert!(!out.healthy, "{out:?}");
    assert!(
        out.detail.starts_with("cannot run the check: "),
        "{}",
        out.detail
    );
    assert!(out.detail.contains("not found in PATH"), "{}", out.detail);
}

#[tokio::test]
async fn cwd_and_env_are_the_process_s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("check.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ntest \"$HC_MODE\" = ready && test -f marker\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let probe = |env: Vec<(String, String)>| Probe::Exec {
        argv: vec!["./check.sh".into()],
        cwd: dir.path().to_path_buf(),
        env,
        credentials: Ok(Credentials::default()),
    };
    let ready = vec![("HC_MODE".to_string(), "ready".to_string())];
    let out = probe(ready.clone()).check(TIMEOUT).await;
    assert_eq!(out.detail, "exit code 1", "no marker yet");
    std::fs::write(dir.path().join("marker"), "").expect("marker");
    let out = probe(ready).check(TIMEOUT).await;
    assert!(out.healthy, "{out:?}");
    let out = probe(Vec::new()).check(TIMEOUT).await;
    assert!(!out.healthy, "without the variable: {out:?}");
}

#[tokio::test]
async fn an_overrun_kills_the_whole_group() {
    // Subreaper, so that the orphaned sleep is reaped by our reaper rather
    // than by whatever init this test runs under.
    let _ = crate::platform::become_subreaper();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "echo $$ > sh.pid; sleep 30 & echo $! > sleep.pid; wait";
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let out = run(sh(script), dir.path(), timeout).await;
    let took = start.elapsed();
    assert!(!out.healthy, "{out:?}");
    assert!(
        out.detail.starts_with("killed after timeout"),
        "{}",
        out.detail
    );
    assert!(took >= timeout, "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    let sh_pid = read_pid(&dir.path().join("sh.pid"));
    let sleep_pid = read_pid(&dir.path().join("sleep.pid"));
    assert_eq!(
        proc_state(sh_pid),
        None,
        "the check itself is reaped before the result"
    );
    assert!(
        gone(sleep_pid).await,
        "sleep {sleep_pid}: {:?}",
        proc_state(sleep_pid)
    );
}

#[tokio::test]
async fn a_plain_sleep_is_killed_and_reaped() {
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let out = run(vec!["sleep".into(), "30".into()], Path::new("/"), timeout).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "killed after timeout (300ms)");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn what_a_check_leaves_running_is_killed() {
    let _ = crate::platform::become_subreaper();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        sh("sleep 30 & echo $! > sleep.pid; exit 0"),
        dir.path(),
        TIMEOUT,
    )
    .await;
    assert!(out.healthy, "{out:?}");
    let sleep_pid = read_pid(&dir.path().join("sleep.pid"));
    assert!(
        gone(sleep_pid).await,
        "sleep {sleep_pid}: {:?}",
        proc_state(sleep_pid)
    );
}

#[tokio::test]
async fn a_check_dropped_half_way_kills_its_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = Probe::Exec {
        argv: sh("echo $$ > sleep.pid; exec sleep 30"),
        cwd: dir.path().to_path_buf(),
        env: Vec::new(),
        credentials: Ok(Credentials::default()),
    };
    let pid_file = dir.path().join("sleep.pid");
    let mut check = Box::pin(probe.check(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(5);
    // Drive the check until the command has written its pid, then drop it.
    while std::fs::read_to_string(&pid_file).map_or(true, |s| !s.ends_with('\n')) {
        assert!(Instant::now() < deadline, "the command never started");
        let _ = tokio::time::timeout(Duration::from_millis(20), &mut check).await;
    }
    drop(check);
    let pid = read_pid(&pid_file);
    assert!(gone(pid).await, "sleep {pid}: {:?}", proc_state(pid));
}

/// Processes named `comm` (as `/proc/<pid>/stat` shows it) and their states.
fn named(comm: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] == comm {
            let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
            found.push((pid, state.to_string()));
        }
    }
    found
}

#[tokio::test]
async fn two_hundred_checks_leave_no_zombie() {
    // A link to sh with a name of its own: the kernel names the process
    // after the path it executes, so ours are told apart from any other sh.
    let dir = tempfile::tempdir().expect("tempdir");
    let comm = format!("hcz{}", std::process::id() % 1_000_000);
    let link: PathBuf = dir.path().join(&comm);
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let program = link.to_string_lossy().into_owned();
    let mut healthy = 0;
    for i in 0..200 {
        let code = if i % 2 == 0 { "exit 0" } else { "exit 1" };
        let argv = vec![program.clone(), "-c".into(), code.into()];
        let out = run(argv, dir.path(), TIMEOUT).await;
        healthy += usize::from(out.healthy);
        assert_eq!(out.detail, format!("exit code {}", i % 2), "check {i}");
    }
    assert_eq!(healthy, 100);
    assert_eq!(
        named(&comm),
        Vec::new(),
        "no {comm} process, zombie or not, is left"
    );
}

#[tokio::test]
async fn a_check_whose_user_cannot_be_found_fails_without_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let probe = Probe::Exec {
        argv: sh(&format!("touch {}", marker.display())),
        cwd: dir.path().to_path_buf(),
        env: Vec::new(),
        credentials: Err("user `gone` does not exist".to_string()),
    };
    let out = probe.check(TIMEOUT).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(
        out.detail,
        "cannot run the check: user `gone` does not exist"
    );
    assert!(!marker.exists(), "the check ran as the manager instead");
}
