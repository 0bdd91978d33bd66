//! Reloads of settings that are not a process's command: the manager
//! section (only `force_shutdown_timeout` applies; the rest waits for a
//! restart of the manager), a limit's new value written into the running
//! process's cgroup, and the REST route with its 422 for an invalid file.

use std::path::PathBuf;

use procman_core::platform::{Controller, Host};

use super::*;
use crate::api::{free_port, request, Via};
use crate::limits::kernel_limits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_port_waits_for_a_restart_of_the_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let a = svc(&t, "a", &["run"]);
        let m = Running::start(t, &a).await;
        let pid = pid_of(&m, "a").await;
        let port = free_port();
        let header =
            m.t.header()
                .replace("  port: 0\n", &format!("  port: {port}\n"));
        assert_ne!(header, m.t.header());
        rewrite_whole(&m, &(header + &a));

        let plan: ReloadPlan = reload(&m, &["--dry-run", "-o", "json"]).await.json();
        let port_change = procman_api::ManagerChange {
            key: "process_manager.port".into(),
            applied: false,
        };
        assert_eq!(
            plan.manager,
            std::slice::from_ref(&port_change),
            "{plan:#?}"
        );
        assert!(plan.manager_restart_needed, "{plan:#?}");
        assert_eq!(plan.unchanged, ["a"], "{plan:#?}");

        let out = reload(&m, &[]).await;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "reloaded: 0 added, 0 removed, 0 changed, 0 changed in place, 1 unchanged; \
                 some manager settings take effect only when the manager restarts",
                "  manager    process_manager.port: takes effect when the manager restarts",
            ],
            "{out:#?}"
        );
        m.wait_manager_log("takes effect when the manager is restarted")
            .await;
        // Still the old value: nothing listens on the new port, and the
        // next reload still finds the port to change.
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert!(
            connect.is_err(),
            "the manager listens on {port} after a reload"
        );
        let plan: ReloadPlan = reload(&m, &["--dry-run", "-o", "json"]).await.json();
        assert_eq!(plan.manager, [port_change], "{plan:#?}");
        assert_eq!(pid_of(&m, "a").await, pid);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

/// The memory limit file of `pid`'s cgroup: v1 `memory.limit_in_bytes`
/// where the memory controller is a v1 hierarchy, else v2 `memory.max`.
fn memory_limit_file(pid: u32) -> PathBuf {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
    let host = Host {
        own,
        ..Host::current()
    };
    let v1 = host
        .own_v1(Controller::Memory)
        .map(|d| d.join("memory.limit_in_bytes"));
    let v2 = host.own_v2().map(|d| d.join("memory.max"));
    v1.into_iter()
        .chain(v2)
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no memory limit file for {pid}: {host:#?}"))
}

/// Waits until `file` holds `bytes`.
async fn wait_limit(file: &std::path::Path, bytes: u64) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.trim().parse::<u64>().ok() == Some(bytes) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {text:?}, not {bytes}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_memory_limit_is_written_into_the_running_process_cgroup() {
    if !kernel_limits() {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let limit = |mb: u32| format!("resource_limits:\n  max_memory_mb: {mb}\n");
        let before = svc_with(&t, "p", &["run"], &limit(200));
        let after = svc_with(&t, "p", &["run"], &limit(300));
        let m = Running::start(t, &before).await;
        let pid = pid_of(&m, "p").await;
        let file = memory_limit_file(pid);
        wait_limit(&file, 200 << 20).await;

        rewrite(&m, &after);
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(
            plan.changed_in_place,
            change("p", &["management.resource_limits.max_memory_mb"]),
            "{plan:#?}"
        );
        wait_limit(&file, 300 << 20).await;
        assert_eq!(memory_limit_file(pid), file, "moved to another cgroup");
        let d = m
            .wait_detail("p", "the new limit", |d| {
                d.limits
                    .iter()
                    .any(|l| l.limit == "max_memory_mb" && l.value == 300.0)
            })
            .await;
        assert_eq!((d.process.pid, d.process.runs), (Some(pid), 1), "{d:#?}");
        assert!(alive(pid));
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_route_plans_reloads_and_refuses_an_invalid_file_with_422() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (good, text, errors) = broken(&t);
        let m = Running::start(t, &good).await;
        let pids = [pid_of(&m, "a").await, pid_of(&m, "b").await];
        let via = Via::Unix(m.socket());
        let post = async |path: &str| request(&via, "POST", path, &[], None).await;

        let r = post("/api/v1/manager/reload?dry_run=true").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), "application/json");
        let plan: ReloadPlan = serde_json::from_value(r.json()).expect("a ReloadPlan");
        assert!(plan.dry_run, "{plan:#?}");
        assert_eq!(plan.unchanged, ["a", "b"], "{plan:#?}");
        assert!(
            plan.added.is_empty() && plan.manager.is_empty(),
            "{plan:#?}"
        );

        rewrite_whole(&m, &text);
        for path in [
            "/api/v1/manager/reload",
            "/api/v1/manager/reload?dry_run=true",
        ] {
            let r = post(path).await;
            assert_eq!(r.status, 422, "{path}: {}", r.text());
            assert_eq!(r.error_code(), "invalid_config", "{path}");
            let message = r.json()["message"].as_str().unwrap_or("").to_string();
            assert_located(&message, &m.file, &errors);
        }
        assert_eq!(ids(&m).await, ["a", "b"]);
        for (id, pid) in ["a", "b"].iter().zip(pids) {
            assert_eq!(pid_of(&m, id).await, pid, "{id}");
            assert!(alive(pid), "{id}");
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
