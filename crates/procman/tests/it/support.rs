//! Shared helpers: the test child, configs in a private temp dir, waiting
//! on state changes with deadlines, and facts about processes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use procman_core::config::{self, Config};
use procman_core::manager::Manager;
use procman_core::outcome::ProcessEnd;
use procman_core::platform::{self, SpawnSpec, Stdio, TreeRoot};
use procman_core::supervisor::{Handle, ProcessStatus};

/// Every real-process test runs under this watchdog.
pub const WATCHDOG: Duration = Duration::from_secs(90);

/// The test child binary, built once if `cargo test` did not build it.
pub fn child() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        // target/<profile>/deps/it-xxxx → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let path = dir.join("procman-testchild");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut args = vec!["build", "--quiet", "-p", "procman-testchild"];
        if dir.ends_with("release") {
            args.push("--release");
        }
        // Called from async tests: wait on a plain thread.
        let out = std::thread::spawn(move || run_blocking(Path::new(&cargo), &args, None))
            .join()
            .expect("build thread");
        assert_eq!(
            out.0,
            ProcessEnd::Exited(0),
            "building procman-testchild failed"
        );
        assert!(path.exists(), "{} missing after build", path.display());
        path
    })
}

/// The `procman` binary under test.
pub fn procman() -> &'static str {
    env!("CARGO_BIN_EXE_procman")
}

/// A private directory for one test: config, state dir, stamp files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("procman-it-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The header every test config starts with: its own state dir, no API.
    pub fn header(&self) -> String {
        format!(
            "process_manager:\n  port: 0\n  force_shutdown_timeout: \"30s\"\n  state_dir: \"{}\"\nmanaged_processes:\n",
            self.path("state").display()
        )
    }

    /// Writes `yaml` as `procman.yaml` and loads it.
    pub fn config(&self, yaml: &str) -> Config {
        let file = self.path("procman.yaml");
        std::fs::write(&file, yaml).expect("write config");
        match config::load_file(&file) {
            Ok(c) => c,
            Err(e) => panic!("test config invalid:\n{e}\n---\n{yaml}"),
        }
    }

    /// Loads `yaml` and creates a manager on it (nothing started).
    pub fn manager(&self, yaml: &str) -> Manager {
        Manager::new(self.config(yaml)).expect("manager")
    }
}

/// One `managed_processes` entry running the test child with `args`.
pub fn child_entry(id: &str, args: &[&str], management_extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "  - id: \"{id}\"\n    management:\n      control:\n        executable: \"{}\"\n        arguments: [{}]\n{management_extra}",
        child().display(),
        args.join(", ")
    )
}

/// Like [`child_entry`], but through `sh -c 'exec child ARGS > out'` so the
/// test can read what the child printed.
pub fn child_entry_to_file(id: &str, args: &str, out: &Path, management_extra: &str) -> String {
    let script = format!("exec {} {args} > {}", child().display(), out.display());
    format!(
        "  - id: \"{id}\"\n    management:\n      control:\n        executable: \"sh\"\n        arguments: [\"-c\", {script:?}]\n{management_extra}"
    )
}

/// Waits until `pred` holds for the process's status, or panics at the
/// deadline with the last status seen.
pub async fn wait_status(
    h: &Handle,
    within: Duration,
    what: &str,
    pred: impl Fn(&ProcessStatus) -> bool,
) -> ProcessStatus {
    let mut rx = h.subscribe();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        {
            let s = rx.borrow_and_update();
            if pred(&s) {
                return s.clone();
            }
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!(
                "timed out after {within:?} waiting for {what}; last status: {:#?}",
                h.status()
            );
        }
    }
}

/// Waits until `file` holds a line containing `needle`; returns the text.
pub async fn wait_file(file: &Path, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?} in {}: {text:?}",
            file.display()
        );
        // A file written by another process has no event we can await
        // portably; a short sleep inside a deadline is the honest wait here.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `S`/`E` stamps the test child appended: (kind, monotonic ns, pid).
pub fn stamps(file: &Path) -> Vec<(char, u64, u32)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let kind = f.next()?.chars().next()?;
            Some((kind, f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Waits until the stamp file has at least `n` starts.
pub async fn wait_starts(file: &Path, n: usize, within: Duration) -> Vec<(char, u64, u32)> {
    let deadline = Instant::now() + within;
    loop {
        let s = stamps(file);
        if s.iter().filter(|(k, ..)| *k == 'S').count() >= n {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} starts in {}: {s:?}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
    }
}

/// Zombie children of this test process (there must never be any left).
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let mut f = stat[i + 1..].split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: u32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == me && state == "Z" {
            out.push(pid);
        }
    }
    out
}

/// Pids named on `grandchild pid=N` / `ready pid=N` lines.
pub fn pids_in(text: &str, prefix: &str) -> Vec<u32> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pid="))
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// Waits (bounded) until none of `pids` is alive.
pub async fn wait_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "still alive after {within:?}: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a program to completion and returns how it ended and its stdout.
///
/// Everything this test binary starts goes through `platform::spawn`: the
/// engine's reaper waits for *every* child of the process, so a child
/// started with `std::process::Command` could have its status taken.
pub async fn run(program: &Path, args: &[&str], env: &[(&str, &str)]) -> (ProcessEnd, String) {
    let (_, exit, out) = start(program, args, env);
    let end = exit.await.expect("exit status");
    (end, std::fs::read_to_string(out.path()).unwrap_or_default())
}

fn run_blocking(
    program: &Path,
    args: &[&str],
    env: Option<&[(&str, &str)]>,
) -> (ProcessEnd, String) {
    let (_, exit, out) = start(program, args, env.unwrap_or(&[]));
    let end = exit.blocking_recv().expect("exit status");
    (end, std::fs::read_to_string(out.path()).unwrap_or_default())
}

