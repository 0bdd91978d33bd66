//! `procman tui` as a user meets it: the real view in a tmux session of
//! its own (its own server socket, 120×40), against a real `procman run`
//! of the test child. Keys go in with `send-keys`; what the view shows is
//! read back with `capture-pane` and polled for, within a deadline, and
//! checked against the manager's API and `/proc`.
//!
//! The view runs under `sh -c 'procman tui …; echo EXIT=$?; stty -a;
//! echo END; sleep 600'`, so once it ends the pane shows its exit code
//! and the terminal's mode as the next program finds it.
//!
//! Without tmux every test here but [`ending::no_manager_is_3_and_a_pipe_is_2`]
//! skips (and fails when `CI` is set).

mod ending;
mod stuck;
mod trial;
mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use procman_core::outcome::ProcessEnd;
use procman_core::platform::signal_process;

use crate::cli_control::{Running, SETTLE};
use crate::support::*;

/// A tmux server of one test's own, killed at the end (also when the
/// test fails: the drop sends it SIGTERM).
///
/// The server runs in the foreground (`tmux -D`), a child of this test
/// process. Daemonized, it would be an orphan adopted by this process (a
/// subreaper, as the manager's engine makes it), and a manager embedded
/// in another test kills the orphans it adopted when it shuts down.
pub struct Tmux {
    bin: PathBuf,
    /// The `-L` socket name, from the test's private directory.
    socket: String,
    /// The server's pid and socket file, once the first session started it.
    server: Option<(u32, PathBuf)>,
    /// The server's exit and output, kept while it runs.
    _held: Option<(
        tokio::sync::oneshot::Receiver<ProcessEnd>,
        tempfile::NamedTempFile,
    )>,
}

