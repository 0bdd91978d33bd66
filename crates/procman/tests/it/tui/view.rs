//! The table, the log pane, the actions, the filters, the detail and the
//! signal prompt, driven with keys.

use procman_api::Process;

use super::*;
use crate::cli_control::svc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_stop_start_and_restart_the_selected_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = ["alpha", "beta", "gamma"].map(|id| svc(&t, id, &["run"]));
        let m = Running::start(t, &entries.concat()).await;
        let listed: Vec<Process> = m.cli(&["status", "-o", "json"]).await.ok().json();
        assert_eq!(listed.len(), 3);
        tmux.open("v", &m, &[]).await;

        let s = tmux
            .wait(
                "v",
                "every process running, with the pid of `status -o json`",
                |s| {
                    listed.iter().all(|p| {
                        s.row(&p.id)
                            .is_some_and(|r| r.state == "running" && r.pid == p.pid)
                    })
                },
            )
            .await;
        let socket = m.socket().display().to_string();
        assert!(
            s.header().starts_with(&format!(
                "procman  {socket}  3 processes, 3 up, 0 need a look"
            )),
            "{}",
            s.0
        );
        assert!(s.row("alpha").expect("alpha").selected, "{}", s.0);
        assert!(s.keys().starts_with("q quit  ⏎ detail  s start"), "{}", s.0);
        // The selected process's log: the line the child printed.
        let alpha = listed[0].pid.expect("pid");
        tmux.wait("v", "alpha's `ready` line in its log pane", |s| {
            s.has(" log of alpha (following) ") && s.has(&format!("stdout ready pid={alpha}"))
        })
        .await;

        tmux.keys("v", &["j"]).await;
        tmux.wait("v", "beta selected, its log shown", |s| {
            s.row("beta").is_some_and(|r| r.selected) && s.has(" log of beta (following) ")
        })
        .await;
        let first = listed[1].pid.expect("pid");

        tmux.keys("v", &["x"]).await;
        tmux.wait("v", "beta stopped", |s| {
            s.message() == "stop beta: stopped"
                && s.row("beta")
                    .is_some_and(|r| r.state == "stopped" && r.pid.is_none())
        })
        .await;
        assert!(!alive(first), "pid {first} still alive after x");
        assert_eq!(m.process("beta").await.state, "stopped");
        assert!(alive(alpha), "only the selected process is stopped");

        tmux.keys("v", &["s"]).await;
        let s = tmux
            .wait("v", "beta running again", |s| {
                s.message().starts_with("start beta: running, pid ")
                    && s.row("beta")
                        .is_some_and(|r| r.state == "running" && r.pid.is_some())
            })
            .await;
        let second = s.row("beta").and_then(|r| r.pid).expect("pid");
        assert_eq!(s.message(), format!("start beta: running, pid {second}"));
        assert_ne!(second, first);
        assert!(alive(second));
        assert_eq!(pid_of(&m, "beta").await, second);

        tmux.keys("v", &["r"]).await;
        let s = tmux
            .wait("v", "beta restarted with a new pid", |s| {
                s.message().starts_with("restart beta: running, pid ")
                    && s.row("beta")
                        .is_some_and(|r| r.state == "running" && r.pid.is_some_and(|p| p != second))
            })
            .await;
        let third = s.row("beta").and_then(|r| r.pid).expect("pid");
        assert_eq!(s.message(), format!("restart beta: running, pid {third}"));
        assert!(!alive(second), "the old run {second} is gone");
        assert!(alive(third));
        assert_eq!(pid_of(&m, "beta").await, third);
        tmux.wait("v", "the new run's `ready` line", |s| {
            s.has(&format!("stdout ready pid={third}"))
        })
        .await;

        tmux.keys("v", &["q"]).await;
        let s = tmux
            .wait("v", "the view to end", |s| s.ended().is_some())
            .await;
        assert_eq!(s.ended().map(|e| e.0), Some(0), "{}", s.0);
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_the_detail_all_logs_and_search() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = ["alpha", "beta", "gamma"].map(|id| svc(&t, id, &["run"]));
        let m = Running::start(t, &entries.concat()).await;
        m.cli(&["stop", "beta"]).await.ok();
        tmux.open("f", &m, &[]).await;
        let shown = |s: &Screen| ["alpha", "beta", "gamma"].map(|id| s.row(id).is_some());
        tmux.wait("f", "the table, beta stopped", |s| {
            shown(s) == [true; 3] && s.row("beta").is_some_and(|r| r.state == "stopped")
        })
        .await;

        // `/`: the table narrows as the id is typed; Enter keeps it.
        tmux.keys("f", &["/"]).await;
        tmux.wait("f", "the filter prompt", |s| {
            s.message().starts_with("filter by id: ")
        })
        .await;
        tmux.type_text("f", "gam").await;
        tmux.wait("f", "only gamma", |s| {
            shown(s) == [false, false, true]
                && s.has(" showing 1 of 3 ")
                && s.has(" state: all, id ~ gam")
        })
        .await;
        tmux.keys("f", &["Enter"]).await;
        tmux.wait("f", "the filter kept, gamma selected and followed", |s| {
            s.keys().starts_with("q quit")
                && shown(s) == [false, false, true]
                && s.row("gamma").is_some_and(|r| r.selected)
                && s.has(" log of gamma (following) ")
        })
        .await;
        // A filter typed, then Esc: the one before it is back.
        tmux.keys("f", &["/"]).await;
        tmux.type_text("f", "zz").await;
        tmux.wait("f", "nothing matches", |s| {
            shown(s) == [false; 3] && s.has(" no process matches the filter (Esc clears it) ")
        })
        .await;
        tmux.escape("f").await;
        tmux.wait("f", "the filter as before", |s| {
            s.keys().starts_with("q quit")
                && shown(s) == [false, false, true]
                && s.has(" state: all, id ~ gam")
        })
        .await;
        // Esc outside the prompt clears the filter.
        tmux.escape("f").await;
        tmux.wait("f", "every row again", |s| {
            shown(s) == [true; 3] && !s.has(" showing ") && !s.has(" state: ")
        })
        .await;

        // `f` cycles the state filter: up, down, trouble, all.
        let steps = [
            (
                "up",
                [true, false, true],
                [" showing 2 of 3 ", " state: up"],
            ),
            (
                "down",
                [false, true, false],
                [" showing 1 of 3 ", " state: down"],
            ),
            (
                "trouble",
                [false; 3],
                [" no process matches", " state: trouble"],
            ),
        ];
        for (name, want, header) in steps {
            tmux.keys("f", &["f"]).await;
            tmux.wait("f", &format!("state filter {name}"), |s| {
                shown(s) == want && header.iter().all(|h| s.has(h))
            })
            .await;
        }
        tmux.keys("f", &["f"]).await;
        tmux.wait("f", "state filter all", |s| {
            shown(s) == [true; 3] && !s.has(" showing ") && !s.has(" state: ")
        })
        .await;

        // Enter: the text of `procman status alpha`; Esc: the table.
        tmux.keys("f", &["g"]).await;
        tmux.wait("f", "alpha selected", |s| {
            s.row("alpha").is_some_and(|r| r.selected)
        })
        .await;
        let pid = pid_of(&m, "alpha").await;
        tmux.keys("f", &["Enter"]).await;
        let s = tmux
            .wait("f", "alpha's detail", |s| {
                s.has("State: running since") && s.has(&format!("PID: {pid}"))
            })
            .await;
        assert!(s.keys().starts_with("Esc back  s start"), "{}", s.0);
        let status = m.cli(&["status", "alpha"]).await;
        status.ok();
        let lines = s.lines();
        for l in status.stdout.lines() {
            let stable = ["●", "PID:", "Restarts:", "Breaker:"];
            if stable.iter().any(|w| l.trim_start().starts_with(w)) {
                assert!(
                    lines.contains(&l.trim_end()),
                    "{l:?} not on screen:\n{}",
                    s.0
                );
            }
        }
        tmux.escape("f").await;
        tmux.wait("f", "the table again", |s| {
            shown(s) == [true; 3] && s.keys().starts_with("q quit") && !s.has("State:")
        })
        .await;

        // `a`: every process's log, merged; `?`: a search in it.
        tmux.keys("f", &["a"]).await;
        tmux.wait("f", "every log, beta's stop in it", |s| {
            s.has(" log of every process (following) ")
                && s.has("alpha | ")
                && s.has("gamma | ")
                && s.has("stdout got SIGTERM")
        })
        .await;
        tmux.keys("f", &["?"]).await;
        tmux.type_text("f", "got SIGTERM").await;
        tmux.keys("f", &["Enter"]).await;
        tmux.wait("f", "beta's stop found", |s| {
            s.message() == "1 line matches (n: older, N: newer)"
                && s.has(" search: got sigterm ")
                && s.has("beta | ")
        })
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signal_prompt_sends_what_is_typed() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]) + &always(&t, "phoenix");
        let m = Running::start(t, &entries).await;
        let alpha = pid_of(&m, "alpha").await;
        let phoenix = pid_of(&m, "phoenix").await;
        tmux.open("k", &m, &[]).await;
        tmux.wait("k", "both running", |s| {
            s.row("alpha")
                .is_some_and(|r| r.pid == Some(alpha) && r.selected)
                && s.row("phoenix").is_some_and(|r| r.pid == Some(phoenix))
        })
        .await;

        // K opens the prompt with TERM in it; it is replaced by USR1.
        tmux.keys("k", &["K"]).await;
        tmux.wait("k", "the prompt, TERM in it", |s| {
            s.message()
                .starts_with("signal to send (TERM, HUP, KILL, 10, …): TERM_")
        })
        .await;
        tmux.keys("k", &["BSpace"; 4]).await;
        tmux.type_text("k", "USR1").await;
        tmux.wait("k", "USR1 typed", |s| s.message().ends_with(": USR1_"))
            .await;
        tmux.keys("k", &["Enter"]).await;
        tmux.wait("k", "USR1 sent, and the child saying so", |s| {
            s.message() == "sent USR1 to alpha" && s.has("stdout got SIGUSR1")
        })
        .await;
        m.wait_log("alpha", "got SIGUSR1").await;
        assert_eq!(pid_of(&m, "alpha").await, alpha, "USR1 does not end it");
        assert!(alive(alpha));

        // KILL on a process restarted always: a new run, a new pid.
        tmux.keys("k", &["j"]).await;
        tmux.wait("k", "phoenix selected", |s| {
            s.row("phoenix").is_some_and(|r| r.selected)
        })
        .await;
        tmux.keys("k", &["K"]).await;
        tmux.wait("k", "the prompt", |s| s.message().ends_with(": TERM_"))
            .await;
        tmux.keys("k", &["BSpace"; 4]).await;
        tmux.type_text("k", "KILL").await;
        tmux.wait("k", "KILL typed", |s| s.message().ends_with(": KILL_"))
            .await;
        tmux.keys("k", &["Enter"]).await;
        let s = tmux
            .wait("k", "phoenix running again with a new pid", |s| {
                s.message() == "sent KILL to phoenix"
                    && s.row("phoenix").is_some_and(|r| {
                        r.state == "running"
                            && r.pid.is_some_and(|p| p != phoenix)
                            && r.restarts == "1"
                    })
            })
            .await;
        let again = s.row("phoenix").and_then(|r| r.pid).expect("pid");
        assert!(!alive(phoenix), "the killed run {phoenix} is gone");
        assert!(alive(again));
        let p = m.process("phoenix").await;
        assert_eq!((p.pid, p.restarts), (Some(again), 1));
        let last = p.last_exit.expect("the KILL, as the last exit");
        assert!(last.description.contains("KILL"), "{last:?}");
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
