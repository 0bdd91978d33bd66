//! What a user of the view meets beyond its keys: a shell's job control
//! (Ctrl-Z, SIGTSTP, `fg`), a reload that removes processes, a manager
//! over TCP restarted with a new token, and a frozen manager.

use std::time::{Duration, Instant};

use procman_core::outcome::Signal;

use super::*;
use crate::cli_control::{spawn_cli, svc};

/// The prompt of the interactive shell the view runs under.
const PROMPT: &str = "trial$";

/// Whether the shell waits at its prompt: the last line shown is it.
fn at_prompt(s: &Screen) -> bool {
    s.lines().iter().rev().find(|l| !l.trim().is_empty()) == Some(&PROMPT)
}

/// Whether `s` is the whole view: the header the first row, the keys the
/// last, the table's heading and both rows, the log pane, nothing of
/// the shell's left; `sel` selected.
fn whole_view(s: &Screen, sel: &str) -> bool {
    let lines = s.lines();
    lines.len() == 40
        && s.header().starts_with("procman  ")
        && s.keys().starts_with("q quit  ⏎ detail")
        && lines.iter().filter(|l| l.starts_with("ID ")).count() == 1
        && s.row("alpha")
            .is_some_and(|r| r.selected == (sel == "alpha"))
        && s.row("beta").is_some_and(|r| r.selected == (sel == "beta"))
        && s.has(&format!(" log of {sel} (following) "))
        && !s.has("Stopped")
        && !s.has(PROMPT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_z_and_sigtstp_give_the_shell_the_terminal_and_fg_takes_it_again() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]) + &svc(&t, "beta", &["run"]);
        let m = Running::start(t, &entries).await;
        let script = format!("PS1='{PROMPT} ' HISTFILE=/dev/null exec bash --norc --noprofile -i");
        tmux.open_sh("j", &script).await;
        tmux.wait("j", "the shell's prompt", at_prompt).await;
        let command = format!("{} tui -c {}", quote(procman()), quote(&m.file));
        tmux.type_text("j", &command).await;
        tmux.keys("j", &["Enter"]).await;
        tmux.wait("j", "the view", |s| whole_view(s, "alpha")).await;
        let tui = tmux.tui_pid("j").await;

        // Ctrl-Z first (a key, in raw mode), then SIGTSTP from outside.
        for (round, (sel, key, next)) in [("alpha", "j", "beta"), ("beta", "k", "alpha")]
            .into_iter()
            .enumerate()
        {
            assert_eq!(tmux.show("j", "#{alternate_on}").await, "1", "{round}");
            match round {
                0 => tmux.keys("j", &["C-z"]).await,
                _ => signal_process(tui, Signal::parse("TSTP").expect("TSTP")).expect("SIGTSTP"),
            }
            let s = tmux
                .wait("j", "the shell's `Stopped` and its prompt", |s| {
                    s.has("Stopped") && at_prompt(s)
                })
                .await;
            assert!(!s.has(" log of ") && !s.has("q quit"), "{round}:\n{}", s.0);
            assert_eq!(tmux.show("j", "#{alternate_on}").await, "0", "{round}");
            assert!(alive(tui), "stopped, not ended");
            let stat = std::fs::read_to_string(format!("/proc/{tui}/stat")).expect("stat");
            let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]);
            assert_eq!(state, Some("T"), "the view is stopped: {stat}");

            // The terminal as the shell's next command finds it.
            tmux.type_text("j", "stty -a").await;
            tmux.keys("j", &["Enter"]).await;
            let s = tmux
                .wait("j", "`stty -a`, then the prompt", |s| {
                    s.0.rsplit_once("stty -a")
                        .is_some_and(|(_, out)| out.contains("icanon"))
                        && at_prompt(s)
                })
                .await;
            let (_, stty) = s.0.rsplit_once("stty -a").expect("stty's output");
            assert!(cooked(stty), "{round}: the terminal left raw:\n{}", s.0);

            // A clean main screen, so that `Stopped` is the next one's.
            tmux.type_text("j", "clear").await;
            tmux.keys("j", &["Enter"]).await;
            tmux.wait("j", "a clear screen", |s| {
                !s.has("Stopped") && s.lines().iter().filter(|l| !l.is_empty()).count() == 1
            })
            .await;
            tmux.type_text("j", "fg").await;
            tmux.keys("j", &["Enter"]).await;
            tmux.wait("j", "the whole view again", |s| whole_view(s, sel))
                .await;
            assert_eq!(tmux.show("j", "#{alternate_on}").await, "1", "{round}");
            tmux.keys("j", &[key]).await;
            tmux.wait("j", "the selection moved", |s| whole_view(s, next))
                .await;
        }
        tmux.keys("j", &["q"]).await;
        tmux.wait("j", "the prompt after the view", |s| {
            at_prompt(s) && !s.has(" log of ")
        })
        .await;
        assert_eq!(tmux.show("j", "#{alternate_on}").await, "0");
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_only_removes_processes_takes_their_rows_and_detail_away() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let [alpha, beta, gamma] = ["alpha", "beta", "gamma"].map(|id| svc(&t, id, &["run"]));
        let header = t.header();
        let m = Running::start(t, &format!("{alpha}{beta}{gamma}")).await;
        let beta_pid = pid_of(&m, "beta").await;
        tmux.open("d", &m, &[]).await;
        tmux.wait("d", "three running", |s| {
            ["alpha", "beta", "gamma"]
                .iter()
                .all(|id| s.row(id).is_some_and(|r| r.state == "running"))
        })
        .await;
        tmux.keys("d", &["j"]).await;
        tmux.wait("d", "beta selected, its log shown", |s| {
            s.row("beta").is_some_and(|r| r.selected) && s.has(" log of beta (following) ")
        })
        .await;

        // beta dropped, and nothing else changed.
        std::fs::write(&m.file, format!("{header}{alpha}{gamma}")).expect("write config");
        m.cli(&["reload"]).await.ok();
        let s = tmux
            .wait("d", "beta's row gone, two counted", |s| {
                s.row("beta").is_none()
                    && s.row("alpha").is_some()
                    && s.row("gamma").is_some()
                    && s.header().contains("  2 processes, 2 up, 0 need a look")
                    && !s.has(" log of beta ")
            })
            .await;
        let ids: Vec<String> = m
            .client()
            .processes()
            .await
            .expect("processes")
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["alpha", "gamma"]);
        assert!(
            !alive(beta_pid),
            "the removed process {beta_pid} was stopped"
        );
        // The selection is on a row still there, and the pane follows it.
        let sel = ["alpha", "gamma"]
            .into_iter()
            .find(|id| s.row(id).is_some_and(|r| r.selected))
            .unwrap_or_else(|| panic!("no row selected:\n{}", s.0));
        tmux.wait("d", "the pane following the selection", |s| {
            s.has(&format!(" log of {sel} (following) "))
        })
        .await;

        // gamma's detail open; gamma dropped.
        tmux.keys("d", &["G"]).await;
        tmux.wait("d", "gamma selected", |s| {
            s.row("gamma").is_some_and(|r| r.selected)
        })
        .await;
        let gamma_pid = pid_of(&m, "gamma").await;
        tmux.keys("d", &["Enter"]).await;
        tmux.wait("d", "gamma's detail", |s| {
            s.has("State: running since") && s.has(&format!("PID: {gamma_pid}"))
        })
        .await;
        std::fs::write(&m.file, format!("{header}{alpha}")).expect("write config");
        m.cli(&["reload"]).await.ok();
        tmux.wait("d", "the detail closed, and why", |s| {
            s.message() == "gamma is no longer in the manager's config"
                && !s.has("State:")
                && s.keys().starts_with("q quit")
                && s.row("gamma").is_none()
                && s.row("alpha").is_some_and(|r| r.selected)
                && s.header().contains("  1 process, 1 up, 0 need a look")
                && s.has(" log of alpha (following) ")
        })
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_the_view_follows_a_manager_restarted_with_a_new_token() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let entries = svc(&t, "alpha", &["run"]) + &svc(&t, "beta", &["run"]);
        let yaml = t
            .header()
            .replace("  port: 0\n", &format!("  port: {port}\n"))
            + &entries;
        let state = t.path("state");
        let mut m = Running::launch_yaml(t, &yaml, &[]);
        let up = |ps: &[procman_api::Process]| ps.iter().all(|p| p.state == "running");
        let ps = m.wait_until("both running", up).await;
        let token_file = state.join(procman_api::TOKEN_NAME);
        let token = || std::fs::read_to_string(&token_file).expect("the token file");
        let first = token();

        let url = format!("http://127.0.0.1:{port}");
        let script = format!(
            "RUST_BACKTRACE=0 {} tui --url {url} --state-dir {}; echo EXIT=$?; sleep 600",
            quote(procman()),
            quote(&state.display().to_string())
        );
        tmux.open_sh("n", &script).await;
        let shows = |s: &Screen, ps: &[procman_api::Process]| {
            ps.iter()
                .all(|p| s.row(&p.id).is_some_and(|r| r.pid == p.pid))
        };
        tmux.wait("n", "the table over TCP", |s| {
            s.header()
                .starts_with(&format!("procman  {url}  2 processes"))
                && shows(s, &ps)
        })
        .await;

        m.crash().await;
        tmux.wait("n", "DISCONNECTED", |s| {
            s.header().contains("  DISCONNECTED: ") && s.header().ends_with(" (reconnecting)")
        })
        .await;
        m.rerun().await;
        let ps = m.wait_until("both running again", up).await;
        // Each run generates its token (not asserted: the view must
        // follow either way).
        let second = token();
        eprintln!("a new token on restart: {}", first != second);
        let s = tmux
            .wait("n", "`connected again`, the new manager's rows", |s| {
                !s.header().contains("DISCONNECTED")
                    && s.header().contains("2 processes, 2 up, 0 need a look")
                    && s.message() == "connected again"
                    && shows(s, &ps)
            })
            .await;
        assert!(!s.has("EXIT="), "{}", s.0);

        // The new token does for actions too: a restart gives a new pid.
        let old = ps[0].pid.expect("pid");
        tmux.keys("n", &["r"]).await;
        let s = tmux
            .wait("n", "alpha restarted over TCP", |s| {
                s.message().starts_with("restart alpha: running, pid ")
                    && s.row("alpha")
                        .is_some_and(|r| r.pid.is_some_and(|p| p != old))
            })
            .await;
        let new = s.row("alpha").and_then(|r| r.pid).expect("pid");
        assert_eq!(pid_of(&m, "alpha").await, new);
        tmux.wait("n", "the new run's log line", |s| {
            s.has(&format!("stdout ready pid={new}"))
        })
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_manager_is_said_and_so_is_its_return() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let Some(mut tmux) = Tmux::new(&t) else {
            return;
        };
        let entries = svc(&t, "alpha", &["run"]);
        let m = Running::start(t, &entries).await;
        tmux.open("s", &m, &[]).await;
        tmux.wait("s", "the table", |s| {
            s.row("alpha").is_some_and(|r| r.state == "running")
        })
        .await;

        signal_process(m.pid, Signal::parse("STOP").expect("STOP")).expect("SIGSTOP the manager");
        let frozen = Instant::now();
        tmux.wait("s", "NOT ANSWERING", |s| {
            s.header().contains("  NOT ANSWERING: ")
        })
        .await;
        assert!(frozen.elapsed() < Duration::from_secs(30));

        // A view started now fails before it takes the screen.
        let started = Instant::now();
        let out = spawn_cli(&["tui", "-c", &m.file], &[], None)
            .output(SETTLE)
            .await;
        let took = started.elapsed();
        assert_eq!(out.code(), 1, "{out:#?}");
        assert!(took < Duration::from_secs(15), "{took:?}");
        assert!(out.stderr.contains("cannot list the processes"), "{out:#?}");
        assert_eq!(out.stdout, "");

        signal_process(m.pid, Signal::CONT).expect("SIGCONT the manager");
        tmux.wait(
            "s",
            "the header clear, and `the manager answers again`",
            |s| {
                !s.header().contains("NOT ANSWERING")
                    && s.header().contains("1 process, 1 up, 0 need a look")
                    && s.message() == "the manager answers again"
            },
        )
        .await;
        tmux.kill().await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
