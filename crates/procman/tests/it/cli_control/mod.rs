//! The client commands (`status`, `start`, `stop`, `restart`, `signal`,
//! `events`, `logs`, `reload`, `shutdown`) run as a user runs them, against
//! a real `procman run` on a config of the test child, through the socket
//! of the config's state directory. Facts are checked against what the
//! children printed (their pids) and what `/proc` says, not only against
//! what the manager answers.

mod actions;
mod lifecycle;
mod status;
mod streams;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_api::client::{Client, ClientError};
use procman_api::{Process, ProcessDetail};
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::{signal_process, Stdio};
use tokio::sync::oneshot;

use crate::support::*;

/// How long one CLI command may take (a stop waits for its process).
const CLI_DEADLINE: Duration = Duration::from_secs(60);

/// How long the manager and its processes may take to get somewhere.
pub const SETTLE: Duration = Duration::from_secs(30);

/// What a finished CLI command left.
#[derive(Debug)]
pub struct Output {
    pub end: ProcessEnd,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code (a death by signal fails the test).
    pub fn code(&self) -> i32 {
        match self.end {
            ProcessEnd::Exited(c) => c,
            other => panic!("the CLI died: {other:?}; stderr:\n{}", self.stderr),
        }
    }

    /// Asserts exit 0, with the outputs in the message if not.
    pub fn ok(&self) -> &Output {
        assert_eq!(self.code(), 0, "failed: {self:#?}");
        self
    }

    /// Stdout as one JSON value.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the JSON expected ({e}): {self:#?}"))
    }
}

/// A started `procman` whose stdout and stderr go to files.
pub struct Started {
    pub pid: u32,
    exit: oneshot::Receiver<ProcessEnd>,
    pub out: tempfile::NamedTempFile,
    pub err: tempfile::NamedTempFile,
    args: Vec<String>,
}

impl Started {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.out.path()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.err.path()).unwrap_or_default()
    }

    /// Waits (bounded) for it to end; kills it at the deadline.
    pub async fn output(self, within: Duration) -> Output {
        let end = match tokio::time::timeout(within, self.exit).await {
            Ok(end) => end.expect("exit status"),
            Err(_) => {
                let _ = signal_process(self.pid, Signal::KILL);
                panic!(
                    "procman {:?} still running after {within:?}; stdout:\n{}\nstderr:\n{}",
                    self.args,
                    std::fs::read_to_string(self.out.path()).unwrap_or_default(),
                    std::fs::read_to_string(self.err.path()).unwrap_or_default()
                );
            }
        };
        Output {
            end,
            stdout: std::fs::read_to_string(self.out.path()).unwrap_or_default(),
            stderr: std::fs::read_to_string(self.err.path()).unwrap_or_default(),
        }
    }
}

