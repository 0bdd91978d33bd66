//! `procman events` and `procman logs` through the manager, and their
//! `-f` streams; `procman logs` from the files when no manager runs.

use procman_api::Event;

use super::*;

/// Waits until `started`'s stdout has a line containing `needle`.
async fn wait_stdout(started: &Started, needle: &str) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = started.stdout();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} after {SETTLE:?}; stdout:\n{text}\nstderr:\n{}",
            started.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stdout of `procman logs -o json`: one JSON record per line.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_the_transitions_of_a_restart() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [svc(&t, "web", &["run"]), svc(&t, "other", &["run"])].concat();
        let m = Running::start(t, &entries).await;
        m.cli(&["restart", "web"]).await.ok();

        let out = m.cli(&["events", "web", "-o", "json"]).await;
        out.ok();
        let events: Vec<Event> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(events.iter().all(|e| e.process == "web"), "{events:#?}");
        let restart: Vec<&Event> = events
            .iter()
            .filter(|e| e.cause_kind == "restart_requested")
            .collect();
        assert!(
            restart
                .iter()
                .any(|e| e.from == "running" && e.to == "stopping"),
            "{events:#?}"
        );
        let last = events.last().expect("events");
        assert_eq!(last.to, "running", "{events:#?}");
        assert!(
            events.windows(2).all(|w| w[0].seq < w[1].seq),
            "{events:#?}"
        );

        let out = m.cli(&["events", "-n", "100"]).await;
        out.ok();
        assert!(
            out.stdout
                .contains(" web running -> stopping (restart requested)"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(" other "),
            "every process's: {}",
            out.stdout
        );
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_prints_a_transition_as_it_happens() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let m = Running::start(t, &entries).await;
        let f = spawn_cli(&["events", "-f", "-n", "5", "-c", &m.file], &[], None);
        // The past transitions first: the stream is open.
        wait_stdout(&f, " -> running").await;
        assert!(!f.stdout().contains("stop requested"));

        m.cli(&["stop", "web"]).await.ok();
        let text = wait_stdout(&f, "running -> stopping (stop requested)").await;
        assert!(text.lines().count() >= 2, "{text}");

        let _ = signal_process(f.pid, Signal::INT);
        let out = f.output(SETTLE).await;
        assert_eq!(out.code(), 0, "{out:#?}");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_through_the_manager_plain_json_and_followed() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let m = Running::start(t, &entries).await;
        let pid = ready_pid(&m.wait_log("web", "ready pid=").await).expect("pid");
        let state = m.t.path("state").display().to_string();

        // Without a config the files cannot be found: only the manager
        // can answer.
        let out = cli(&["logs", "web", "--state-dir", &state]).await;
        out.ok();
        assert!(
            out.stdout.ends_with(&format!(" stdout ready pid={pid}\n")),
            "{out:#?}"
        );
        // The same lines as the file (plain records, as stored).
        assert_eq!(out.stdout, m.process_log("web"), "{out:#?}");

        let out = cli(&["logs", "--state-dir", &state, "-o", "json", "-n", "1"]).await;
        out.ok();
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{out:#?}");
        assert_eq!(lines[0]["id"], "web");
        assert_eq!(lines[0]["line"], format!("ready pid={pid}"));
        assert_eq!(lines[0]["stream"], "stdout");

        let f = spawn_cli(&["logs", "-f", "web", "--state-dir", &state], &[], None);
        wait_stdout(&f, "ready pid=").await;
        m.cli(&["signal", "web", "HUP"]).await.ok();
        wait_stdout(&f, "got SIGHUP").await;
        let _ = signal_process(f.pid, Signal::TERM);
        assert_eq!(f.output(SETTLE).await.code(), 0);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_without_a_manager_are_read_from_the_files_the_config_names() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let mut m = Running::start(t, &entries).await;
        let pid = ready_pid(&m.wait_log("web", "ready pid=").await).expect("pid");
        let _ = signal_process(m.pid, Signal::TERM);
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        let file = m.process_log("web");
        assert!(
            file.contains(&format!("----- run 1 pid {pid} ended: ")),
            "{file}"
        );

        // Nobody answers on the socket: the config says where the files are.
        let out = m.cli(&["logs", "web"]).await;
        out.ok();
        assert_eq!(out.stdout, file, "{out:#?}");

        let out = m.cli(&["logs", "-o", "json"]).await;
        out.ok();
        let records = json_lines(&out);
        let ready = format!("ready pid={pid}");
        assert!(
            records.iter().any(|r| r["id"] == "web"
                && r["stream"] == "stdout"
                && r["line"] == ready.as_str()),
            "{out:#?}"
        );
        assert_eq!(
            records.last().map(|r| &r["event"]),
            Some(&"end".into()),
            "{out:#?}"
        );

        // Without the config only a manager could say where they are.
        let state = m.t.path("state").display().to_string();
        let out = cli(&["logs", "web", "--state-dir", &state]).await;
        assert_eq!(out.code(), 3, "{out:#?}");
        assert!(
            out.stderr
                .contains("without its config (-c FILE) the log files cannot be found"),
            "{out:#?}"
        );
    })
    .await
    .expect("watchdog");
}

/// A follower whose output is read slowly while the manager shuts down
/// ends as any follower does then: the manager ended the stream, exit 0
/// (not an HTTP error about a cut connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowly_read_follower_ends_quietly_when_the_manager_shuts_down() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mut entries = svc(&t, "web", &["run"]);
        for i in 0..4 {
            entries += &svc_with(
                &t,
                &format!("loop{i}"),
                &["exit", "1"],
                "restart_policy:\n  strategy: always\n  restart_delay: 0s\n  backoff_multiplier: 1.0\n  max_attempts: 0\n",
            );
            entries += "    enabled: false\n";
        }
        let mut m = Running::start(t, &entries).await;
        for i in 0..4 {
            m.cli(&["start", &format!("loop{i}"), "--no-wait"]).await.ok();
        }
        // Nobody reads the pipe until the manager is gone.
        let (read, write) = rustix::pipe::pipe().expect("pipe");
        let f = spawn_cli(
            &["events", "-f", "-o", "json", "-c", &m.file],
            &[],
            Some(Stdio::Fd(write)),
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Stopped without dropping `m`, whose cleanup would kill the
        // follower (its arguments name the test's directory).
        let _ = signal_process(m.pid, Signal::TERM);
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0));
        let drained = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut all = Vec::new();
            let _ = std::fs::File::from(read).read_to_end(&mut all);
            all.len()
        });
        let out = f.output(CLI_DEADLINE).await;
        let bytes = drained.await.expect("drained");
        assert_eq!(out.code(), 0, "{bytes} bytes read: {out:#?}");
        assert!(
            out.stderr.contains("the manager ended the stream"),
            "{out:#?}"
        );
    })
    .await
    .expect("watchdog");
}
