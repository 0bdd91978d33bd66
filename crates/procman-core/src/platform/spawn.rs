//! Spawning a child: new session, stdin from /dev/null, placed in its tree
//! before `exec`, registered with the reaper before anyone can reap it,
//! known by a pidfd from the start.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::child::{self, Child};
use super::clone::{self, cstring, null_terminated};
use super::inheritance;
use super::reaper::{self, Reaping};
use super::tree::Tree;
use crate::outcome::ProcessEnd;

/// Where a child's stdout or stderr goes.
#[derive(Debug)]
pub enum Stdio {
    /// The manager's own stream.
    Inherit,
    /// `/dev/null`: output nobody asked for never fills an unread pipe.
    Null,
    /// A file descriptor the caller prepared (a pipe's write end, a file).
    Fd(OwnedFd),
}

/// Everything needed to start one run of a process.
#[derive(Debug)]
pub struct SpawnSpec {
    /// Already resolved, see [`resolve_program`].
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Added to (and overriding) the manager's environment.
    pub env: Vec<(String, String)>,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Supplementary groups to set before switching user (`None`: keep the
    /// manager's, which only makes sense without `uid`).
    pub groups: Option<Vec<u32>>,
    /// `RLIMIT_NOFILE` (soft, hard) to set in the child.
    pub nofile: Option<(u64, u64)>,
    /// Descriptors the program keeps open at fixed numbers, without
    /// close-on-exec (at most two): the read ends of its own output pipes,
    /// so that they outlive the manager (see `adopt.rs`).
    pub hold: Vec<(OwnedFd, RawFd)>,
    /// SIGKILL the child's process group when the child exits (before it is
    /// reaped, so the group is still its own): for short commands such as
    /// health checks, whose leftovers must not outlive them.
    pub kill_group_on_exit: bool,
}

/// A running child.
#[derive(Debug)]
pub struct Spawned {
    pub child: Child,
    /// Fires once, with how the child ended, when it has been reaped.
    pub exit: oneshot::Receiver<ProcessEnd>,
}

/// The step of starting a process that failed, as the child reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Step {
    Session = 1,
    Stdio,
    Cgroup,
    Rlimit,
    Groups,
    Group,
    User,
    Chdir,
    Exec,
    Hold,
}

impl Step {
    fn from_raw(n: i32) -> Option<Step> {
        use Step::*;
        [
            Session, Stdio, Cgroup, Rlimit, Groups, Group, User, Chdir, Exec, Hold,
        ]
        .into_iter()
        .find(|s| *s as i32 == n)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Session => "new session",
            Step::Stdio => "redirecting stdin/stdout/stderr",
            Step::Cgroup => "joining the cgroup",
            Step::Rlimit => "setting RLIMIT_NOFILE",
            Step::Groups => "setting the supplementary groups (setgroups)",
            Step::Group => "setting the group (setresgid)",
            Step::User => "setting the user (setresuid)",
            Step::Chdir => "changing to the working directory",
            Step::Exec => "exec",
            Step::Hold => "keeping the output pipes open (descriptors 62 and 63)",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("executable `{name}` not found in PATH ({path})")]
    NotInPath { name: String, path: String },
    #[error("executable {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} is not an executable file", .0.display())]
    NotExecutable(PathBuf),
    #[error("executable {} is a directory", .0.display())]
    IsADirectory(PathBuf),
    #[error("working directory {}: {}", .path.display(), brief(.source))]
    WorkingDirectory { path: PathBuf, source: io::Error },
    #[error("working directory {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Before the process exists: a pipe, `/dev/null`, an argument.
    #[error("cannot prepare the spawn ({what}): {}", brief(.source))]
    Prepare {
        what: &'static str,
        source: io::Error,
    },
    /// The process could not be created (a limit, memory).
    #[error("cannot create a process (fork): {}", brief(.source))]
    Fork { source: io::Error },
    /// The child was created, and a step before its program ran failed.
    /// `context` says what the step was about, when the program is not
    /// enough (the directory, the interpreter of a script).
    #[error("{step} failed for {}{context}: {}", .program.display(), brief(.source))]
    Child {
        step: Step,
        program: PathBuf,
        context: String,
        source: io::Error,
    },
    #[error("cannot reap children: {0}")]
    Reaper(io::Error),
    /// The manager's shutdown (or its kill of every process) has begun:
    /// nothing starts any more (see `TreeRoot::close`).
    #[error("the manager is shutting down: no process starts any more")]
    Closed,
}

