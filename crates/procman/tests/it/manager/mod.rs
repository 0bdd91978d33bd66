//! The `procman run` process in hostile surroundings: its stdout and
//! stderr closed or stuck, every signal, a user out of processes.
//!
//! Each test runs the real binary with the stdio it needs (a closed pipe,
//! a full pipe, a file) through `platform::spawn`, and judges it from the
//! outside: exit code, processes, cgroups, stamps and pid files written by
//! the test child, and the manager's log.

mod orphans;
mod output;
mod signals;
mod threads;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::{self, Stdio};
use tokio::sync::oneshot;

pub use crate::support::*;
/// Signal numbers by name.
pub use rustix::process::Signal as Sig;

/// A `procman` (or a wrapper that execs it) started by a test.
pub struct Running {
    pub pid: u32,
    exit: Option<oneshot::Receiver<ProcessEnd>>,
    ended_with: Option<ProcessEnd>,
    /// Where its stderr goes, when a file (for failure messages).
    pub log: Option<PathBuf>,
}

impl Running {
    /// Starts `program args` with the given stdout and stderr.
    pub fn start(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        out: Stdio,
        err: Stdio,
    ) -> Running {
        let (pid, exit) = start_with(program, args, env, out, err);
        Running {
            pid,
            exit: Some(exit),
            ended_with: None,
            log: None,
        }
    }

    /// `procman run -c <config>` with stdout to /dev/null and stderr into
    /// `log`.
    pub fn run_logged(config: &Path, log: &Path, env: &[(&str, &str)]) -> Running {
        let file = std::fs::File::create(log).expect("create log file");
        let config = config.display().to_string();
        let mut r = Running::start(
            Path::new(procman()),
            &["run", "-c", &config],
            env,
            Stdio::Null,
            Stdio::Fd(file.into()),
        );
        r.log = Some(log.to_path_buf());
        r
    }

    pub fn signal(&self, sig: i32) {
        platform::signal_process(self.pid, Signal(sig)).expect("signal the manager");
    }

    /// The manager's log so far (empty without a log file).
    pub fn log_text(&self) -> String {
        self.log
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// How it ended, if it has (without waiting).
    fn end(&mut self) -> Option<ProcessEnd> {
        if self.ended_with.is_none() {
            if let Some(end) = self.exit.as_mut().and_then(|rx| rx.try_recv().ok()) {
                self.ended_with = Some(end);
            }
        }
        self.ended_with
    }

    /// Whether it has not ended yet.
    pub fn running(&mut self) -> bool {
        self.end().is_none()
    }

    /// Waits for it to end; SIGKILLs it and fails at the deadline.
    pub async fn ended(&mut self, within: Duration) -> ProcessEnd {
        if let Some(end) = self.end() {
            return end;
        }
        let exit = self.exit.as_mut().expect("an exit to wait for");
        match tokio::time::timeout(within, exit).await {
            Ok(end) => {
                let end = end.expect("exit status");
                self.ended_with = Some(end);
                end
            }
            Err(_) => {
                let _ = platform::signal_process(self.pid, Signal::KILL);
                panic!(
                    "pid {} still running after {within:?}; its log:\n{}",
                    self.pid,
                    self.log_text()
                );
            }
        }
    }
}

/// The write end of a pipe whose read end is already closed: every write
/// fails with EPIPE.
pub fn closed_pipe() -> OwnedFd {
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    drop(read);
    write
}

/// A pipe that is full and that nobody reads: every blocking write to
/// `.1` waits forever. Keep `.0` (the read end) alive while it must stay
/// stuck.
pub fn stuck_pipe() -> (OwnedFd, OwnedFd) {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    // Fill it without blocking, then make it blocking again: the flag is
    // shared with the process that inherits this end.
    let flags = fcntl_getfl(&write).expect("getfl");
    fcntl_setfl(&write, flags | OFlags::NONBLOCK).expect("setfl");
    let chunk = [b'x'; 4096];
    while rustix::io::write(&write, &chunk).is_ok() {}
    fcntl_setfl(&write, flags).expect("setfl");
    (read, write)
}

/// Writes `yaml` as the scratch dir's `procman.yaml`; returns its path.
/// The `svc` entry every test here runs beside what it tests: a test
/// child that writes its pid to the returned pidfile and runs.
pub fn service(t: &Scratch) -> (String, PathBuf) {
    let pidfile = t.path("svc.pid");
    let pidfile_s = pidfile.display().to_string();
    let entry = child_entry("svc", &["--pidfile", &pidfile_s, "run"], "");
    (entry, pidfile)
}

pub fn config_file(t: &Scratch, yaml: &str) -> PathBuf {
    let file = t.path("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    file
}

/// The cgroup v2 directory that holds every tree of the manager whose
/// child is `pid`: the parent of the child's own cgroup. `None` when
/// the child is not in a cgroup of ours (no cgroup v2, no permission).
pub fn manager_cgroup(pid: u32) -> Option<PathBuf> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let parent = Path::new(rel).parent()?;
    if !parent.file_name()?.to_str()?.starts_with("procman-") {
        return None;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    Some(mount.join(parent.strip_prefix("/").unwrap_or(parent)))
}

/// Waits until the stamp file shows `n` starts by `n` different pids.
pub async fn wait_distinct_starts(file: &Path, n: usize, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let mut pids: Vec<u32> = stamps(file)
            .into_iter()
            .filter(|(k, ..)| *k == 'S')
            .map(|(_, _, pid)| pid)
            .collect();
        pids.dedup();
        if pids.len() >= n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {n} runs with distinct pids in {}: {pids:?}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A YAML entry for a test child that exits with 3 after `after` and is
/// restarted at once, forever, stamping each start into `stamp`.
pub fn crashing_entry(id: &str, stamp: &Path, after: &str) -> String {
    let stamp = stamp.display().to_string();
    child_entry(
        id,
        &["--stamp", &stamp, "exit", "3", "--after", after],
        "      restart_policy:\n        restart_delay: 50ms\n        max_attempts: 0\n",
    )
}

/// Waits until `pid` is stopped (state `T`).
pub async fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if state == Some("T") {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not stop: {stat}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
