//! How the view ends and what it survives: every way out gives the
//! terminal back; no manager, or no terminal, ends it before it starts;
//! a manager that goes and comes back, and a resized window, it lives
//! through.

use procman_core::outcome::Signal;
use procman_core::platform::Stdio;

use super::*;
use crate::cli_control::{spawn_cli, svc};

/// How a way out is taken.
enum Out {
    Key(&'static str),
    Signal(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_gives_the_terminal_back() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]);
        let m = Running::start(t, &entries).await;
        let ways = [
            ("quit", Out::Key("q"), 0),
            ("ctrl-c", Out::Key("C-c"), 0),
            ("sigterm", Out::Signal("TERM"), 0),
            ("sighup", Out::Signal("HUP"), 0),
            ("panic", Out::Key("P"), 101),
        ];
        for (name, out, code) in ways {
            if name == "panic" && !cfg!(debug_assertions) {
                continue; // `P` panics in a debug build only
            }
            tmux.open(name, &m, &[("PROCMAN_TUI_TEST_PANIC", "1")])
                .await;
            tmux.wait(name, "the table", |s| {
                s.row("alpha").is_some_and(|r| r.state == "running")
            })
            .await;
            assert_eq!(tmux.show(name, "#{alternate_on}").await, "1", "{name}");
            match out {
                Out::Key(k) => tmux.keys(name, &[k]).await,
                Out::Signal(sig) => {
                    let pid = tmux.tui_pid(name).await;
                    let sig = Signal::parse(sig).expect("a signal");
                    signal_process(pid, sig).expect("signal the view");
                }
            }
            let s = tmux
                .wait(name, "the shell's report after the view", |s| {
                    s.ended().is_some()
                })
                .await;
            let (exit, stty) = s.ended().expect("ended");
            assert_eq!(exit, code, "{name}: exit code; the screen:\n{}", s.0);
            assert!(cooked(&stty), "{name}: the terminal left raw:\n{}", s.0);
            // The main screen is back, the view's drawing gone with the
            // alternate one, and the cursor is shown.
            let flags = tmux.show(name, "#{alternate_on} #{cursor_flag}").await;
            assert_eq!(flags, "0 1", "{name}: alternate screen, cursor");
            assert!(!s.has(" log of ") && !s.has("q quit"), "{name}:\n{}", s.0);
            if name == "panic" {
                // The panic's message, said on the restored screen.
                assert!(
                    s.has("a panic asked for by PROCMAN_TUI_TEST_PANIC"),
                    "{}",
                    s.0
                );
            }
        }
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manager_is_3_and_a_pipe_is_2() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc(&t, "alpha", &["run"]);
        t.config(&format!("{}{entries}", t.header()));
        let file = t.path("procman.yaml").display().to_string();
        let socket = t.path("state").join(procman_api::SOCKET_NAME);
        // Stdout is a file, not a terminal: the manager is looked for
        // first, so this is "no manager" (3), not "no terminal" (2).
        let out = spawn_cli(&["tui", "-c", &file], &[], None)
            .output(SETTLE)
            .await;
        assert_eq!(out.code(), 3, "{out:#?}");
        assert_eq!(
            out.stderr,
            format!(
                "procman: no manager running for {file} (looked for {})\n",
                socket.display()
            )
        );
        assert_eq!(out.stdout, "");