/// `Permission denied (os error 13)` → `permission denied (errno 13)`: one
/// errno, said once.
fn brief(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let text = io::Error::from_raw_os_error(n).to_string();
            let plain = text.split(" (os error").next().unwrap_or(&text);
            format!("{} (errno {n})", plain.to_lowercase())
        }
        None => e.to_string(),
    }
}

impl SpawnError {
    /// A failure that may well not happen next time (a process, descriptor
    /// or memory limit reached): the restart policy decides, as for a run
    /// that failed. Anything else (no such program, a bad directory, a user
    /// that cannot be switched to) will fail the same way again.
    pub fn is_transient(&self) -> bool {
        let errno = match self {
            SpawnError::Prepare { source, .. } | SpawnError::Fork { source } => {
                source.raw_os_error()
            }
            SpawnError::Child { source, .. } => source.raw_os_error(),
            _ => None,
        };
        matches!(
            errno,
            Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::ENOSPC)
        )
    }
}

/// The `PATH` a child will see: the last `PATH` among its environment
/// overrides, else the manager's own.
pub fn child_path(env: &[(String, String)]) -> Option<OsString> {
    env.iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
}

/// The working directory exists and is a directory.
pub fn check_working_directory(cwd: &Path) -> Result<(), SpawnError> {
    match std::fs::metadata(cwd) {
        Err(source) => Err(SpawnError::WorkingDirectory {
            path: cwd.to_path_buf(),
            source,
        }),
        Ok(m) if !m.is_dir() => Err(SpawnError::NotADirectory(cwd.to_path_buf())),
        Ok(_) => Ok(()),
    }
}

/// Finds the program to execute: a name with a slash is a path (relative to
/// `cwd`); a bare name is looked up in `path_var` (the child's `PATH`).
pub fn resolve_program(
    executable: &str,
    cwd: &Path,
    path_var: Option<&OsString>,
) -> Result<PathBuf, SpawnError> {
    if executable.contains('/') {
        // `cwd/./bin/x` → `cwd/bin/x`: the path as a user would write it.
        let p: PathBuf = cwd.join(executable).components().collect();
        return match std::fs::metadata(&p) {
            Err(_) => Err(SpawnError::Missing(p)),
            Ok(m) if m.is_dir() => Err(SpawnError::IsADirectory(p)),
            Ok(m) if !is_executable(&m) => Err(SpawnError::NotExecutable(p)),
            Ok(_) => Ok(p),
        };
    }
    let search = path_var
        .cloned()
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&search) {
        let candidate = cwd.join(dir).join(executable);
        if is_executable_file(&candidate) {
            return Ok(candidate);
        }
    }
    Err(SpawnError::NotInPath {
        name: crate::config::cut(executable).into_owned(),
        path: crate::config::cut(&search.to_string_lossy()).into_owned(),
    })
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| is_executable(&m))
}

fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// A child created, whose exec has not been confirmed yet.
struct Started {
    spawned: Spawned,
    program: PathBuf,
    cwd: PathBuf,
    report: OwnedFd,
}

/// Starts the child described by `spec` as the leader of a new session,
/// inside `tree`, and returns once it has exec'd its program (or failed
/// to: then the error names the step). Its exit arrives on
/// [`Spawned::exit`].
///
/// Cancelling it (dropping the future before it is done) kills the child:
/// nobody would hold it otherwise.
pub async fn spawn(spec: SpawnSpec, tree: &Tree) -> Result<Spawned, SpawnError> {
    spawn_then(spec, tree, |_| {}).await
}

/// [`spawn`], calling `cloned` with the child's pid as soon as the child
/// exists: right after the clone, before anything else (for a record
/// that must name the child before the caller could be killed, see
/// `supervisor/persist.rs`). When the spawn then fails (its exec), the
/// child it named has exited.
pub async fn spawn_then(
    spec: SpawnSpec,
    tree: &Tree,
    cloned: impl FnOnce(u32),
) -> Result<Spawned, SpawnError> {
    let started = start(spec, tree)?;
    let mut guard = KillOnCancel(Some(started.spawned.child.id()));
    cloned(started.spawned.child.pid());
    let mut buf = [0u8; 8];
    let n = read_report_async(started.report, &mut buf).await;
    guard.0 = None;
    finish(started.spawned, started.program, &started.cwd, &buf[..n])
}

