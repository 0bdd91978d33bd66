//! The one seam to the operating system.
//!
//! Everything that differs between platforms lives below this module, and
//! callers never write `cfg`. What it offers:
//!
//! - [`spawn`]: spawn a child as the leader of a new session (so of a new
//!   process group), with stdin from `/dev/null`, placed in its own
//!   [`Tree`] before it execs; its exit arrives as a [`ProcessEnd`] on a
//!   oneshot channel from the [`reaper`].
//! - [`reaper`]: the single place that calls `waitpid`. It is driven by
//!   SIGCHLD, reaps every child *and* every orphan the kernel hands us as a
//!   child subreaper (or as PID 1), and routes each status to whoever
//!   spawned that pid. Nothing else in the process may wait for children:
//!   every spawn goes through [`spawn`].
//! - [`Tree`]: all processes that belong to one supervised process,
//!   grandchildren included, even ones that called `setsid()`. On Linux it
//!   is a cgroup v2 directory when one can be created (membership works even
//!   on hybrid hosts without v2 controllers), else a walk of `/proc` from the
//!   child's pid.
//! - [`become_subreaper`], [`signal_group`], [`process_alive`].
//!
//! [`ProcessEnd`]: crate::outcome::ProcessEnd

mod account;
mod cgroup;
mod clone;
mod proctree;
pub mod reaper;
mod spawn;
mod tree;

pub use account::{AccountError, Credentials, Group, IdentityStep, User};
pub use spawn::{child_path, resolve_program, spawn, SpawnError, SpawnSpec, Spawned, Stdio};
pub use tree::{Tree, TreeRoot};

use crate::outcome::Signal;

/// Makes this process the reaper of its orphaned descendants, so that a
/// grandchild whose parent dies is re-parented to us rather than to init.
/// PID 1 is a reaper already.
pub fn become_subreaper() -> std::io::Result<()> {
    if std::process::id() == 1 {
        return Ok(());
    }
    rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(std::process::id() as i32))
        .map_err(std::io::Error::from)
}

/// Sends `sig` to every process in the group led by `pgid`. A group that
/// no longer exists is not an error.
pub fn signal_group(pgid: u32, sig: Signal) -> std::io::Result<()> {
    send(-(pgid as i32), sig)
}

/// Sends `sig` to one process. A process that no longer exists is not an error.
pub fn signal_process(pid: u32, sig: Signal) -> std::io::Result<()> {
    send(pid as i32, sig)
}

fn send(target: i32, sig: Signal) -> std::io::Result<()> {
    if target == 0 || target == -1 || target == 1 && std::process::id() == 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "refusing to signal a process-wide target",
        ));
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the target was
    // checked above never to be 0 or -1 (our own group, or every process).
    let rc = unsafe { libc::kill(target, sig.0) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(()),
        _ => Err(err),
    }
}

/// True while a process with this pid exists (a zombie counts as existing).
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as i32, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// True while any process is left in the group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 to a group only checks for existence.
    unsafe { libc::kill(-(pgid as i32), 0) == 0 }
}

/// Gives memory that the allocator keeps after a burst (config parsing,
/// 500 spawns) back to the kernel. glibc only; a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The `RLIMIT_NOFILE` the manager started with, before
/// [`raise_fd_limit`]: what children get back (as systemd does), so that a
/// program using `select()` never sees descriptors past 1024.
static NOFILE_AT_START: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Raises this process's soft limit on open files to the hard limit: a
/// manager of many processes holds two pipes and a log file for each.
/// Children are given the original limit back (see [`child_nofile`]).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let _ = NOFILE_AT_START.set((lim.rlim_cur, lim.rlim_max));
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: plain system call on a valid struct; failure keeps the limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    }
}

/// The open-files limit (soft, hard) a child should get, if the manager
/// changed its own.
pub fn child_nofile() -> Option<(u64, u64)> {
    NOFILE_AT_START.get().copied()
}
