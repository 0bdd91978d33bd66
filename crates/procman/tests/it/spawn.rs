//! Spawning: a process that cannot be spawned is that process's `failed`
//! state with a reason naming what is wrong, while the manager and the
//! other processes carry on. Manual restarts, and `enabled: false`.

use std::path::Path;
use std::time::Duration;

use procman_core::manager::{Manager, ManagerState};
use procman_core::supervisor::{Phase, ProcessStatus};

use crate::support::*;

/// Long enough for a wrongly scheduled restart or spawn to show.
const SETTLE: Duration = Duration::from_millis(500);

/// An entry that runs `executable` with the given `control` keys.
fn entry(id: &str, executable: &str, control: &str) -> String {
    format!(
        "  - id: \"{id}\"\n    management:\n      control:\n        executable: {executable:?}\n{}",
        control_keys(control)
    )
}

/// An entry running the test child with `--pidfile FILE run`.
fn service(id: &str, pidfile: &Path) -> String {
    child_entry(
        id,
        &["--pidfile", &pidfile.display().to_string(), "run"],
        "",
    )
}

/// Runs the entry `bad` (which cannot be spawned) next to a healthy
/// `ok` process and checks what a user sees: the manager runs, `ok` runs,
/// `bad` is `failed` without ever having had a pid, stays so, and a
/// manual start fails with the same reason. Returns that reason.
async fn fails_to_spawn_beside_a_healthy_process(t: &Scratch, bad: &str) -> String {
    let ok_pidfile = t.path("ok.pid");
    let yaml = t.header() + bad + &service("ok", &ok_pidfile);
    let m = t.manager(&yaml);
    m.start().await;
    assert_eq!(
        m.manager_state(),
        ManagerState::Running,
        "a spawn failure is not the manager's"
    );

    let ok_pid = wait_pidfile(&ok_pidfile, Duration::from_secs(20), |_| true).await;
    let ok = m.handle("ok").unwrap();
    assert_eq!(ok.status().phase(), Phase::Running);
    assert_eq!(ok.status().pid(), Some(ok_pid));

    let h = m.handle("bad").unwrap();
    let s = wait_status(&h, Duration::from_secs(20), "bad failed", |s| {
        s.phase() == Phase::Failed
    })
    .await;
    let reason = failed_reason(&s);
    assert_eq!(s.last_error.as_deref(), Some(reason.as_str()), "{s:#?}");
    assert_eq!((s.runs, s.pid()), (0, None), "nothing was spawned: {s:#?}");

    tokio::time::sleep(SETTLE).await;
    let s = h.status();
    assert_eq!(
        s.phase(),
        Phase::Failed,
        "a start that cannot work is not retried: {s:#?}"
    );
    assert_eq!(s.runs, 0);

    let err = m
        .start_process("bad")
        .await
        .expect_err("start_process must fail")
        .to_string();
    assert!(
        err.contains(&reason),
        "the error carries the reason {reason:?}: {err}"
    );
    assert!(err.contains("bad"), "the error names the process: {err}");
    assert_eq!(h.status().phase(), Phase::Failed);

    assert_eq!(m.manager_state(), ManagerState::Running);
    assert_eq!(
        ok.status().pid(),
        Some(ok_pid),
        "the healthy process was left alone"
    );
    assert!(alive(ok_pid));
    m.shutdown().await;
    reason
}