/// Starts a program (stdout and stderr into a temp file) without waiting:
/// its pid, its exit, and the file.
pub fn start(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    u32,
    tokio::sync::oneshot::Receiver<ProcessEnd>,
    tempfile::NamedTempFile,
) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    let err = file.try_clone().expect("clone");
    let (pid, exit) = start_with(
        program,
        args,
        env,
        Stdio::Fd(file.into()),
        Stdio::Fd(err.into()),
    );
    (pid, exit, out)
}

/// Starts a program with the given stdout and stderr, in the current
/// directory, without waiting: its pid and its exit. A bare name is looked
/// up in PATH, as a shell would.
pub fn start_with(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdio,
    stderr: Stdio,
) -> (u32, tokio::sync::oneshot::Receiver<ProcessEnd>) {
    let program = platform::resolve_program(
        &program.to_string_lossy(),
        Path::new("/"),
        std::env::var_os("PATH").as_ref(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let spec = SpawnSpec {
        program,
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: std::env::current_dir().expect("cwd"),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stdout,
        stderr,
        uid: None,
        gid: None,
        groups: None,
        nofile: None,
        hold: Vec::new(),
        kill_group_on_exit: false,
    };
    let tree = TreeRoot::without_cgroups().tree("test");
    let spawned = platform::spawn_blocking(spec, &tree).expect("spawn");
    (spawned.child.pid(), spawned.exit)
}

/// Extra keys under `control:` for the entry helpers, which end at
/// `arguments`: one `key: value` per line, indented to match. A line's own
/// leading spaces are kept, so nested values (an `environment` map) can be
/// written with two more spaces than their key.
pub fn control_keys(lines: &str) -> String {
    lines
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| format!("        {l}\n"))
        .collect()
}

/// Waits until `file` holds a pid that satisfies `pred` (a pidfile the
/// test child writes atomically) and returns it.
pub async fn wait_pidfile(file: &Path, within: Duration, pred: impl Fn(u32) -> bool) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>() {
            if pred(pid) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for a pid in {}: {text:?}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Live (non-zombie) processes other than this one whose command line
/// contains `needle` (a test's private temp dir): (pid, command line).
pub fn procs_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for pid in other_pids() {
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) && alive(pid) {
            out.push((pid, cmdline.trim_end().to_string()));
        }
    }
    out
}

/// Whether this test process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// SIGKILLs, when dropped, every process whose command line mentions
/// `needle` (a test's temp dir): a test that fails half-way through a run
/// of the `procman` binary leaves nothing behind to hold the test
/// harness's pipes open. At the end of a passing test there is nothing
/// left to kill.
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, _) in procs_mentioning(&self.0) {
            let _ = platform::signal_process(pid, procman_core::outcome::Signal::KILL);
        }
    }
}

/// Waits (bounded) until no zombie child seen now is still a zombie, and
/// returns the ones that stayed (empty: none leaked). Tests running in
/// parallel in this process have children exiting at any moment, each a
/// zombie until the reaper gets to it (it waits while another spawn holds
/// its lock), so one look (`zombie_children().is_empty()`) can catch a
/// transient zombie of another test; only one that stays is a leak.
pub async fn lasting_zombie_children(within: Duration) -> Vec<u32> {
    let seen = zombie_children();
    let deadline = Instant::now() + within;
    loop {
        let now = zombie_children();
        let stayed: Vec<u32> = seen.iter().copied().filter(|p| now.contains(p)).collect();
        if stayed.is_empty() || Instant::now() >= deadline {
            return stayed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every pid in `/proc` except this test process's.
pub fn other_pids() -> impl Iterator<Item = u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(move |&pid| pid != me)
}

/// `nobody`'s uid and gid (Debian's `nobody` / `nogroup`).
pub const NOBODY: (u32, u32) = (65534, 65534);

/// Whether CI asked for every test to run: then a test that cannot run
/// here fails rather than skips.
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run here, and CI is set: {why}");
    }
    eprintln!("skipped: {why}");
}

/// Whether every directory above `path` lets others in, and the file lets
/// others run it.
fn others_can_run(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    mode(path) & 0o005 == 0o005 && path.ancestors().skip(1).all(|d| mode(d) & 0o001 != 0)
}

/// `program` as a path `nobody` can run: itself, or a copy in `t`'s
/// directory (a checkout under `/root` is closed to others).
pub fn runnable_by_nobody(t: &Scratch, program: &Path) -> PathBuf {
    if others_can_run(program) {
        return program.to_path_buf();
    }
    let name = program.file_name().expect("a file name");
    let copy = t.path(&name.to_string_lossy());
    std::fs::copy(program, &copy).expect("copy the binary");
    copy
}

/// Hands `t`'s directory to `nobody` (and makes it reachable), so that a
/// process running as `nobody` can keep its state there.
pub fn give_to_nobody(t: &Scratch) {
    use std::os::unix::fs::PermissionsExt;
    let dir = t.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(dir, Some(NOBODY.0), Some(NOBODY.1)).expect("chown");
}

/// Runs `program` to its end: how it ended, its stdout, its stderr (each
/// to a file of its own, read whole).
pub async fn run_split(program: &Path, args: &[&str]) -> (ProcessEnd, String, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let (_, exit) = start_with(
        program,
        args,
        &[],
        Stdio::Fd(out.reopen().expect("reopen").into()),
        Stdio::Fd(err.reopen().expect("reopen").into()),
    );
    let end = exit.await.expect("exit status");
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap_or_default();
    (end, read(&out), read(&err))
}
