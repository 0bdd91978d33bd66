//! What a user does through the API and what they see: the list, stop
//! (the process is gone), start, restart (a new pid), a signal (the policy
//! restarts the run it ended), start on a `failed` process, shutdown.

use super::*;

const ALWAYS: &str =
    "      restart_policy:\n        strategy: always\n        restart_delay: 100ms\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_stop_start_restart_and_signal_act_on_the_real_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, a_pid) = runner(&t, "a", ALWAYS);
        let (b, _) = runner(&t, "b", "");
        let api = Api::start(&t, &(header(&t, 0, "") + &a + &b), 0).await;
        let first = wait_pidfile(&a_pid, LONG, |_| true).await;

        // The list: every process, in config order, with its pid.
        let r = api.local("GET", "/api/v1/processes", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let list = r.json();
        let ids: Vec<&str> = list
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let a_now = api.wait_state("a", "running").await;
        assert_eq!(a_now["pid"], first);

        // Stop: answered once done, and the process is gone.
        let r = api.local("POST", "/api/v1/processes/a/stop", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["state"], "stopped", "{}", r.text());
        assert!(!alive(first), "pid {first} still alive after stop");

        // Start: a new run.
        let r = api.local("POST", "/api/v1/processes/a/start", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let second = wait_pidfile(&a_pid, LONG, |p| p != first).await;
        assert!(alive(second));

        // Restart: another pid, the old one gone.
        let r = api.local("POST", "/api/v1/processes/a/restart", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let third = wait_pidfile(&a_pid, LONG, |p| p != second).await;
        assert!(!alive(second), "pid {second} survived the restart");
        assert_ne!(third, second);

        // A signal ends the run; the policy (always) starts a new one.
        let r = api
            .local(
                "POST",
                "/api/v1/processes/a/signal",
                Some(r#"{"signal": "TERM"}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let fourth = wait_pidfile(&a_pid, LONG, |p| p != third).await;
        wait_gone(&[third], LONG).await;
        assert!(alive(fourth));
        let detail = api.local("GET", "/api/v1/processes/a", None).await;
        assert_eq!(detail.status, 200, "{}", detail.text());
        let d = detail.json();
        assert!(d["process"]["restarts"].as_u64() >= Some(1), "{d}");
        assert_eq!(d["pids"][0], fourth, "{d}");

        // Without waiting: answered at once, done soon after.
        let r = api
            .local("POST", "/api/v1/processes/a/stop?wait=false", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        api.wait_state("a", "stopped").await;
        wait_gone(&[fourth], LONG).await;

        api.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_brings_a_failed_process_back() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Fails at once until the flag exists; the breaker opens after one
        // restart.
        let flag = t.path("flag");
        let pidfile = t.path("flaky.pid");
        let script = format!(
            "[ -e {} ] || exit 3; exec {} --pidfile {} run",
            flag.display(),
            child().display(),
            pidfile.display()
        );
        let entry = format!(
            "  - id: flaky\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", {script:?}]\n      restart_policy:\n        max_attempts: 1\n        restart_delay: 50ms\n"
        );
        let api = Api::start(&t, &(header(&t, 0, "") + &entry), 0).await;
        let failed = api.wait_state("flaky", "failed").await;
        assert_eq!(failed["runs"], 2, "{failed}");
        let d = api.local("GET", "/api/v1/processes/flaky", None).await.json();
        assert_eq!(d["breaker"], "open", "{d}");

        std::fs::write(&flag, "").expect("write the flag");
        let r = api.local("POST", "/api/v1/processes/flaky/start", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let pid = wait_pidfile(&pidfile, LONG, |_| true).await;
        let p = api.wait_state("flaky", "running").await;
        assert_eq!(p["pid"], pid, "{p}");
        let d = api.local("GET", "/api/v1/processes/flaky", None).await.json();
        assert_eq!(d["breaker"], "closed", "{d}");

        api.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_through_the_api_ends_the_manager_with_0_and_nothing_left() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (mut api, pid) = with_one_runner(&t).await;

        let r = request(
            &api.tcp(),
            "POST",
            "/api/v1/manager/shutdown",
            &[("authorization", &format!("Bearer {}", api.token()))],
            None,
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(r.json()["message"].is_string());
        let end = api.m.ended(LONG).await;
        assert_eq!(
            end,
            procman_core::outcome::ProcessEnd::Exited(0),
            "{}",
            api.m.log_text()
        );
        assert!(!alive(pid), "pid {pid} outlived the manager");
        assert_eq!(nothing_left(t.dir.path()), vec![]);
        assert!(!api.socket().exists(), "the socket outlived the manager");
        assert!(
            api.m
                .log_text()
                .contains("shutdown requested through the API"),
            "{}",
            api.m.log_text()
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_endpoint_and_an_unknown_id() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let api = Api::start(&t, &(header(&t, 0, "") + &a), 0).await;

        let m = api.local("GET", "/api/v1/manager", None).await;
        assert_eq!(m.status, 200, "{}", m.text());
        let j = m.json();
        assert_eq!(j["pid"], api.m.pid, "{j}");
        assert_eq!(j["processes"], 1, "{j}");
        assert_eq!(j["state_dir"], api.state.display().to_string(), "{j}");

        for (method, path) in [
            ("GET", "/api/v1/processes/nope"),
            ("POST", "/api/v1/processes/nope/start"),
            ("POST", "/api/v1/processes/nope/stop"),
            ("POST", "/api/v1/processes/nope/restart"),
        ] {
            let r = api.local(method, path, None).await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
            assert_eq!(r.error_code(), "not_found");
        }
        let r = api
            .local(
                "POST",
                "/api/v1/processes/nope/signal",
                Some(r#"{"signal":"TERM"}"#),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text());

        let r = api.local("POST", "/api/v1/manager/reload", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["unchanged"],
            serde_json::json!(["a"]),
            "{}",
            r.text()
        );

        api.stop().await;
    })
    .await
    .expect("watchdog");
}