fn failed_reason(s: &ProcessStatus) -> String {
    match &s.lifecycle {
        procman_core::supervisor::Lifecycle::Failed { reason } => reason.clone(),
        other => panic!("not failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_executable_name_not_in_path_fails_naming_the_name() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let name = "procman-it-no-such-program";
        let reason = fails_to_spawn_beside_a_healthy_process(&t, &entry("bad", name, "")).await;
        assert!(reason.contains(name), "{reason}");
        assert!(reason.contains("PATH"), "says where it looked: {reason}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_relative_executable_fails_naming_the_resolved_path() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let wd = t.path("service");
        std::fs::create_dir(&wd).unwrap();
        let bad = entry(
            "bad",
            "./missing",
            &format!("working_directory: {:?}", wd.display().to_string()),
        );
        let reason = fails_to_spawn_beside_a_healthy_process(&t, &bad).await;
        // `./missing` is relative to working_directory. The path may be
        // shown as `<wd>/missing` or `<wd>/./missing`; both name it.
        let clean = wd.join("missing").display().to_string();
        let dotted = wd.join("./missing").display().to_string();
        assert!(
            reason.contains(&clean) || reason.contains(&dotted),
            "{reason}"
        );
        assert!(
            reason.contains("not exist") || reason.contains("not found"),
            "{reason}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_execute_permission_fails_naming_it() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("not-executable");
        std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = file.display().to_string();
        let reason = fails_to_spawn_beside_a_healthy_process(&t, &entry("bad", &path, "")).await;
        assert!(reason.contains(&path), "{reason}");
        assert!(
            reason.contains("executable") || reason.contains("ermission"),
            "{reason}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executable_that_is_not_a_program_fails_at_exec_and_leaves_no_zombie() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("garbage");
        // Executable, but neither ELF nor `#!`: only execve can tell.
        std::fs::write(&file, [0u8, 1, 2, 3, 0xff, 0xfe]).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = file.display().to_string();
        let reason = fails_to_spawn_beside_a_healthy_process(&t, &entry("bad", &path, "")).await;
        assert!(reason.contains(&path), "{reason}");
        assert!(
            reason.to_lowercase().contains("exec format error"),
            "{reason}"
        );
        let zombies = lasting_zombie_children(Duration::from_secs(5)).await;
        assert!(zombies.is_empty(), "zombies left unreaped: {zombies:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_working_directory_fails_naming_it() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let wd = t.path("no-such-dir");
        let bad = entry(
            "bad",
            &child().display().to_string(),
            &format!(
                "arguments: [\"run\"]\nworking_directory: {:?}",
                wd.display().to_string()
            ),
        );
        let reason = fails_to_spawn_beside_a_healthy_process(&t, &bad).await;
        assert!(reason.contains(&wd.display().to_string()), "{reason}");
        assert!(reason.contains("working directory"), "{reason}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_process_gives_a_new_pid_and_the_old_one_is_gone() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let pidfile = t.path("svc.pid");
        let m = t.manager(&(t.header() + &service("svc", &pidfile)));
        m.start().await;
        let old = wait_pidfile(&pidfile, Duration::from_secs(20), |_| true).await;
        let h = m.handle("svc").unwrap();
        assert_eq!(h.status().pid(), Some(old));

        m.restart_process("svc").await.expect("restart");
        assert!(
            !alive(old),
            "the old run is gone once restart_process returns"
        );
        let s = h.status();
        assert_eq!(s.phase(), Phase::Running, "{s:#?}");
        let new = s.pid().expect("a pid");
        assert_ne!(new, old);
        assert_eq!(s.runs, 2);
        assert_eq!(s.restarts, 0, "a manual restart is not a policy restart");
        // The new run is really the program, running: it wrote its pid.
        let written = wait_pidfile(&pidfile, Duration::from_secs(20), |p| p != old).await;
        assert_eq!(written, new);
        assert!(alive(new));
        m.shutdown().await;
        assert!(!alive(new));
        let zombies = lasting_zombie_children(Duration::from_secs(5)).await;
        assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_process_stays_registered_until_start_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (later_pid, now_pid) = (t.path("later.pid"), t.path("now.pid"));
        let disabled = service("later", &later_pid).replacen('\n', "\n    enabled: false\n", 1);
        let m: Manager = t.manager(&(t.header() + &disabled + &service("now", &now_pid)));
        m.start().await;
        wait_pidfile(&now_pid, Duration::from_secs(20), |_| true).await;
        tokio::time::sleep(SETTLE).await;
        let h = m.handle("later").unwrap();
        let s = h.status();
        assert_eq!(s.phase(), Phase::Registered, "{s:#?}");
        assert_eq!((s.runs, s.pid()), (0, None));
        assert!(!later_pid.exists(), "a disabled process was spawned");
        let ids: Vec<String> = m.process_states().into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            ["later", "now"],
            "disabled processes are listed too, in config order"
        );

        m.start_process("later")
            .await
            .expect("start a disabled process by hand");
        let pid = wait_pidfile(&later_pid, Duration::from_secs(20), |_| true).await;
        let s = h.status();
        assert_eq!(s.phase(), Phase::Running, "{s:#?}");
        assert_eq!(s.pid(), Some(pid));
        assert_eq!(s.runs, 1);
        m.shutdown().await;
        assert!(!alive(pid));
    })
    .await
    .expect("watchdog");
}
