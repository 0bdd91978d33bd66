//! The one place that reaps children, in one of two modes.
//!
//! - [`Reaping::All`] (the manager's default, and what a subreaper or PID 1
//!   must do): a dedicated thread blocks in `waitid(P_ALL, WEXITED |
//!   WNOWAIT)`. The kernel wakes it when any child or adopted orphan exits,
//!   so there is no polling and no dependence on SIGCHLD delivery. It takes
//!   the table lock, reaps that one pid, and hands the status to whoever
//!   registered it; an exit nobody registered is an orphan, reaped and
//!   counted. With no child at all it sleeps until the next spawn.
//! - [`Reaping::OwnChildren`] (for a program that embeds the engine and has
//!   children of its own): each child is waited for through its pidfd on
//!   the async runtime (`waitid(P_PIDFD)`), so the host's other children
//!   are never touched. The process must then not be a subreaper.
//!
//! A spawn does not hold the table lock across its clone (a shared clone
//! returns only once the child has exec'd, and spawns would queue behind
//! each other): it is a [`Flight`] from its check of the tree to the
//! registration of its child, and the reaper leaves the exit of a flight's
//! child until it is registered.
//!
//! The table lock is also what makes signals safe: a pid is registered from
//! the moment its spawn returns until it is reaped, and reaping happens under
//! the lock, so code that holds the lock and sees a pid registered knows the
//! pid (and the process group it leads) still names our child, not a
//! stranger that reused the number (see `child.rs`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

pub(crate) use super::flight::{wait_for_flights, Flight};

use tokio::sync::oneshot;

use super::signal;
use crate::outcome::{ProcessEnd, Signal};

/// How children are reaped; chosen once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaping {
    /// Every child and adopted orphan, by a dedicated thread.
    All,
    /// Only the children spawned through this module, each by its pidfd.
    OwnChildren,
}

struct Entry {
    /// Which registration this is: a pid number comes back once reaped, a
    /// token never does (see [`Registration`]).
    token: u64,
    tx: oneshot::Sender<ProcessEnd>,
    /// The [`TreeRoot`](super::TreeRoot) that spawned it.
    owner: u64,
    /// SIGKILL its process group when it exits, before it is reaped (while
    /// the zombie still pins the group's number): for health checks, whose
    /// leftovers must not outlive them.
    kill_group: bool,
}

pub(crate) struct Table {
    entries: HashMap<i32, Entry>,
    /// Children whose exec failed: reaped quietly.
    forgotten: Vec<i32>,
    /// False only after the reaper saw, under this lock, that we have no child.
    may_have_children: bool,
    /// The pid slots of the spawns under way (see [`Flight`]).
    pub(super) in_flight: Vec<Arc<AtomicI32>>,
    /// Threads waiting for a flight to land (only then is one woken).
    pub(super) awaiting_landing: usize,
}

impl Table {
    /// Registers `pid` (just spawned by the caller, who holds this lock) and
    /// returns the registration and the channel its exit status arrives on.
    pub(crate) fn register(
        &mut self,
        pid: i32,
        owner: u64,
        kill_group: bool,
    ) -> (Registration, oneshot::Receiver<ProcessEnd>) {
        static TOKENS: AtomicU64 = AtomicU64::new(1);
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.entries.insert(
            pid,
            Entry {
                token,
                tx,
                owner,
                kill_group,
            },
        );
        self.may_have_children = true;
        state().wake.notify_one();
        (Registration { pid, token }, rx)
    }

    /// Drops the registration of `pid` (a child whose exec failed): its
    /// status, when reaped, goes nowhere and is not counted as an orphan.
    pub(crate) fn forget(&mut self, pid: i32) {
        if self.entries.remove(&pid).is_some() {
            self.forgotten.push(pid);
        }
    }

    /// True from the spawn of this registration's child until it is reaped
    /// (a later child with the same pid is another registration).
    pub(crate) fn is_current(&self, r: Registration) -> bool {
        self.entries.get(&r.pid).is_some_and(|e| e.token == r.token)
    }

    /// True while *some* unreaped child of ours has the pid `pid` (a
    /// spawn under way's too).
    pub(crate) fn is_registered(&self, pid: i32) -> bool {
        self.entries.contains_key(&pid) || self.in_flight(pid)
    }

    /// Whether `pid` is the child of a spawn under way, not registered yet.
    pub(super) fn in_flight(&self, pid: i32) -> bool {
        self.in_flight
            .iter()
            .any(|slot| slot.load(Ordering::Acquire) == pid)
    }

