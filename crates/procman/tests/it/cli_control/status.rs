//! `procman status`: the table and one process in detail, plain and JSON.

use procman_api::{Process, ProcessDetail};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_every_process_with_its_state_and_pid() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [
            svc(&t, "web", &["run"]),
            svc(&t, "worker", &["run"]),
            svc(&t, "off", &["run"]).replacen('\n', "\n    enabled: false\n", 1),
        ]
        .concat();
        let m = Running::start(t, &entries).await;
        let web = ready_pid(&m.wait_log("web", "ready pid=").await).expect("web's pid");
        let worker = ready_pid(&m.wait_log("worker", "ready pid=").await).expect("worker's pid");

        let out = m.cli(&["status"]).await;
        out.ok();
        let rows = table_rows(&out.stdout);
        let ids: Vec<&str> = rows.iter().map(|r| r["ID"].as_str()).collect();
        assert_eq!(ids, ["web", "worker", "off"], "{}", out.stdout);
        assert_eq!(rows[0]["STATE"], "running");
        assert_eq!(rows[0]["PID"], web.to_string());
        assert_eq!(rows[0]["TYPE"], "standard");
        assert_eq!(rows[1]["PID"], worker.to_string());
        assert_ne!(rows[2]["STATE"], "running");
        assert_eq!(rows[2]["PID"], "-");
        assert_eq!(rows[2]["UPTIME"], "-");
        assert!(rows[0]["UPTIME"].ends_with('s'), "{}", out.stdout);
        assert!(!out.stdout.contains('\x1b'), "no colour off a terminal");

        let out = m.cli(&["status", "-o", "json"]).await;
        out.ok();
        let list: Vec<Process> = out.json();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].pid, Some(web));
        assert_eq!(list[0].kind, "standard_managed");
        assert!(!list[2].enabled);
        // The documented fields, by name.
        let raw: serde_json::Value = out.json();
        for field in [
            "id",
            "type",
            "state",
            "enabled",
            "pid",
            "started_at",
            "uptime_seconds",
            "runs",
            "restarts",
            "health",
            "last_exit",
            "last_error",
        ] {
            assert!(
                raw[0].get(field).is_some(),
                "no `{field}` in {}",
                out.stdout
            );
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_one_process_shows_its_tree_and_last_log_lines() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "tree", &["grandchildren"]);
        let m = Running::start(t, &entries).await;
        let log = m.wait_log("tree", "ready pid=").await;
        let main = ready_pid(&log).expect("main pid");
        let grandchildren = grandchild_pids(&log);
        assert_eq!(grandchildren.len(), 2, "{log}");

        let out = m.cli(&["status", "tree"]).await;
        out.ok();
        let text = &out.stdout;
        assert!(text.starts_with("● tree (standard_managed)\n"), "{text}");
        assert!(text.contains("State: running since "), "{text}");
        assert!(text.contains(" ago)"), "{text}");
        assert!(text.contains("Why: "), "{text}");
        assert!(text.contains(&format!("PID: {main}\n")), "{text}");
        let tree = text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Tree: "))
            .unwrap_or_else(|| panic!("no Tree line: {text}"));
        for g in &grandchildren {
            assert!(
                tree.split_whitespace().any(|p| p == g.to_string()),
                "grandchild {g} not in `{tree}`"
            );
        }
        assert!(text.contains("Breaker: closed"), "{text}");
        assert!(text.contains("Log file: "), "{text}");
        // The last log lines, as the log file has them.
        assert!(
            text.contains(&format!(" stdout ready pid={main}\n")),
            "no last log line: {text}"
        );
        assert!(
            text.contains(&format!("----- run 1 pid {main} -----")),
            "{text}"
        );

        let out = m.cli(&["status", "tree", "-o", "json"]).await;
        out.ok();
        let d: ProcessDetail = out.json();
        assert_eq!(d.pids.first(), Some(&main));
        for g in &grandchildren {
            assert!(d.pids.contains(g), "{g} not in {:?}", d.pids);
        }
        assert_eq!(d.process.state, "running");
        assert!(d.last_transition.is_some());

        let out = m.cli(&["status", "nope"]).await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert!(out.stderr.contains("nope"), "{out:#?}");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
