//! The one place that waits for children.
//!
//! A dedicated thread blocks in `waitid(P_ALL, WEXITED | WNOWAIT)`: the
//! kernel wakes it when any child (or adopted orphan) exits, so there is no
//! polling and no dependence on SIGCHLD delivery. It then takes the table
//! lock, reaps that one pid, and hands the status to whoever registered it.
//! An exit nobody registered is an orphan re-parented to us; it is reaped
//! and counted.
//!
//! [`spawn`](super::spawn) holds the same lock from fork until the new
//! pid is registered, so the reaper can never reap a child before its owner
//! is known, and never races `std`'s own reaping of a child whose `exec`
//! failed (std reaps that one itself, inside `spawn`).
//!
//! When we have no children at all, the thread sleeps on a condition
//! variable until the next spawn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use tokio::sync::oneshot;

use crate::outcome::{ProcessEnd, Signal};

pub(crate) struct Table {
    waiters: HashMap<i32, oneshot::Sender<ProcessEnd>>,
    /// Children whose exec failed: reaped quietly.
    forgotten: Vec<i32>,
    /// False only after the reaper saw, under this lock, that we have no child.
    may_have_children: bool,
}

impl Table {
    /// Registers `pid` (just spawned by the caller, who holds this lock) and
    /// returns the channel its exit status will arrive on.
    pub(crate) fn register(&mut self, pid: i32) -> oneshot::Receiver<ProcessEnd> {
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(pid, tx);
        self.may_have_children = true;
        reaper().wake.notify_one();
        rx
    }
}

impl Table {
    /// Drops the registration of `pid` (a child whose exec failed): its
    /// status, when reaped, goes nowhere and is not counted as an orphan.
    pub(crate) fn forget(&mut self, pid: i32) {
        if let Some(tx) = self.waiters.remove(&pid) {
            self.forgotten.push(pid);
            drop(tx);
        }
    }
}

struct Reaper {
    table: Mutex<Table>,
    wake: Condvar,
    orphans: AtomicU64,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| Reaper {
        table: Mutex::new(Table {
            waiters: HashMap::new(),
            forgotten: Vec::new(),
            may_have_children: true,
        }),
        wake: Condvar::new(),
        orphans: AtomicU64::new(0),
    })
}

/// Starts the reaper thread (once per process) and returns the table lock.
/// Spawners hold the guard across fork/exec and registration.
pub(crate) fn lock() -> MutexGuard<'static, Table> {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        // A failure to start the thread leaves children unreaped, which we
        // cannot recover from; the manager cannot work without it.
        if let Err(e) = std::thread::Builder::new()
            .name("procman-reaper".into())
            .spawn(run)
        {
            tracing::error!(error = %e, "cannot start the reaper thread");
        }
    });
    reaper()
        .table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many orphans (descendants re-parented to us) have been reaped.
pub fn orphans_reaped() -> u64 {
    reaper().orphans.load(Ordering::Relaxed)
}

fn run() {
    let r = reaper();
    loop {
        match wait_any(false) {
            Some(pid) => reap(r, pid),
            None => {
                // No child at all, as far as a blocking wait could tell.
                // Re-check under the lock (no spawn can run meanwhile), then
                // sleep until the next spawn registers one.
                let mut table = r.table.lock().unwrap_or_else(|p| p.into_inner());
                if wait_any(true).is_none() {
                    table.may_have_children = false;
                    while !table.may_have_children {
                        table = r.wake.wait(table).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        }
    }
}

/// Waits (or, with `nohang`, checks) for any exited child without reaping
/// it. `Some(pid)` names one; `None` means we have no children (or, with
/// `nohang`, none that has exited *and* none at all: see the call site).
fn wait_any(nohang: bool) -> Option<i32> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let mut flags = libc::WEXITED | libc::WNOWAIT;
        if nohang {
            flags |= libc::WNOHANG;
        }
        // SAFETY: `info` is a valid, writable siginfo_t.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
        if rc == 0 {
            // SAFETY: waitid filled `info` for a child event (or left it
            // zeroed under WNOHANG when no child has exited).
            let pid = unsafe { info.si_pid() };
            if pid == 0 {
                // WNOHANG: children exist, none has exited.
                return Some(0);
            }
            return Some(pid);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            _ => return None,
        }
    }
}

fn reap(r: &Reaper, pid: i32) {
    if pid == 0 {
        return;
    }
    let mut table = r.table.lock().unwrap_or_else(|p| p.into_inner());
    let mut status = 0;
    // SAFETY: `status` is a valid writable int.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if rc != pid {
        // Already reaped elsewhere: std reaps a child whose exec failed,
        // inside `spawn`. (Were the pid reused since, `rc` is 0 and the new
        // owner's registration must stay.)
        return;
    }
    let end = decode(status);
    match table.waiters.remove(&pid) {
        Some(tx) => {
            // The owner may have gone away; then nobody needs the status.
            let _ = tx.send(end);
        }
        None if table.forgotten.contains(&pid) => {
            table.forgotten.retain(|&p| p != pid);
        }
        None => {
            r.orphans.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(pid, %end, "reaped an orphaned descendant");
        }
    }
}

fn decode(status: i32) -> ProcessEnd {
    if libc::WIFSIGNALED(status) {
        ProcessEnd::Signaled {
            signal: Signal(libc::WTERMSIG(status)),
            core: libc::WCOREDUMP(status),
        }
    } else {
        ProcessEnd::Exited(libc::WEXITSTATUS(status))
    }
}
