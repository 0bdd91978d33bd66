//! `shutdown`, no manager (exit 3, `reload` too), and a closed stdout.

use std::os::fd::OwnedFd;

use serde_json::Value;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_manager_and_every_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [
            svc(&t, "web", &["run"]),
            svc(&t, "tree", &["grandchildren"]),
        ]
        .concat();
        let mut m = Running::start(t, &entries).await;
        let web = ready_pid(&m.wait_log("web", "ready pid=").await).expect("pid");
        let log = m.wait_log("tree", "ready pid=").await;
        let mut pids = grandchild_pids(&log);
        pids.extend([web, ready_pid(&log).expect("pid")]);

        let out = m.cli(&["shutdown"]).await;
        out.ok();
        assert!(out.stdout.contains("the manager has stopped"), "{out:#?}");
        assert!(!m.socket().exists() || m.client().manager().await.is_err());
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        assert!(left.is_empty(), "still alive after shutdown: {left:?}");

        // Now nobody answers: exit 3, naming the config and the socket.
        let out = m.cli(&["status"]).await;
        assert_eq!(out.code(), 3, "{out:#?}");
        assert_eq!(
            out.stderr,
            format!(
                "procman: no manager running for {} (looked for {})\n",
                m.file,
                m.socket().display()
            )
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_json_and_no_wait() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let mut m = Running::start(t, &entries).await;
        let out = m.cli(&["shutdown", "--no-wait", "-o", "json"]).await;
        out.ok();
        let v: Value = out.json();
        assert_eq!(v["pid"], m.pid);
        assert_eq!(v["stopped"], false);
        assert!(v["message"].is_string());
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manager_is_exit_3_for_every_client_command() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        t.config(&format!("{}{}", t.header(), svc(&t, "web", &["run"])));
        let file = t.path("procman.yaml").display().to_string();
        let socket = t.path("state").join("procman.sock");
        let want = format!(
            "procman: no manager running for {file} (looked for {})\n",
            socket.display()
        );
        for args in [
            &["status"][..],
            &["status", "web"],
            &["stop", "web"],
            &["start", "--all"],
            &["signal", "web", "TERM"],
            &["events", "-f"],
            &["reload"],
            &["shutdown"],
        ] {
            let mut all = args.to_vec();
            all.extend(["-c", file.as_str()]);
            let out = cli(&all).await;
            assert_eq!(out.code(), 3, "{args:?}: {out:#?}");
            assert_eq!(out.stderr, want, "{args:?}");
            assert_eq!(out.stdout, "", "{args:?}");
        }
        // `logs` reads the files instead (there are none yet: nothing printed).
        let out = cli(&["logs", "-c", &file]).await;
        out.ok();
    })
    .await
    .expect("watchdog");
}

/// A pipe whose read end is already closed: every write to the other end
/// fails with EPIPE, as `| head -1` does once head has its line.
fn closed_pipe() -> OwnedFd {
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    drop(read);
    write
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_commands_quietly_with_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "web", &["run"]);
        let m = Running::start(t, &entries).await;
        for args in [
            &["status"][..],
            &["status", "web"],
            &["status", "-o", "json"],
            &["events"],
            &["logs", "web"],
            &["restart", "web"],
        ] {
            let mut all = args.to_vec();
            all.extend(["-c", m.file.as_str()]);
            let out = spawn_cli(&all, &[], Some(Stdio::Fd(closed_pipe())))
                .output(CLI_DEADLINE)
                .await;
            assert_eq!(out.code(), 0, "{args:?}: {out:#?}");
            assert_eq!(out.stderr, "", "{args:?}");
        }
        // A follower that has nothing to print notices too.
        for args in [&["events", "-f"][..], &["logs", "-f", "web"]] {
            let mut all = args.to_vec();
            all.extend(["-c", m.file.as_str()]);
            let out = spawn_cli(&all, &[], Some(Stdio::Fd(closed_pipe())))
                .output(SETTLE)
                .await;
            assert_eq!(out.code(), 0, "{args:?}: {out:#?}");
            assert_eq!(out.stderr, "", "{args:?}");
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