impl Tmux {
    /// A server for `t`'s test (started by the first session); `None`,
    /// after saying why, when tmux is not installed.
    pub fn new(t: &Scratch) -> Option<Tmux> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("tmux"))
                .find(|p| p.is_file())
        });
        let Some(bin) = found else {
            skip_or_fail("tmux is not installed (not on PATH): the `procman tui` tests run the view in a tmux session");
            return None;
        };
        let name = t.dir.path().file_name().expect("a name");
        Some(Tmux {
            bin,
            socket: format!("tui-{}", name.to_string_lossy()),
            server: None,
            _held: None,
        })
    }

    /// `tmux ARGS` on this test's server; its output (it must succeed).
    pub async fn run(&self, args: &[&str]) -> String {
        // No user config; UTF-8 whatever the locale (the key line has ↑↓).
        let mut all = vec!["-L", &self.socket, "-f", "/dev/null", "-u"];
        all.extend_from_slice(args);
        let (end, out) = run(&self.bin, &all, &[]).await;
        if end != ProcessEnd::Exited(0) {
            // Whether the server is gone, and how (a stray signal?).
            let server = match &self.server {
                Some((pid, _)) => format!(
                    "server pid {pid}: {}",
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .unwrap_or_else(|e| format!("no /proc entry ({e})"))
                ),
                None => "no server yet".to_string(),
            };
            panic!(
                "tmux {args:?} failed ({end:?}): {out}
{server}"
            );
        }
        out
    }

    /// Opens session `name` running `procman tui -c <m's config>` (with
    /// `env` set), followed by the exit code and `stty -a`.
    pub async fn open(&mut self, name: &str, m: &Running, env: &[(&str, &str)]) {
        let mut script = String::from("RUST_BACKTRACE=0");
        for (k, v) in env {
            script += &format!(" {k}={}", quote(v));
        }
        script += &format!(
            " {} tui -c {}; echo EXIT=$?; stty -a; echo END; sleep 600",
            quote(procman()),
            quote(&m.file)
        );
        self.open_sh(name, &script).await;
    }

    /// Opens session `name` running `sh -c SCRIPT`.
    pub async fn open_sh(&mut self, name: &str, script: &str) {
        self.start_server().await;
        let size = ["-x", "120", "-y", "40"];
        let mut args = vec!["new-session", "-d", "-s", name];
        args.extend_from_slice(&size);
        args.extend_from_slice(&["sh", "-c", script]);
        self.run(&args).await;
    }

    /// Starts the server in the foreground, once, and waits for its socket.
    async fn start_server(&mut self) {
        if self.server.is_some() {
            return;
        }
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        let uid = rustix::process::getuid().as_raw();
        let path = PathBuf::from(dir)
            .join(format!("tmux-{uid}"))
            .join(&self.socket);
        let args = ["-L", &self.socket, "-f", "/dev/null", "-u", "-D"];
        let (pid, exit, log) = start(&self.bin, &args, &[]);
        self.server = Some((pid, path.clone()));
        self._held = Some((exit, log));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "the tmux server made no socket at {}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A format (`#{alternate_on}`) of session `name`'s pane.
    pub async fn show(&self, name: &str, format: &str) -> String {
        let out = self
            .run(&["display-message", "-p", "-t", name, format])
            .await;
        out.trim().to_string()
    }

    /// Sends keys by tmux's names (`j`, `Enter`, `BSpace`, `C-c`).
    pub async fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.run(&args).await;
    }

    /// Types `text` as it is.
    pub async fn type_text(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]).await;
    }

    /// Sends Escape alone (tmux sends Escape and a key after it at once,
    /// which reads as Alt+key): the caller waits for its effect next.
    pub async fn escape(&self, name: &str) {
        self.keys(name, &["Escape"]).await;
    }

    pub async fn screen(&self, name: &str) -> Screen {
        Screen(self.run(&["capture-pane", "-p", "-t", name]).await)
    }

    /// Polls the screen until `pred` holds; panics with the last screen
    /// at the deadline.
    pub async fn wait(&self, name: &str, what: &str, pred: impl Fn(&Screen) -> bool) -> Screen {
        let deadline = Instant::now() + SETTLE;
        loop {
            let s = self.screen(name).await;
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE:?} waiting for {what}; the screen:\n{}",
                s.0
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pid of the `procman tui` in session `name` (the shell's child).
    pub async fn tui_pid(&self, name: &str) -> u32 {
        let shell: u32 = self.show(name, "#{pane_pid}").await.parse().expect("pid");
        other_pids()
            .find(|&pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().nth(1));
                ppid == Some(shell.to_string().as_str())
            })
            .unwrap_or_else(|| panic!("no child of the pane's shell {shell}"))
    }

    /// Kills the server and everything in its panes.
    pub async fn kill(mut self) {
        if let Some((_, socket)) = self.server.take() {
            self.run(&["kill-server"]).await;
            let _ = std::fs::remove_file(socket);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // A server exits on SIGTERM, hanging up on its panes; its socket
        // file stays behind unless removed.
        if let Some((pid, socket)) = self.server.take() {
            let _ = signal_process(pid, procman_core::outcome::Signal::TERM);
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// `s` in single quotes, for `sh -c`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a pane showed: one line per row, blank rows included.
pub struct Screen(pub String);

/// A row of the process table.
#[derive(Debug)]
pub struct Row {
    pub selected: bool,
    pub state: String,
    pub pid: Option<u32>,
    pub restarts: String,
}

impl Screen {
    pub fn lines(&self) -> Vec<&str> {
        self.0.lines().collect()
    }

    pub fn has(&self, text: &str) -> bool {
        self.0.contains(text)
    }

    /// The top line: `procman  <socket>  N processes, …`.
    pub fn header(&self) -> &str {
        self.0.lines().next().unwrap_or("")
    }

    /// The message line (above the keys).
    pub fn message(&self) -> &str {
        let lines = self.lines();
        lines.len().checked_sub(2).map_or("", |i| lines[i])
    }

    /// The last line.
    pub fn keys(&self) -> &str {
        self.0.lines().last().unwrap_or("")
    }

    /// The table's row of `id` (above the log pane), if shown.
    pub fn row(&self, id: &str) -> Option<Row> {
        self.0
            .lines()
            .take_while(|l| !l.contains(" log of "))
            .find_map(|l| {
                let mut w = l.split_whitespace().peekable();
                let selected = w.next_if_eq(&">").is_some();
                if w.next()? != id {
                    return None;
                }
                let state = w.next()?.to_string();
                let pid = w.next()?.parse().ok();
                let restarts = w.nth(1)?.to_string();
                Some(Row {
                    selected,
                    state,
                    pid,
                    restarts,
                })
            })
    }

    /// Once the view ended: its exit code and the `stty -a` after it.
    pub fn ended(&self) -> Option<(i32, String)> {
        // Not by lines: a terminal left raw prints them as a staircase.
        let (_, rest) = self.0.split_once("EXIT=")?;
        let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (stty, _) = rest[code.len()..].split_once("END")?;
        Some((code.parse().ok()?, stty.to_string()))
    }
}

/// Whether `stty -a` shows a cooked terminal: canonical input, echo.
pub fn cooked(stty: &str) -> bool {
    let words: Vec<&str> = stty
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    ["icanon", "echo", "isig"].iter().all(|w| words.contains(w))
        && !["-icanon", "-echo", "-isig"]
            .iter()
            .any(|w| words.contains(w))
}

/// The test child's `run` as process `id`, restarted at once whenever it
/// ends (a KILL brings a new pid).
pub fn always(t: &Scratch, id: &str) -> String {
    crate::cli_control::svc_with(
        t,
        id,
        &["run"],
        "restart_policy:\n  strategy: always\n  restart_delay: 0s\n  backoff_multiplier: 1.0\n  max_attempts: 0\n",
    )
}

/// The manager's pid of `id` now (it must have one).
pub async fn pid_of(m: &Running, id: &str) -> u32 {
    m.process(id)
        .await
        .pid
        .unwrap_or_else(|| panic!("{id} has no pid"))
}