/// Kills (group and all) a child whose spawn was cancelled half-way.
struct KillOnCancel(Option<super::ChildId>);

impl Drop for KillOnCancel {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            id.kill();
        }
    }
}

/// [`spawn`] for callers outside the async runtime (tests, tools): waits
/// for the exec report on this thread.
pub fn spawn_blocking(spec: SpawnSpec, tree: &Tree) -> Result<Spawned, SpawnError> {
    let started = start(spec, tree)?;
    let mut buf = [0u8; 8];
    let n = read_report(&started.report, &mut buf, 0);
    finish(started.spawned, started.program, &started.cwd, &buf[..n])
}

fn finish(
    spawned: Spawned,
    program: PathBuf,
    cwd: &Path,
    report: &[u8],
) -> Result<Spawned, SpawnError> {
    let Some((step, errno)) = clone::parse_report(report) else {
        return Ok(spawned);
    };
    // It exits with 127 right after reporting; nobody waits for that.
    reaper::lock().forget(spawned.child.pid() as i32);
    let step = Step::from_raw(step).unwrap_or(Step::Exec);
    let context = match step {
        Step::Chdir => format!(" (directory {})", cwd.display()),
        // The program is there (it was found): a script whose interpreter
        // is not.
        Step::Exec if errno == libc::ENOENT => interpreter(&program)
            .map(|i| format!(" (its interpreter {i} was not found)"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    Err(SpawnError::Child {
        step,
        program,
        context,
        source: io::Error::from_raw_os_error(errno),
    })
}

/// The interpreter a script names on its `#!` line.
fn interpreter(program: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
thread_local! {
    /// A pause between the clone and the registration of its child, for
    /// tests of a child that exits in between (this thread's spawns only).
    pub(crate) static LAND_DELAY: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

fn start(spec: SpawnSpec, tree: &Tree) -> Result<Started, SpawnError> {
    if tree.is_closed() {
        return Err(SpawnError::Closed);
    }
    check_working_directory(&spec.cwd)?;
    let mode = reaper::mode().map_err(SpawnError::Reaper)?;
    let prepare =
        |what: &'static str| move |source: io::Error| SpawnError::Prepare { what, source };
    // Everything the child touches is built here, before the clone.
    let program = cstring(spec.program.as_os_str().as_bytes(), "the program path")
        .map_err(prepare("program"))?;
    let mut argv = vec![program.clone()];
    for a in &spec.args {
        argv.push(cstring(a.as_bytes(), "an argument").map_err(prepare("arguments"))?);
    }
    let envp = inheritance::environment(&spec.env).map_err(prepare("environment"))?;
    let cwd = cstring(spec.cwd.as_os_str().as_bytes(), "the working directory")
        .map_err(prepare("working directory"))?;
    let argv_ptrs = null_terminated(&argv);
    let devnull = inheritance::dev_null().map_err(prepare("/dev/null"))?;
    let (report_r, report_w) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| SpawnError::Prepare {
        what: "report pipe",
        source: e.into(),
    })?;
    let cgroup_dir = tree.dir_fd();
    let procs: Vec<OwnedFd> = tree.procs_fd().into_iter().collect();
    let join: Vec<RawFd> = procs.iter().map(AsRawFd::as_raw_fd).collect();
    // A child that cannot join the cgroups of its limits does not run.
    let procs_v1 = tree
        .v1_join_fds()
        .map_err(prepare("the cgroup v1 of a limit"))?;
    let join_v1: Vec<RawFd> = procs_v1.iter().map(AsRawFd::as_raw_fd).collect();
    let groups: Option<Vec<libc::gid_t>> = spec.groups.clone();
    if spec.hold.len() > clone::MAX_HOLD {
        return Err(SpawnError::Prepare {
            what: "descriptors to hold",
            source: io::Error::new(io::ErrorKind::InvalidInput, "more than two"),
        });
    }
    let mut hold = [(-1, -1); clone::MAX_HOLD];
    for (slot, (fd, to)) in hold.iter_mut().zip(&spec.hold) {
        *slot = (fd.as_raw_fd(), *to);
    }
    let raw = |s: &Stdio| match s {
        Stdio::Inherit => None,
        Stdio::Null => Some(devnull.as_raw_fd()),
        Stdio::Fd(fd) => Some(fd.as_raw_fd()),
    };
    let child = clone::Child {
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdin: devnull.as_raw_fd(),
        stdout: raw(&spec.stdout),
        stderr: raw(&spec.stderr),
        report: std::cell::Cell::new(report_w.as_raw_fd()),
        join: join.as_ptr(),
        join_len: join.len(),
        join_v1: join_v1.as_ptr(),
        join_v1_len: join_v1.len(),
        nofile: spec.nofile,
        hold,
        hold_len: spec.hold.len(),
        groups: groups.as_ref().map(|g| (g.as_ptr(), g.len())),
        gid: spec.gid,
        uid: spec.uid,
    };
    // Asked again as the flight departs, under the reaper's lock;
    // `TreeRoot::close` waits for every flight to land after closing: a
    // spawn either is refused here or has its child registered before the
    // close returns (and any kill of everything after it).
    let Some(flight) = reaper::Flight::depart(|| tree.is_closed()) else {
        tree.discard();
        return Err(SpawnError::Closed);
    };
    let cloned = clone::clone(&child, cgroup_dir.as_ref().map(|d| d.as_fd()), &flight)
        .map_err(|source| SpawnError::Fork { source })?;
    let pid = cloned.pid;
    #[cfg(test)]
    std::thread::sleep(LAND_DELAY.with(std::cell::Cell::get));
    let mut table = flight.land();
    // Without CLONE_PIDFD (old kernels) open one now: the child cannot have
    // been reaped, since reaping needs this lock.
    let pidfd = cloned.pidfd.or_else(|| child::open_own(pid));
    let (reg, exit) = table.register(pid as i32, tree.owner(), spec.kill_group_on_exit);
    if mode == Reaping::OwnChildren {
        let watched = pidfd
            .as_ref()
            .ok_or_else(|| io::Error::other("this kernel has no pidfds (Linux 5.3+)"))
            .and_then(|fd| fd.try_clone())
            .and_then(|fd| reaper::watch(pid as i32, fd));
        if let Err(e) = watched {
            // Nothing will reap it: end it here, and say why.
            drop(table);
            let _ = super::signal::process(pid as i32, crate::outcome::Signal::KILL);
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid as i32),
                rustix::process::WaitOptions::empty(),
            );
            return Err(SpawnError::Reaper(e));
        }
    }
    drop(table);
    // Our copies of the child's ends: the child has its own now.
    drop(report_w);
    drop(spec.stdout);
    drop(spec.stderr);
    drop(spec.hold);
    Ok(Started {
        spawned: Spawned {
            child: Child::new(reg, pidfd),
            exit,
        },
        program: spec.program,
        cwd: spec.cwd,
        report: report_r,
    })
}

/// Reads the report pipe until end of file (exec done) or a full report,
/// after the `n` bytes already read; returns the length read in all.
/// The pipe is non-blocking (so that the runtime can wait on it): wait for
/// it with `poll`.
fn read_report(fd: &OwnedFd, buf: &mut [u8; 8], mut n: usize) -> usize {
    use rustix::event::{poll, PollFd, PollFlags};
    while n < buf.len() {
        match rustix::io::read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let _ = poll(&mut fds, None);
            }
            Err(_) => break,
        }
    }
    n
}

/// [`read_report`] without blocking a runtime thread: the child may take a
/// while to reach its exec (a large environment, a slow disk).
async fn read_report_async(fd: OwnedFd, buf: &mut [u8; 8]) -> usize {
    // A shared clone (`launcher.rs`) returns once the child has exec'd or
    // exited: the report is complete, read without the reactor.
    let mut n = 0;
    loop {
        match rustix::io::read(&fd, &mut buf[n..]) {
            Ok(0) => return n,
            Ok(k) => {
                n += k;
                if n == buf.len() {
                    return n;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => break,
            Err(_) => return n,
        }
    }
    let fd = match super::readable_fd(fd) {
        Ok(fd) => fd,
        Err((fd, error)) => {
            // The reactor refused it: wait on this thread then.
            tracing::debug!(%error, "waiting for the exec report on this thread");
            return read_report(&fd, buf, n);
        }
    };
    while n < buf.len() {
        let Ok(mut guard) = fd.readable().await else {
            break;
        };
        match rustix::io::read(fd.get_ref(), &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    n
}
