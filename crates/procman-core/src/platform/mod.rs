//! The one seam to the operating system.
//!
//! Everything that differs between platforms lives below this module, and
//! callers never write `cfg`. What it offers:
//!
//! - [`spawn`]: start a child as the leader of a new session (so of a new
//!   process group), with stdin from `/dev/null`, every signal at its
//!   default and none blocked, placed in its own [`Tree`] before it execs,
//!   known by a pidfd from its first instant ([`Child`]); its exit arrives
//!   as a [`ProcessEnd`] from the [`reaper`].
//! - [`reaper`]: the single place that reaps children: every child and
//!   orphan (a subreaper's or PID 1's duty), or only our own through their
//!   pidfds (for a program that embeds the engine), see [`Reaping`].
//! - [`Child`] and [`Member`]: processes by identity. Nothing in the engine
//!   signals a bare pid, which may belong to a stranger once its process has
//!   been reaped.
//! - [`Tree`]: all processes that belong to one supervised process,
//!   grandchildren included, even ones that called `setsid()`. On Linux it
//!   is a cgroup v2 directory when one can be created (membership works even
//!   on hybrid hosts without v2 controllers), else the process group plus
//!   the descendants found in `/proc`.
//! - [`limits`] and `quota.rs`: resource limits in cgroup v2 or v1
//!   controllers under the manager's own cgroups; [`oom`]: the kernel's
//!   OOM kills in them, heard without polling.
//! - [`discovery`] and [`pidfile`]: finding a process procman did not
//!   start (by pid, pid file or name) and holding it by identity; hearing
//!   its pid file change (inotify), without polling.
//! - [`config_watch`]: hearing that configuration files change (inotify on
//!   their directories, through symbolic links), debounced.
//! - [`procstat`]: the one reader of `/proc/<pid>/stat`.
//! - [`usage`]: what a process tree, or the manager itself, uses (CPU,
//!   memory, processes, descriptors).
//! - [`become_subreaper`], [`raise_fd_limit`], [`worker`] (a thread of our
//!   own for blocking work, so that it never runs on the async runtime).
//!
//! [`ProcessEnd`]: crate::outcome::ProcessEnd

mod account;
pub mod adopt;
mod cgroup;
mod child;
mod clone;
pub mod config_watch;
pub mod discovery;
mod flight;
mod inheritance;
mod inotify;
mod launcher;
mod leftovers;
pub mod limits;
pub mod oom;
pub mod pidfile;
pub mod procstat;
mod proctree;
mod quota;
pub mod reaper;
mod signal;
mod spawn;
mod tree;
pub mod usage;
pub mod worker;

pub use account::{AccountError, Credentials, Group, User};
pub use child::{Child, ChildId, Member};
pub use limits::{Controller, Controllers, Enforcer, Host};
pub use oom::OomWatch;
pub use quota::{cpu_quota, Enforcement, Limits};
pub use reaper::Reaping;
pub(crate) use signal::pidfd as signal_pidfd;
pub use signal::signal_process;
pub use spawn::{
    check_working_directory, child_path, resolve_program, spawn, spawn_blocking, spawn_then,
    SpawnError, SpawnSpec, Spawned, Stdio, Step,
};
pub use tree::{SpawnHalt, Tree, TreeRoot};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

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

/// Caps glibc's malloc at two arenas, before the manager creates its
/// threads. By default each thread that allocates may get an arena of its
/// own (up to eight per core), each keeping free memory of its own: with
/// the runtime's workers, the blocking pool and the engine's threads, that
/// is memory held many times over for a manager that is mostly idle.
/// glibc only; a no-op elsewhere.
pub fn limit_allocator_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets one of malloc's parameters; a value it
    // refuses leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
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
    let lim = getrlimit(Resource::Nofile);
    let infinity = u64::MAX;
    let (cur, max) = (
        lim.current.unwrap_or(infinity),
        lim.maximum.unwrap_or(infinity),
    );
    let _ = NOFILE_AT_START.set((cur, max));
    if cur < max {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        // Failure keeps the limit, which is only less room.
        let _ = setrlimit(Resource::Nofile, raised);
    }
}

/// `" (the manager may hold N descriptors: raise `ulimit -n`, or
/// LimitNOFILE= under systemd)"`: what to add to a "too many open files"
/// error of the manager's own.
pub fn nofile_hint() -> String {
    match getrlimit(Resource::Nofile).current {
        Some(n) => format!(
            " (the manager may hold {n} descriptors, about 4 per running process: \
             raise `ulimit -n`, or LimitNOFILE= under systemd)"
        ),
        None => String::new(),
    }
}

/// The open-files limit (soft, hard) a child should get, if the manager
/// changed its own.
pub fn child_nofile() -> Option<(u64, u64)> {
    NOFILE_AT_START.get().copied()
}

/// Registers `fd` with the async runtime's reactor, for readiness events.
/// `Err` gives the descriptor back with the reason (no reactor, no room).
pub(crate) fn readable_fd(
    fd: std::os::fd::OwnedFd,
) -> Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>, (std::os::fd::OwnedFd, std::io::Error)>
{
    // SAFETY: an OwnedFd is a valid open descriptor, returns the same raw
    // descriptor for as long as it lives, and closes it only when dropped,
    // which the AsyncFd that owns it does after deregistering it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts())
}

#[cfg(test)]
#[path = "tests/reuse.rs"]
mod reuse_tests;
