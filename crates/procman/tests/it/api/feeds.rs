//! Logs, events and metrics through the API: the last records and
//! transitions as JSON, new ones as server-sent events, the Prometheus
//! text; and a follower never holds up the shutdown.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_events_as_json_and_as_they_happen() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, a_pid) = runner(&t, "a", "");
        let (b, b_pid) = runner(&t, "b", "");
        let api = Api::start(&t, &(header(&t, 0, "") + &a + &b), 0).await;
        let first = wait_pidfile(&a_pid, LONG, |_| true).await;
        let b_first = wait_pidfile(&b_pid, LONG, |_| true).await;
        let ready = format!("ready pid={first}");
        let b_ready = format!("ready pid={b_first}");

        // The last records of one log: what the child printed.
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let r = api
                .local("GET", "/api/v1/processes/a/logs?n=10", None)
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            if r.json()
                .as_array()
                .expect("records")
                .iter()
                .any(|rec| rec["line"] == ready)
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {ready:?} in {}",
                r.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Every log merged: both processes' lines.
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let all = api.local("GET", "/api/v1/logs?n=100", None).await.json();
            let lines: Vec<&str> = all
                .as_array()
                .expect("records")
                .iter()
                .filter_map(|r| r["line"].as_str())
                .collect();
            if lines.contains(&ready.as_str()) && lines.contains(&b_ready.as_str()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "merged: {lines:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = api.local("GET", "/api/v1/processes/nope/logs", None).await;
        assert_eq!(r.status, 404, "{}", r.text());

        // Follow both, then restart a: the new run's line and transitions
        // arrive as events.
        let mut logs =
            EventStream::open(&api.unix(), "/api/v1/processes/a/logs?n=0&follow=true", &[]).await;
        assert_eq!(logs.status, 200);
        let kind = logs
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        assert_eq!(kind, Some("text/event-stream"));
        let mut events =
            EventStream::open(&api.unix(), "/api/v1/events?n=0&process=a&follow=true", &[]).await;
        assert_eq!(events.status, 200);
        // The past first: a's start, from the journal.
        let past = data(&events.until("\"to\":\"running\"").await);
        assert_eq!(past["process"], "a");
        assert_eq!(past["pid"], first);

        let r = api.local("POST", "/api/v1/processes/a/restart", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let second = wait_pidfile(&a_pid, LONG, |p| p != first).await;
        let line = data(&logs.until(&format!("ready pid={second}")).await);
        assert_eq!(line["id"], "a");
        let stopping = events.until("\"to\":\"stopping\"").await;
        assert!(stopping.starts_with("event: event"), "{stopping}");
        let e = data(&stopping);
        assert_eq!(e["cause_kind"], "restart_requested", "{e}");
        let running = data(&events.until("\"to\":\"running\"").await);
        assert_eq!(running["pid"], second);
        assert!(running["seq"].as_u64() > e["seq"].as_u64());

        // The journal as JSON, filtered by process, oldest first.
        let r = api.local("GET", "/api/v1/events?process=b&n=0", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let b_events = r.json();
        let b_events = b_events.as_array().expect("events");
        assert!(!b_events.is_empty());
        assert!(b_events.iter().all(|e| e["process"] == "b"), "{b_events:?}");
        let r = api.local("GET", "/api/v1/events?process=nope", None).await;
        assert_eq!(r.status, 404, "{}", r.text());
        let r = api.local("GET", "/api/v1/events?n=2", None).await.json();
        assert_eq!(r.as_array().map(Vec::len), Some(2), "{r}");

        api.stop().await;
        // The streams end with the manager.
        while logs.next().await.is_some() {}
        while events.next().await.is_some() {}
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_see_the_processes_stop_then_end_and_the_journal_outlives_the_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (mut api, pid) = with_one_runner(&t).await;
        let auth = format!("Bearer {}", api.token());
        let headers = [("authorization", auth.as_str())];
        let mut streams = vec![
            EventStream::open(&api.tcp(), "/api/v1/logs?follow=true", &headers).await,
            EventStream::open(&api.tcp(), "/api/v1/events?follow=true", &headers).await,
            EventStream::open(&api.unix(), "/api/v1/events?n=0&follow=true", &[]).await,
        ];
        for s in &streams {
            assert_eq!(s.status, 200);
        }
        streams[2].until("\"to\":\"running\"").await;

        let started = std::time::Instant::now();
        let r = api.local("POST", "/api/v1/manager/shutdown", None).await;
        assert_eq!(r.status, 202);
        // The streams go on while the processes stop: the followers see
        // the last transitions, and only then does each stream end.
        streams[1].until("\"to\":\"stopped\"").await;
        streams[2].until("\"to\":\"stopped\"").await;
        for s in &mut streams {
            while s.next().await.is_some() {}
        }
        let end = api.m.ended(LONG).await;
        assert_eq!(
            end,
            procman_core::outcome::ProcessEnd::Exited(0),
            "{}",
            api.m.log_text()
        );
        // The child stops at once on SIGTERM: nothing waited for the
        // followers (the server's own bound is 2 s).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(!alive(pid));

        // The journal, in the state directory, holds the run's transitions
        // up to the last.
        let journal =
            std::fs::read_to_string(api.state.join(procman_api::JOURNAL_NAME)).expect("journal");
        let last: serde_json::Value =
            serde_json::from_str(journal.lines().last().expect("a line")).expect("json");
        assert_eq!(last["process"], "a");
        assert_eq!(last["to"], "stopped", "{journal}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_the_prometheus_text_format_behind_the_token() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;
        api.wait_state("a", "running").await;

        let r = request(&api.tcp(), "GET", "/metrics", &[], None).await;
        assert_eq!(r.status, 401, "{}", r.text());
        let auth = format!("Bearer {}", api.token());
        let r = request(
            &api.tcp(),
            "GET",
            "/metrics",
            &[("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.header("content-type")
                .starts_with("text/plain; version=0.0.4"),
            "{}",
            r.header("content-type")
        );
        let text = r.text();
        assert!(text.contains("procman_manager_up 1"), "{text}");
        assert!(
            text.contains("procman_process_up{process=\"a\"} 1"),
            "{text}"
        );
        let r = api.local("GET", "/metrics", None).await;
        assert_eq!(r.status, 200);

        api.stop().await;
    })
    .await
    .expect("watchdog");
}
