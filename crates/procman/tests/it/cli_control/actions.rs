//! `procman start|stop|restart` (IDs, `--all`, `--no-wait`) and `signal`.

use serde_json::Value;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_and_restart_change_the_process_and_its_pid() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let m = Running::start(t, &entries).await;
        let first = ready_pid(&m.wait_log("web", "ready pid=").await).expect("pid");

        let out = m.cli(&["stop", "web"]).await;
        out.ok();
        assert_eq!(out.stdout.trim(), "web: stopped", "{out:#?}");
        // Waited until done: the process is gone when the command returns.
        assert!(!alive(first), "pid {first} still alive after stop");
        assert_eq!(m.process("web").await.state, "stopped");

        let out = m.cli(&["start", "web"]).await;
        out.ok();
        let second = m.process("web").await.pid.expect("a pid after start");
        assert_ne!(second, first);
        assert_eq!(out.stdout.trim(), format!("web: running (pid {second})"));
        assert!(alive(second));

        let out = m.cli(&["restart", "web", "-o", "json"]).await;
        out.ok();
        let v: Value = out.json();
        let r = &v["results"][0];
        assert_eq!(r["id"], "web");
        assert_eq!(r["ok"], true);
        assert_eq!(r["process"]["state"], "running");
        let third = r["process"]["pid"].as_u64().expect("pid") as u32;
        assert_ne!(third, second);
        assert!(!alive(second), "the old run {second} is gone");
        assert!(alive(third));
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_acts_on_every_process_and_failures_are_per_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [svc(&t, "a", &["run"]), svc(&t, "b", &["run"])].concat();
        let m = Running::start(t, &entries).await;
        let before: Vec<u32> = m
            .client()
            .processes()
            .await
            .expect("processes")
            .iter()
            .filter_map(|p| p.pid)
            .collect();
        assert_eq!(before.len(), 2);

        let out = m.cli(&["stop", "--all"]).await;
        out.ok();
        assert_eq!(out.stdout, "a: stopped\nb: stopped\n", "{out:#?}");
        assert!(before.iter().all(|&p| !alive(p)));

        let out = m.cli(&["start", "--all", "-o", "json"]).await;
        out.ok();
        let v: Value = out.json();
        let ids: Vec<&str> = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ["a", "b"]);

        // One unknown: the other is still acted on, and the command fails.
        let out = m.cli(&["restart", "a", "nope", "-o", "json"]).await;
        assert_eq!(out.code(), 1, "{out:#?}");
        let v: Value = out.json();
        assert_eq!(v["results"][0]["ok"], true);
        assert_eq!(v["results"][1]["ok"], false);
        assert_eq!(v["results"][1]["error"]["code"], "not_found");
        assert!(v["results"][1]["error"]["message"].is_string());
        assert!(out.stderr.contains("cannot restart nope"), "{out:#?}");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_returns_before_a_slow_stop_is_done() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // SIGTERM: the child says so, then takes 3 s to exit.
        let entries = svc(&t, "slow", &["run", "--term-delay", "3s"]);
        let m = Running::start(t, &entries).await;
        let pid = ready_pid(&m.wait_log("slow", "ready pid=").await).expect("pid");

        let began = Instant::now();
        let out = m.cli(&["stop", "slow", "--no-wait"]).await;
        out.ok();
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "took {:?}",
            began.elapsed()
        );
        assert!(
            out.stdout.starts_with("slow: stop requested; now "),
            "{out:#?}"
        );
        assert!(alive(pid), "not waited for: still stopping");
        m.wait_until("slow stopped", |ps| ps[0].state == "stopped")
            .await;
        assert!(!alive(pid));
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_reaches_the_process_by_name() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let m = Running::start(t, &entries).await;
        let pid = ready_pid(&m.wait_log("web", "ready pid=").await).expect("pid");

        let out = m.cli(&["signal", "web", "HUP"]).await;
        out.ok();
        assert_eq!(out.stdout.trim(), format!("sent HUP to web (pid {pid})"));
        m.wait_log("web", "got SIGHUP").await;

        let out = m
            .cli(&["signal", "web", "usr1", "--tree", "-o", "json"])
            .await;
        out.ok();
        let v: Value = out.json();
        assert_eq!(v["id"], "web");
        assert_eq!(v["pid"], pid);
        m.wait_log("web", "got SIGUSR1").await;

        let out = m.cli(&["signal", "web", "NOPE"]).await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert_eq!(m.process("web").await.pid, Some(pid), "nothing sent");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
