//! The files the manager creates, as another user of the machine would
//! see them: modes whatever the umask, no link followed, no directory used
//! that someone else can write, and a log file open only while its process
//! runs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use procman_core::manager::Manager;
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform;
use procman_core::supervisor::Phase;

use crate::support::*;

const SHORT: Duration = Duration::from_secs(20);

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// The paths this process has open under `dir` (from `/proc/self/fd`).
fn open_files_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The error of `Manager::new` on `yaml`, as text (a manager that starts
/// is shut down and the test fails).
async fn refused(t: &Scratch, yaml: &str) -> String {
    match Manager::new(t.config(yaml)) {
        Ok(m) => {
            m.shutdown().await;
            panic!("the manager accepted:\n{yaml}");
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_are_set_whatever_the_umask() {
    tokio::time::timeout(WATCHDOG, async {
        for umask in ["000", "077"] {
            let t = Scratch::new();
            let target = t.path("agg/all.log");
            let yaml = t.header()
                + &child_entry("svc", &["run"], "")
                + &format!(
                    "log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: file\n        path: \"{}\"\n",
                    target.display()
                );
            std::fs::write(t.path("procman.yaml"), &yaml).unwrap();
            let _cleanup = KillOnDrop(t.dir.path().display().to_string());
            // The umask is the manager's own: set in its shell, not here
            // (the tests share this process).
            let script = format!(
                "umask {umask}; exec {} run -c {}",
                procman(),
                t.path("procman.yaml").display()
            );
            let (pid, exit, out) = start(Path::new("/bin/sh"), &["-c", &script], &[]);
            let state = t.path("state");
            let log = state.join("logs/svc.log");
            wait_file(&log, "ready pid=", SHORT).await;
            wait_file(&target, "ready pid=", SHORT).await;
            let want = [
                (state.clone(), 0o700),
                (state.join("procman.lock"), 0o640),
                (state.join("logs"), 0o750),
                (log, 0o640),
                (t.path("agg"), 0o750),
                (target, 0o640),
            ];
            for (path, m) in &want {
                assert_eq!(mode(path), *m, "umask {umask}: {}", path.display());
            }
            platform::signal_process(pid, Signal::TERM).expect("SIGTERM");
            let end = tokio::time::timeout(SHORT, exit).await.expect("exit").unwrap();
            let text = std::fs::read_to_string(out.path()).unwrap_or_default();
            assert_eq!(end, ProcessEnd::Exited(0), "{text}");
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_at_a_log_path_is_refused_not_followed() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let victim = t.path("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let logs = t.path("state/logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::set_permissions(t.path("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = logs.join("svc.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let yaml = t.header() + &child_entry("svc", &["run"], "");
        let msg = refused(&t, &yaml).await;
        assert!(
            msg.contains(&link.display().to_string()) && msg.contains("symbolic link"),
            "{msg}"
        );
        // A file target is refused the same way.
        std::fs::remove_file(&link).unwrap();
        let target = t.path("agg.log");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let yaml = yaml
            + &format!(
                "log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: file\n        path: \"{}\"\n",
                target.display()
            );
        let msg = refused(&t, &yaml).await;
        assert!(msg.contains(&target.display().to_string()), "{msg}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_writable_state_dir_is_refused_with_the_fix() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let state = t.path("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
        let msg = refused(&t, &(t.header() + &child_entry("svc", &["run"], ""))).await;
        let fix = format!("chmod 700 {}", state.display());
        assert!(msg.contains(&fix), "the message says `{fix}`: {msg}");
        assert_eq!(mode(&state), 0o770, "left as it was");
        assert!(!state.join("procman.lock").exists());
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_owned_by_another_user_is_refused() {
    tokio::time::timeout(WATCHDOG, async {
        if !is_root() {
            return skip_or_fail("giving a directory to `nobody` needs root");
        }
        let t = Scratch::new();
        let state = t.path("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        let msg = refused(&t, &(t.header() + &child_entry("svc", &["run"], ""))).await;
        assert!(
            msg.contains("owned by uid 65534")
                && msg.contains(&format!("chown 0 {}", state.display())),
            "{msg}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_is_open_only_while_its_process_runs() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        const DISABLED: usize = 50;
        let mut yaml = t.header();
        for i in 0..DISABLED {
            yaml += &child_entry(&format!("off{i}"), &["run"], "");
            yaml += "    enabled: false\n";
        }
        yaml += &child_entry("svc", &["run"], "");
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("svc").unwrap();
        wait_status(&h, SHORT, "svc running", |s| s.phase() == Phase::Running).await;
        let logs = t.path("state/logs");
        wait_file(&logs.join("svc.log"), "ready pid=", SHORT).await;
        // The state directory's lock is open too: look at the logs only.
        let open = open_files_under(&logs);
        let svc = logs.join("svc.log");
        assert!(open.contains(&svc), "svc runs: its file is open: {open:?}");
        assert_eq!(open.len(), 1, "only the running process's file: {open:?}");

        m.stop_process("svc").await.expect("stop");
        let open = open_files_under(&logs);
        assert!(open.is_empty(), "nothing open once svc stopped: {open:?}");
        // And it opens again with the next run, lines appended.
        m.start_process("svc").await.expect("start again");
        wait_status(&h, SHORT, "svc running again", |s| {
            s.phase() == Phase::Running && s.runs == 2
        })
        .await;
        wait_file(&svc, "run 2 pid", SHORT).await;
        assert_eq!(open_files_under(&logs), [svc]);
        m.shutdown().await;
        assert!(open_files_under(&logs).is_empty());
    })
    .await
    .expect("watchdog");
}