    /// The registered (unreaped) children of `owner`.
    pub(crate) fn owned_by(&self, owner: u64) -> Vec<i32> {
        self.entries
            .iter()
            .filter(|(_, e)| e.owner == owner)
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// Hands the status of `pid`, just reaped, to its owner.
    fn deliver(&mut self, pid: i32, end: ProcessEnd, orphans: &AtomicU64) {
        match self.entries.remove(&pid) {
            // The owner may have gone away; then nobody needs the status.
            Some(entry) => drop(entry.tx.send(end)),
            None if self.forgotten.contains(&pid) => self.forgotten.retain(|&p| p != pid),
            None => {
                orphans.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pid, %end, "reaped an orphaned descendant");
            }
        }
    }

    /// Before `pid` is reaped: what its registration asked for.
    fn before_reap(&self, pid: i32) {
        if self.entries.get(&pid).is_some_and(|e| e.kill_group) {
            // The leader is a zombie still, so `-pid` is its own group.
            let _ = signal::group(pid, Signal::KILL);
        }
    }
}

/// One spawn's place in the table: its pid, and a token no other spawn
/// ever has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) pid: i32,
    token: u64,
}

impl Registration {
    /// A registration that was never made (token 0 is never handed out):
    /// it is current for no child.
    pub(crate) fn none(pid: u32) -> Registration {
        Registration {
            pid: pid as i32,
            token: 0,
        }
    }
}

pub(super) struct State {
    table: Mutex<Table>,
    wake: Condvar,
    /// Notified when a spawn under way registers its child (or gives up).
    pub(super) landed: Condvar,
    orphans: AtomicU64,
    mode: OnceLock<Reaping>,
}

pub(super) fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| State {
        table: Mutex::new(Table {
            entries: HashMap::new(),
            forgotten: Vec::new(),
            may_have_children: true,
            in_flight: Vec::new(),
            awaiting_landing: 0,
        }),
        wake: Condvar::new(),
        landed: Condvar::new(),
        orphans: AtomicU64::new(0),
        mode: OnceLock::new(),
    })
}

/// Chooses how children are reaped and, for [`Reaping::All`], starts the
/// thread. Called again with the same mode it does nothing; a different
/// mode than the one already chosen is an error (the choice is for the
/// life of the process). A thread that cannot be created is an error.
pub fn start(mode: Reaping) -> io::Result<()> {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if keep_children_waitable()? {
        tracing::warn!("SIGCHLD was ignored (inherited from the parent); set back to its default so that exits are seen");
    }
    if let Some(&chosen) = state().mode.get() {
        if chosen != mode {
            return Err(io::Error::other(format!(
                "children are already reaped in mode {chosen:?}; cannot switch to {mode:?}"
            )));
        }
        return Ok(());
    }
    if mode == Reaping::All && !*started {
        std::thread::Builder::new()
            .name("procman-reaper".into())
            .stack_size(64 * 1024)
            .spawn(run)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the reaper thread: {e}"))
            })?;
        *started = true;
    }
    let _ = state().mode.set(mode);
    // While the manager's descriptors are few: see `launcher.rs`.
    super::launcher::prepare();
    super::inheritance::prepare();
    Ok(())
}

/// The mode in force; starts [`Reaping::All`] if none was chosen yet.
pub(crate) fn mode() -> io::Result<Reaping> {
    match state().mode.get() {
        Some(&m) => Ok(m),
        None => start(Reaping::All).map(|()| Reaping::All),
    }
}

/// The table lock. Spawners take it to start a [`Flight`] and to register
/// their child; signal senders hold it while they check that a pid is
/// still theirs.
pub(crate) fn lock() -> MutexGuard<'static, Table> {
    state().table.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds back reaping (and the registration of every spawn, which a
/// clone under way then waits for) for as long as the guard lives:
/// the exits meanwhile are heard after. For a tight pass of signals that
/// the handling of its first exits must not slow down; keep it short.
pub(crate) fn hold() -> MutexGuard<'static, Table> {
    lock()
}

/// How many orphans (descendants re-parented to us) have been reaped.
pub fn orphans_reaped() -> u64 {
    state().orphans.load(Ordering::Relaxed)
}

/// SIGKILL to the process group of every unreaped child of `owner`: the
/// last resort of a manager dropped without a stop.
pub(crate) fn kill_owned(owner: u64) {
    let table = lock();
    for pid in table.owned_by(owner) {
        let _ = signal::group(pid, Signal::KILL);
        let _ = signal::process(pid, Signal::KILL);
    }
}

