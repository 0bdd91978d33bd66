//! Spawning a child: new session, stdin from /dev/null, placed in its tree
//! before `exec`, registered with the reaper before anyone can reap it.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

use super::account::{self, IdentityStep};
use super::clone::{self, CloneError};
use super::reaper;
use super::tree::Tree;
use crate::outcome::ProcessEnd;

/// False once `clone3` proved unavailable (old kernel, seccomp filter).
static CLONE3: AtomicBool = AtomicBool::new(true);

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

impl From<Stdio> for std::process::Stdio {
    fn from(s: Stdio) -> Self {
        match s {
            Stdio::Inherit => std::process::Stdio::inherit(),
            Stdio::Null => std::process::Stdio::null(),
            Stdio::Fd(fd) => std::process::Stdio::from(fd),
        }
    }
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
    /// The supplementary groups, set before `gid` and `uid`; `None` keeps
    /// the manager's (see [`Credentials::resolve`](super::Credentials::resolve)).
    pub groups: Option<Vec<u32>>,
    /// `RLIMIT_NOFILE` (soft, hard) to set in the child.
    pub nofile: Option<(u64, u64)>,
}

/// A running child.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    /// Fires once, with how the child ended, when the reaper reaps it.
    pub exit: oneshot::Receiver<ProcessEnd>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("executable `{name}` not found in PATH ({path})")]
    NotInPath { name: String, path: String },
    #[error("executable {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} is not an executable file", .0.display())]
    NotExecutable(PathBuf),
    #[error("working directory {}: {source}", .path.display())]
    WorkingDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("working directory {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot execute {}: {source}", .program.display())]
    Exec {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot execute {}: {step} failed: {source}", .program.display())]
    Identity {
        program: PathBuf,
        step: IdentityStep,
        source: std::io::Error,
    },
}

/// The error of a child that could not exec: a refused identity step
/// when the child tagged its errno, else the exec failure itself.
fn exec_error(program: PathBuf, source: std::io::Error) -> SpawnError {
    match source.raw_os_error().and_then(IdentityStep::untag) {
        Some((step, errno)) => SpawnError::Identity {
            program,
            step,
            source: std::io::Error::from_raw_os_error(errno),
        },
        None => SpawnError::Exec { program, source },
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

/// Finds the program to execute: a name with a slash is a path (relative to
/// `cwd`); a bare name is looked up in `path_var` (the child's `PATH`).
pub fn resolve_program(
    executable: &str,
    cwd: &Path,
    path_var: Option<&OsString>,
) -> Result<PathBuf, SpawnError> {
    if executable.contains('/') {
        let p = cwd.join(executable);
        return check_executable(p);
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
        name: executable.to_string(),
        path: search.to_string_lossy().into_owned(),
    })
}

fn check_executable(p: PathBuf) -> Result<PathBuf, SpawnError> {
    match std::fs::metadata(&p) {
        Err(_) => Err(SpawnError::Missing(p)),
        Ok(_) if !is_executable_file(&p) => Err(SpawnError::NotExecutable(p)),
        Ok(_) => Ok(p),
    }
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Starts the child described by `spec` as the leader of a new session,
/// inside `tree`. Its exit status arrives on [`Spawned::exit`].
///
/// With a cgroup the child is created directly inside it (`clone3`, see
/// `clone.rs`); otherwise, or where `clone3` is refused, by fork and exec,
/// joining the cgroup (if any) before exec.
pub fn spawn(spec: SpawnSpec, tree: &Tree) -> Result<Spawned, SpawnError> {
    match std::fs::metadata(&spec.cwd) {
        Err(source) => {
            return Err(SpawnError::WorkingDirectory {
                path: spec.cwd,
                source,
            })
        }
        Ok(m) if !m.is_dir() => return Err(SpawnError::NotADirectory(spec.cwd)),
        Ok(_) => {}
    }
    if let Some(dir) = tree.dir_fd().filter(|_| CLONE3.load(Ordering::Relaxed)) {
        // Held from clone until the pid is registered: see `reaper`.
        let mut table = reaper::lock();
        match clone::spawn(&spec, dir.as_fd()) {
            Ok(pending) => {
                let pid = pending.pid;
                let exit = table.register(pid as i32);
                drop(table);
                return match pending.wait_exec() {
                    Ok(()) => Ok(Spawned { pid, exit }),
                    Err(source) => {
                        // It exits with 127 right after reporting; whoever
                        // reaps it, nobody is waiting for that status.
                        reaper::lock().forget(pid as i32);
                        Err(exec_error(spec.program, source))
                    }
                };
            }
            Err(CloneError::Exec(source)) => return Err(exec_error(spec.program, source)),
            Err(CloneError::Unsupported { error, permanent }) => {
                if permanent {
                    CLONE3.store(false, Ordering::Relaxed);
                }
                tracing::debug!(%error, "clone3 into a cgroup failed; using fork and exec");
            }
        }
    }
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(spec.stdout)
        .stderr(spec.stderr);
    // Opened before the fork: nothing between fork and exec may allocate.
    let procs: Option<OwnedFd> = tree.procs_fd();
    let procs_raw = procs.as_ref().map(|fd| fd.as_raw_fd());
    let nofile = spec.nofile;
    // The user and groups are switched here, not with `CommandExt::uid`
    // and `gid`: std applies those before this hook and, without its
    // unstable `groups`, clears the supplementary groups first. Prepared
    // before the fork, like the directory entered again once switched
    // (std enters it as root, before this hook).
    let (uid, gid, groups) = (spec.uid, spec.gid, spec.groups.clone());
    let switching = uid.is_some() || gid.is_some() || groups.is_some();
    let cwd = std::ffi::CString::new(spec.cwd.as_os_str().as_bytes()).map_err(|_| {
        SpawnError::WorkingDirectory {
            path: spec.cwd.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL byte in the path"),
        }
    })?;
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (setsid, write, setgroups,
    // setres*id, chdir) on values prepared before the fork; it neither
    // allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = procs_raw {
                // "0" moves the writing process: this child, before exec.
                if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            clone::mark_cloexec_from(3);
            if let Some((soft, hard)) = nofile {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if switching {
                account::switch(groups.as_deref(), gid, uid)
                    .map_err(std::io::Error::from_raw_os_error)?;
                if libc::chdir(cwd.as_ptr()) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // Held from fork until the pid is registered: see `reaper`.
    let mut table = reaper::lock();
    let child = cmd
        .spawn()
        .map_err(|source| exec_error(spec.program.clone(), source))?;
    let pid = child.id();
    let exit = table.register(pid as i32);
    drop(table);
    // `std::process::Child` never waits on drop; the reaper owns the status.
    drop(child);
    drop(procs);
    Ok(Spawned { pid, exit })
}