        let m = Running::start(t, &entries).await;
        let (read, write) = rustix::pipe::pipe().expect("pipe");
        let out = spawn_cli(&["tui", "-c", &m.file], &[], Some(Stdio::Fd(write)))
            .output(SETTLE)
            .await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert!(
            out.stderr
                .starts_with("procman tui: stdout is not a terminal"),
            "{out:#?}"
        );
        // Nothing was drawn into the pipe (the write end is closed now).
        let mut buf = [0u8; 64];
        assert_eq!(rustix::io::read(&read, &mut buf).expect("read"), 0);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_goes_and_comes_back_is_followed_again() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]) + &svc(&t, "beta", &["run"]);
        let mut m = Running::start(t, &entries).await;
        let before = [pid_of(&m, "alpha").await, pid_of(&m, "beta").await];
        tmux.open("r", &m, &[]).await;
        tmux.wait("r", "both running", |s| {
            s.row("alpha").and_then(|r| r.pid) == Some(before[0])
                && s.row("beta").and_then(|r| r.pid) == Some(before[1])
        })
        .await;
        let tui = tmux.tui_pid("r").await;

        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0));
        tmux.wait("r", "DISCONNECTED in the header", |s| {
            s.header().contains("  DISCONNECTED: ") && s.header().ends_with(" (reconnecting)")
        })
        .await;
        assert!(alive(tui), "the view goes on without a manager");

        m.rerun().await;
        let ps = m
            .wait_until("both running again", |ps| {
                ps.iter().all(|p| p.state == "running")
            })
            .await;
        let after: Vec<Option<u32>> = ps.iter().map(|p| p.pid).collect();
        assert!(after
            .iter()
            .all(|p| p.is_some_and(|p| !before.contains(&p))));
        tmux.wait("r", "the new manager's pids, and `connected again`", |s| {
            !s.header().contains("DISCONNECTED")
                && s.header().contains("2 processes, 2 up, 0 need a look")
                && s.row("alpha").is_some_and(|r| r.pid == after[0])
                && s.row("beta").is_some_and(|r| r.pid == after[1])
                && s.message() == "connected again"
        })
        .await;
        // The log pane follows the new manager's log too.
        let alpha = after[0].expect("pid");
        tmux.wait("r", "the new run's log line", |s| {
            s.has(&format!("stdout ready pid={alpha}"))
        })
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resized_window_is_drawn_again_at_its_size() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]) + &svc(&t, "beta", &["run"]);
        let m = Running::start(t, &entries).await;
        tmux.open("z", &m, &[]).await;
        let s = tmux
            .wait("z", "the full screen", |s| {
                s.row("alpha")
                    .is_some_and(|r| r.selected && r.state == "running")
                    && s.row("beta").is_some()
                    && s.has(" log of alpha (following) ")
                    && s.has("stdout ready pid=")
            })
            .await;
        let wide_keys = s.keys().to_string();
        let tui = tmux.tui_pid("z").await;

        for (w, h) in [(60, 15), (120, 40)] {
            let (ws, hs) = (w.to_string(), h.to_string());
            tmux.run(&["resize-window", "-t", "z", "-x", &ws, "-y", &hs])
                .await;
            let s = tmux
                .wait("z", &format!("the view drawn at {w}×{h}"), |s| {
                    laid_out(s, w, h).is_ok()
                })
                .await;
            assert!(alive(tui), "{}", s.0);
            if w == 60 {
                // The same keys, cut at the new width.
                let short = s.keys();
                assert!(
                    short.len() < wide_keys.len() && wide_keys.starts_with(short),
                    "{short:?} vs {wide_keys:?}"
                );
            } else {
                assert_eq!(s.keys(), wide_keys);
            }
        }
        // Still at work: a key moves the selection, and its log follows.
        tmux.keys("z", &["j"]).await;
        tmux.wait("z", "beta selected", |s| {
            s.row("beta").is_some_and(|r| r.selected) && s.has(" log of beta (following) ")
        })
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

/// Whether `s` is the view, and nothing else, at `w`×`h`: every row is
/// one of its parts (the header first, the keys last, the table, the
/// log pane), none wider than the screen, and each part there once.
fn laid_out(s: &Screen, w: usize, h: usize) -> Result<(), String> {
    let lines = s.lines();
    if lines.len() != h {
        return Err(format!("{} rows", lines.len()));
    }
    // The header and the keys, the heading, alpha's row, beta's, the
    // log pane's title.
    let mut count = [0usize; 5];
    for (i, l) in lines.iter().enumerate() {
        if l.chars().count() > w {
            return Err(format!("row {i} too wide: {l:?}"));
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let part = match words.as_slice() {
            _ if i == 0 => l.starts_with("procman  ").then_some(0),
            _ if i == h - 1 => l.starts_with("q quit  ").then_some(0),
            ["ID", "STATE", "PID", ..] => Some(1),
            [">", "alpha", "running", ..] => Some(2),
            ["beta", "running", ..] => Some(3),
            _ if l.contains(" log of alpha (following) ") => Some(4),
            [] => continue,
            _ if l.chars().all(|c| c == '─') => continue,
            // A log line: `2026-…Z ----- run …`, `… stdout ready pid=N`.
            [ts, ..] if ts.len() >= 10 && ts.as_bytes()[4] == b'-' => continue,
            _ => None,
        };
        match part {
            Some(p) => count[p] += 1,
            None => return Err(format!("row {i} is not the view's: {l:?}")),
        }
    }
    match count {
        [2, 1, 1, 1, 1] => Ok(()),
        c => Err(format!("parts seen {c:?} times")),
    }
}