/// Starts `procman ARGS` (with `env` added) without waiting; stdout goes
/// to `stdout` if given, else to a file.
pub fn spawn_cli(args: &[&str], env: &[(&str, &str)], stdout: Option<Stdio>) -> Started {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let stdout = stdout.unwrap_or_else(|| Stdio::Fd(out.reopen().expect("reopen").into()));
    let (pid, exit) = start_with(
        Path::new(procman()),
        args,
        env,
        stdout,
        Stdio::Fd(err.reopen().expect("reopen").into()),
    );
    Started {
        pid,
        exit,
        out,
        err,
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// Runs `procman ARGS` and waits (bounded) for it to end.
pub async fn cli(args: &[&str]) -> Output {
    spawn_cli(args, &[], None).output(CLI_DEADLINE).await
}

/// One process of the test child with `args`; `--stamp` puts the test's
/// directory on its command line, so that [`KillOnDrop`] finds it (and its
/// forks) if the test fails half-way.
pub fn svc(t: &Scratch, id: &str, args: &[&str]) -> String {
    svc_with(t, id, args, "")
}

/// [`svc`] with `management` keys (YAML at the level of `control:`, such
/// as `restart_policy:` or `resource_limits:`).
pub fn svc_with(t: &Scratch, id: &str, args: &[&str], management: &str) -> String {
    let stamp = t.path(&format!("{id}.stamp")).display().to_string();
    let mut all = vec!["--stamp", stamp.as_str()];
    all.extend_from_slice(args);
    let extra: String = management.lines().map(|l| format!("      {l}\n")).collect();
    child_entry(id, &all, &extra)
}

/// A `procman run` on a config of its own, its socket answering.
pub struct Running {
    pub t: Scratch,
    /// The config file.
    pub file: String,
    pub pid: u32,
    exit: Option<oneshot::Receiver<ProcessEnd>>,
    log: tempfile::NamedTempFile,
    _kill: KillOnDrop,
}

impl Running {
    /// Writes the header and `entries` (from [`svc`]) as the config, runs
    /// the manager on it, and waits until every enabled process runs.
    pub async fn start(t: Scratch, entries: &str) -> Running {
        let running = Running::launch(t, entries);
        running
            .wait_until("every enabled process running", |ps| {
                ps.iter().all(|p| !p.enabled || p.state == "running")
            })
            .await;
        running
    }

    /// [`Running::start`] without waiting for anything.
    pub fn launch(t: Scratch, entries: &str) -> Running {
        Running::launch_with(t, entries, &[])
    }

    /// [`Running::launch`] with more arguments to `procman run`.
    pub fn launch_with(t: Scratch, entries: &str, more: &[&str]) -> Running {
        let header = t.header();
        Running::launch_yaml(t, &format!("{header}{entries}"), more)
    }

    /// [`Running::launch_with`] on a whole config (`yaml`, the header too).
    pub fn launch_yaml(t: Scratch, yaml: &str, more: &[&str]) -> Running {
        t.config(yaml);
        let file = t.path("procman.yaml").display().to_string();
        let kill = KillOnDrop(t.dir.path().display().to_string());
        let mut args = vec!["run", "-c", &file];
        args.extend_from_slice(more);
        let (pid, exit, log) = start(Path::new(procman()), &args, &[]);
        Running {
            t,
            file,
            pid,
            exit: Some(exit),
            log,
            _kill: kill,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.t.path("state").join(procman_api::SOCKET_NAME)
    }

    /// A client of its socket (to check what the CLI did).
    pub fn client(&self) -> Client {
        Client::unix(self.socket())
    }

    /// The manager's own output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until the manager's own output has a line with `needle`.
    pub async fn wait_manager_log(&self, needle: &str) -> String {
        wait_file(self.log.path(), needle, SETTLE).await
    }

    /// The process log of `id` (plain, in the state directory).
    pub fn process_log(&self, id: &str) -> String {
        std::fs::read_to_string(self.t.path("state").join("logs").join(format!("{id}.log")))
            .unwrap_or_default()
    }

    /// Waits until the manager answers with processes that satisfy `pred`.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Process]) -> bool) -> Vec<Process> {
        self.wait_for(what, async |c| c.processes().await, |ps| pred(ps))
            .await
    }

    /// Waits until the manager's detail of `id` satisfies `pred`.
    pub async fn wait_detail(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&ProcessDetail) -> bool,
    ) -> ProcessDetail {
        self.wait_for(what, async |c| c.process(id).await, pred)
            .await
    }

    /// Asks the manager with `ask` until its answer satisfies `pred`.
    async fn wait_for<T: Clone + std::fmt::Debug>(
        &self,
        what: &str,
        ask: impl AsyncFn(&Client) -> Result<T, ClientError>,
        pred: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + SETTLE;
        let client = self.client();
        loop {
            let last = ask(&client).await;
            if let Ok(answer) = &last {
                if pred(answer) {
                    return answer.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE:?} waiting for {what}; last answer: {last:#?}\nmanager log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One process as the manager reports it now.
    pub async fn process(&self, id: &str) -> Process {
        let ps = self.client().processes().await.expect("processes");
        ps.into_iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no process {id}"))
    }

    /// `procman ARGS -c <its config>`.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-c", &self.file]);
        cli(&all).await
    }

    /// Waits until the process log of `id` has a line with `needle`.
    pub async fn wait_log(&self, id: &str, needle: &str) -> String {
        let path = self.t.path("state").join("logs").join(format!("{id}.log"));
        wait_file(&path, needle, SETTLE).await
    }

    /// Waits for the manager to exit by itself; its exit.
    pub async fn exited(&mut self, within: Duration) -> ProcessEnd {
        let exit = self.exit.take().expect("awaited once");
        match tokio::time::timeout(within, exit).await {
            Ok(end) => end.expect("exit status"),
            Err(_) => panic!(
                "the manager still runs after {within:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    /// SIGKILLs the manager, as a crash would, and waits for its end: its
    /// processes go on running, their state files stay.
    pub async fn crash(&mut self) {
        let _ = signal_process(self.pid, Signal::KILL);
        let end = self.exited(SETTLE).await;
        assert!(
            matches!(end, ProcessEnd::Signaled { signal, .. } if signal == Signal::KILL),
            "the manager ended otherwise: {end:?}; its log:\n{}",
            self.log()
        );
    }

    /// Runs a new manager on the same config and state directory (after a
    /// crash or a detach) and waits until it answers; what its processes
    /// do is the caller's to wait for.
    pub async fn rerun(&mut self) {
        assert!(self.exit.is_none(), "the earlier manager still runs");
        let (pid, exit, log) = start(Path::new(procman()), &["run", "-c", &self.file], &[]);
        (self.pid, self.exit, self.log) = (pid, Some(exit), log);
        self.wait_for(
            "the new manager to answer",
            async |c| c.manager().await,
            |info| info.pid == pid,
        )
        .await;
    }

    /// Ends the manager (SIGTERM) and waits for it.
    pub async fn stop(mut self) {
        if self.exit.is_some() {
            let _ = signal_process(self.pid, Signal::TERM);
            let end = self.exited(SETTLE).await;
            assert_eq!(end, ProcessEnd::Exited(0), "manager log:\n{}", self.log());
        }
    }
}

/// The pid a test child printed in `ready pid=N` in `log` (the last one).
pub fn ready_pid(log: &str) -> Option<u32> {
    log.lines()
        .rev()
        .filter_map(|l| l.split("ready pid=").nth(1))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The pids a test child printed as `grandchild pid=N`.
pub fn grandchild_pids(log: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|l| l.split("grandchild pid=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The rows of a `procman status` table, as maps from column to cell.
/// Cells hold no spaces, except in LAST EXIT, the last column, which
/// takes the rest of the line.
pub fn table_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let columns: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    lines
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut row = HashMap::new();
            for (i, c) in columns.iter().enumerate() {
                let cell = match i + 1 == columns.len() {
                    true => words.by_ref().collect::<Vec<_>>().join(" "),
                    false => words.next().unwrap_or("").to_string(),
                };
                row.insert(c.to_string(), cell);
            }
            row
        })
        .collect()
}