/// [`Reaping::OwnChildren`]: waits for `pid` through its pidfd on the
/// runtime, then reaps it under the lock.
pub(crate) fn watch(pid: i32, pidfd: OwnedFd) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        io::Error::other("reaping children by pidfd needs a tokio runtime at spawn")
    })?;
    let fd = super::readable_fd(pidfd).map_err(|(_, e)| e)?;
    runtime.spawn(async move {
        // A pidfd becomes readable once the process has exited.
        let _ = fd.readable().await;
        let r = state();
        let mut table = lock();
        table.before_reap(pid);
        let options = rustix::process::WaitIdOptions::EXITED;
        match rustix::process::waitid(rustix::process::WaitId::PidFd(fd.get_ref().as_fd()), options) {
            Ok(Some(status)) => table.deliver(pid, decode_waitid(&status), &r.orphans),
            other => {
                tracing::error!(pid, result = ?other.map(|s| s.is_some()), "cannot reap a child by its pidfd");
                table.forget(pid);
            }
        }
    });
    Ok(())
}

fn decode_waitid(s: &rustix::process::WaitIdStatus) -> ProcessEnd {
    match (s.exit_status(), s.terminating_signal()) {
        (Some(code), _) => ProcessEnd::Exited(code),
        (None, Some(sig)) => ProcessEnd::Signaled {
            signal: Signal(sig),
            core: s.dumped(),
        },
        (None, None) => ProcessEnd::Exited(-1),
    }
}

fn run() {
    let r = state();
    loop {
        match wait_any(false) {
            Some(pid) => reap(r, pid),
            None => {
                // No child at all, as far as a blocking wait could tell.
                // Re-check under the lock (no spawn can run meanwhile), then
                // sleep until the next spawn registers one.
                let mut table = lock();
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
/// it. `Some(pid)` names one (`Some(0)`: children exist, none has exited);
/// `None` means we have no children.
///
/// `libc::waitid` rather than rustix's: the pid of the child (`si_pid`) is
/// what this loop needs, and rustix's status type does not expose it.
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
            return Some(unsafe { info.si_pid() });
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            _ => return None,
        }
    }
}

fn reap(r: &State, pid: i32) {
    if pid == 0 {
        return;
    }
    let mut table = lock();
    // The child of a spawn under way: reaped once registered, so that its
    // status reaches its owner.
    while !table.entries.contains_key(&pid) && table.in_flight(pid) {
        table = super::flight::await_landing(table);
    }
    table.before_reap(pid);
    let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    // `None` or an error: not ours to reap after all (only possible if
    // something else in the process waits for children, which the docs
    // forbid).
    if let Ok(Some((_, status))) =
        rustix::process::waitpid(Some(rpid), rustix::process::WaitOptions::NOHANG)
    {
        table.deliver(pid, decode(status), &r.orphans);
    }
}

fn decode(status: rustix::process::WaitStatus) -> ProcessEnd {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => ProcessEnd::Exited(code),
        (None, Some(sig)) => ProcessEnd::Signaled {
            signal: Signal(sig),
            // WCOREDUMP: bit 0x80 of the raw status.
            core: status.as_raw() & 0x80 != 0,
        },
        (None, None) => ProcessEnd::Exited(-1),
    }
}

/// Makes sure the kernel leaves our children's exits for us to collect.
/// A SIGCHLD ignored (`SIG_IGN` survives exec, so a parent can pass it on)
/// or handled with `SA_NOCLDWAIT` makes the kernel reap every child at
/// once: no exit would ever be seen, no process restarted. Such a
/// disposition is set back to the default; true when it was.
pub(crate) fn keep_children_waitable() -> io::Result<bool> {
    // SAFETY: an all-zero `sigaction` is a valid value to be filled in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reads the current disposition into `old`, changes nothing.
    if unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let ignored = old.sa_sigaction == libc::SIG_IGN;
    if !ignored && old.sa_flags & libc::SA_NOCLDWAIT == 0 {
        return Ok(false);
    }
    // SAFETY: as above.
    let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
    default.sa_sigaction = if ignored {
        libc::SIG_DFL
    } else {
        old.sa_sigaction
    };
    default.sa_flags = old.sa_flags & !libc::SA_NOCLDWAIT;
    default.sa_mask = old.sa_mask;
    // SAFETY: installs the default disposition (or the same handler
    // without SA_NOCLDWAIT); `default` is fully initialised.
    if unsafe { libc::sigaction(libc::SIGCHLD, &default, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}
