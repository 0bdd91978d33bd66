//! Reloads at the edges: an env_file gone missing refuses the reload (the
//! running process is kept), a graceful stop under way keeps its grace and
//! a process stopped on purpose stays stopped, and an unmanaged process
//! added by a reload is looked for.

use std::time::{Duration, Instant};

use procman_api::ReloadPlan;

use super::{change, pid_of, reload, rewrite};
use crate::cli_control::{svc_with, Running, SETTLE};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_env_file_refuses_the_reload_and_the_process_keeps_running() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let env = t.path("p.env");
        std::fs::write(&env, "GREETING=one\n").expect("write the env file");
        let entry = child_entry(
            "p",
            &["run"],
            &control_keys(&format!("env_file: {:?}", env.display().to_string())),
        );
        let m = Running::start(t, &entry).await;
        let pid = pid_of(&m, "p").await;

        std::fs::remove_file(&env).expect("remove the env file");
        let out = m.cli(&["reload"]).await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert!(
            out.stderr.contains("env_file") && out.stderr.contains("p.env"),
            "the refusal names the file: {out:#?}"
        );
        assert_eq!(pid_of(&m, "p").await, pid, "nothing changed");
        assert!(alive(pid));

        // Back with what the run read: nothing to do.
        std::fs::write(&env, "GREETING=one\n").expect("write the env file again");
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(plan.unchanged, ["p"], "{plan:#?}");
        assert_eq!(pid_of(&m, "p").await, pid);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_under_way_keeps_its_grace_and_the_stopped_process_stays_stopped() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let slow = |value: &str| {
            svc_with(&t, "slow", &["ignore-term"], "")
                + &control_keys(&format!(
                    "shutdown_timeout: 3s\nenvironment: {{MARK: \"{value}\"}}"
                ))
        };
        let first = slow("1");
        let changed = slow("2");
        let m = Running::start(t, &first).await;
        let pid = pid_of(&m, "slow").await;
        m.wait_log("slow", "ready pid=").await;

        m.cli(&["stop", "slow", "--no-wait"]).await.ok();
        rewrite(&m, &changed);
        let asked = Instant::now();
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(
            plan.changed,
            change("slow", &["management.control.environment"]),
            "{plan:#?}"
        );
        // The reload waited for the stop's grace (3 s from the stop) rather
        // than killing the process at once.
        assert!(
            asked.elapsed() >= Duration::from_secs(2),
            "the reload returned after {:?}",
            asked.elapsed()
        );
        wait_gone(&[pid], SETTLE).await;
        let p = m.process("slow").await;
        assert_eq!((p.state.as_str(), p.pid), ("stopped", None), "{p:#?}");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmanaged_process_added_by_a_reload_is_looked_for() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Not under the test's directory: the manager's guard (which kills
        // what names that directory) must not be what ends it.
        let (outside, exit, _out) = start(child(), &["run"], &[]);
        let _cleanup = KillPid(outside, exit);
        let keep = svc_with(&t, "keep", &["run"], "");
        let m = Running::start(t, &keep).await;

        let added = format!(
            "{keep}  - id: \"ext\"\n    type: unmanaged\n    management:\n      discovery: {{pid: {outside}}}\n"
        );
        rewrite(&m, &added);
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(plan.added, ["ext"], "{plan:#?}");
        m.wait_until("ext found", |ps| {
            ps.iter()
                .any(|p| p.id == "ext" && p.state == "running" && p.pid == Some(outside))
        })
        .await;
        m.stop().await;
        // Never signalled: it outlives the manager.
        assert!(alive(outside));
    })
    .await
    .expect("watchdog");
}

/// SIGKILL to the test's own outside process when dropped, unless its
/// exit was heard already (then its pid may be another's).
struct KillPid(
    u32,
    tokio::sync::oneshot::Receiver<procman_core::outcome::ProcessEnd>,
);

impl Drop for KillPid {
    fn drop(&mut self) {
        if matches!(
            self.1.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ) {
            let _ =
                procman_core::platform::signal_process(self.0, procman_core::outcome::Signal::KILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_restarting_when_a_reload_changes_it_comes_back_with_the_new_config() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let slow = |value: &str| {
            svc_with(&t, "slow", &["run", "--term-delay", "2s"], "")
                + &control_keys(&format!("environment: {{MARK: \"{value}\"}}"))
        };
        let (first, changed) = (slow("1"), slow("2"));
        let m = Running::start(t, &first).await;
        let pid = pid_of(&m, "slow").await;
        m.wait_log("slow", "ready pid=").await;

        // The restart's stop takes 2 s; the reload comes in the middle.
        m.cli(&["restart", "slow", "--no-wait"]).await.ok();
        rewrite(&m, &changed);
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(plan.changed.len(), 1, "{plan:#?}");
        let ps = m
            .wait_until("slow running again", |ps| {
                ps.iter()
                    .any(|p| p.id == "slow" && p.state == "running" && p.pid != Some(pid))
            })
            .await;
        let new = ps[0].pid.expect("a pid");
        let environ = std::fs::read(format!("/proc/{new}/environ")).expect("environ");
        assert!(
            environ.split(|b| *b == 0).any(|v| v == b"MARK=2"),
            "the run has the new environment"
        );
        // One run since the reload: the old config never ran again.
        assert_eq!(ps[0].runs, 1, "{:#?}", ps[0]);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
