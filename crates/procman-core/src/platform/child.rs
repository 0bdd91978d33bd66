//! Processes by identity, never by a bare pid.
//!
//! A pid is a number the kernel hands out again once its process has been
//! reaped; a signal sent to a remembered pid may reach a stranger. So:
//!
//! - [`Child`] is a process we spawned. It carries a pidfd (`CLONE_PIDFD`,
//!   or `pidfd_open` right after the spawn, before it can be reaped), and
//!   signals go through `pidfd_send_signal`, which can only ever reach that
//!   process. Its process group is signalled by number only while the
//!   child is still registered with the reaper, checked under the reaper's
//!   lock: an unreaped leader, even a zombie, keeps the group's number from
//!   being reused.
//! - [`Member`] is a descendant found later (in a cgroup, or in `/proc`). It
//!   is opened as a pidfd first and *then* checked to be what we looked for
//!   (`/proc/<pid>` read again after the open): if the number was reused in
//!   between, the check sees the stranger and the member is dropped; if our
//!   process ended instead, the pidfd refers to it and its signals go
//!   nowhere.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::procstat::Stat;
use super::reaper::{self, Registration};
use super::signal;
use crate::outcome::Signal;

/// A process we supervise: one we spawned, or one an earlier manager
/// spawned and this one adopted (see [`Child::adopt`]).
#[derive(Debug)]
pub struct Child {
    pid: u32,
    origin: Origin,
    /// `None` only for a spawned child on a kernel without pidfds (before
    /// 5.3). Shared with the [`ChildId`]s of an adopted process, which
    /// have nothing else to know it by.
    pidfd: Option<Arc<OwnedFd>>,
}

#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Its entry in the reaper's table, which only it ever had.
    Spawned(Registration),
    /// Not our child: known by its pidfd alone. Its end is heard through
    /// the pidfd; its exit status goes to its real parent (init, or a
    /// subreaper), not to us.
    Adopted,
}

impl Child {
    pub(crate) fn new(reg: Registration, pidfd: Option<OwnedFd>) -> Child {
        Child {
            pid: reg.pid as u32,
            origin: Origin::Spawned(reg),
            pidfd: pidfd.map(Arc::new),
        }
    }

    /// A process that is not our child, known by `pidfd` (opened and then
    /// checked by the caller to be the process it expects).
    pub(crate) fn adopted(pid: u32, pidfd: OwnedFd) -> Child {
        Child {
            pid,
            origin: Origin::Adopted,
            pidfd: Some(Arc::new(pidfd)),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn id(&self) -> ChildId {
        ChildId {
            pid: self.pid,
            origin: match (self.origin, &self.pidfd) {
                (Origin::Spawned(reg), _) => IdOrigin::Spawned(reg),
                (Origin::Adopted, Some(fd)) => IdOrigin::Adopted(fd.clone()),
                // An adopted child always has its pidfd.
                (Origin::Adopted, None) => IdOrigin::Spawned(Registration::none(self.pid)),
            },
        }
    }

    /// Whether an earlier manager spawned it (see [`Child::adopt`]).
    pub fn is_adopted(&self) -> bool {
        matches!(self.origin, Origin::Adopted)
    }

    /// Its registration with the reaper, when we spawned it.
    pub(crate) fn registration(&self) -> Option<Registration> {
        match self.origin {
            Origin::Spawned(reg) => Some(reg),
            Origin::Adopted => None,
        }
    }

    /// The pidfd (for an adopted child, always there).
    pub(crate) fn pidfd(&self) -> Option<&OwnedFd> {
        self.pidfd.as_deref()
    }

    /// The pidfd, shared: for a holder that may signal the child from
    /// elsewhere (see `supervisor/leader.rs`). It names this process only.
    pub(crate) fn shared_pidfd(&self) -> Option<&Arc<OwnedFd>> {
        self.pidfd.as_ref()
    }

    /// Sends `sig` to this process. `Ok(false)`: it has already ended.
    pub fn signal(&self, sig: Signal) -> io::Result<bool> {
        match (&self.pidfd, self.origin) {
            (Some(fd), _) => signal::pidfd(&**fd, sig),
            (None, Origin::Spawned(reg)) => {
                let table = reaper::lock();
                if !table.is_current(reg) {
                    return Ok(false);
                }
                signal::process(self.pid as i32, sig)
            }
            (None, Origin::Adopted) => Ok(false),
        }
    }

    /// Sends `sig` to the process group this child leads, while it has not
    /// been reaped. `Ok(false)`: it has been, so the group's number may
    /// belong to someone else now and nothing is sent.
    ///
    /// An adopted child cannot be held unreaped: its group is signalled
    /// while its pidfd says it runs, which leaves a window of a few
    /// microseconds in which it could end, be reaped by its parent, and
    /// every member of its group end too, and its number be given to a
    /// new group. (With a cgroup, trees are signalled through the cgroup.)
    pub fn signal_group(&self, sig: Signal) -> io::Result<bool> {
        match self.origin {
            Origin::Spawned(reg) => {
                let table = reaper::lock();
                if !table.is_current(reg) {
                    return Ok(false);
                }
                signal::group(self.pid as i32, sig)
            }
            Origin::Adopted if self.has_exited() => Ok(false),
            Origin::Adopted => signal::group(self.pid as i32, sig),
        }
    }

    /// Whether any process is left in the group this child leads; `false`
    /// once the child has been reaped (the number is no longer its), or,
    /// adopted, once it has ended.
    pub fn group_alive(&self) -> bool {
        let group_exists = || {
            Pid::from_raw(self.pid as i32)
                .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
        };
        match self.origin {
            Origin::Spawned(reg) => {
                let table = reaper::lock();
                table.is_current(reg) && group_exists()
            }
            Origin::Adopted => !self.has_exited() && group_exists(),
        }
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        match (&self.pidfd, self.origin) {
            (Some(fd), _) => pidfd_exited(&**fd),
            (None, Origin::Spawned(reg)) => {
                let table = reaper::lock();
                !table.is_current(reg) || !super::procstat::alive(self.pid)
            }
            (None, Origin::Adopted) => true,
        }
    }

    /// Whether it has not been reaped yet (a zombie has not). An adopted
    /// child counts as reaped once it has ended: its parent reaps it.
    pub fn is_unreaped(&self) -> bool {
        match self.origin {
            Origin::Spawned(reg) => reaper::lock().is_current(reg),
            Origin::Adopted => !self.has_exited(),
        }
    }
}

/// Names one child of ours for as long as it is unreaped, to ask about it
/// later (a liveness check) without holding it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChildId {
    pid: u32,
    origin: IdOrigin,
}

#[derive(Debug, Clone)]
enum IdOrigin {
    Spawned(Registration),
    Adopted(Arc<OwnedFd>),
}

impl PartialEq for ChildId {
    fn eq(&self, other: &ChildId) -> bool {
        match (&self.origin, &other.origin) {
            (IdOrigin::Spawned(a), IdOrigin::Spawned(b)) => a == b,
            (IdOrigin::Adopted(a), IdOrigin::Adopted(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ChildId {}

impl ChildId {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Running: not reaped, and not a zombie waiting to be.
    pub fn is_running(&self) -> bool {
        match &self.origin {
            IdOrigin::Spawned(reg) => {
                let table = reaper::lock();
                table.is_current(*reg) && super::procstat::alive(self.pid)
            }
            IdOrigin::Adopted(fd) => !pidfd_exited(&**fd),
        }
    }

    /// SIGKILL to the child and its group, while it is unreaped.
    pub(crate) fn kill(&self) {
        match &self.origin {
            IdOrigin::Spawned(reg) => {
                let table = reaper::lock();
                if table.is_current(*reg) {
                    let _ = signal::group(reg.pid, Signal::KILL);
                    let _ = signal::process(reg.pid, Signal::KILL);
                }
            }
            IdOrigin::Adopted(fd) => {
                if !pidfd_exited(&**fd) {
                    let _ = signal::group(self.pid as i32, Signal::KILL);
                    let _ = signal::pidfd(&**fd, Signal::KILL);
                }
            }
        }
    }

    /// An id that names no child (tests of code that only carries ids).
    #[cfg(test)]
    pub(crate) fn unregistered(pid: u32) -> ChildId {
        ChildId {
            pid,
            origin: IdOrigin::Spawned(Registration::none(pid)),
        }
    }
}

/// A descendant of one of our children, held by a pidfd.
#[derive(Debug)]
pub struct Member {
    pid: u32,
    fd: OwnedFd,
}

impl Member {
    /// Opens `pid` and keeps it only if `is_ours` holds for what `/proc`
    /// says of it *after* the open (see the module doc). `None`: it is gone,
    /// or it is not ours.
    pub fn open(pid: u32, is_ours: impl Fn(u32, &Stat) -> bool) -> Option<Member> {
        Member::open_with_stat(pid, is_ours).map(|(m, _)| m)
    }

    /// [`Member::open`], with what `/proc` said of the process after the
    /// open (its start time names it for the life of the system).
    pub fn open_with_stat(
        pid: u32,
        is_ours: impl Fn(u32, &Stat) -> bool,
    ) -> Option<(Member, Stat)> {
        let fd = pidfd_open(Pid::from_raw(pid as i32)?, PidfdFlags::empty()).ok()?;
        match Stat::read(pid) {
            Ok(Some(stat)) if is_ours(pid, &stat) => Some((Member { pid, fd }, stat)),
            _ => None,
        }
    }

    /// A member from a pidfd already checked by the caller.
    pub(crate) fn from_pidfd(pid: u32, fd: OwnedFd) -> Member {
        Member { pid, fd }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig`; `Ok(false)` once the process has ended.
    pub fn signal(&self, sig: Signal) -> io::Result<bool> {
        signal::pidfd(&self.fd, sig)
    }

    /// Whether it has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        pidfd_exited(&self.fd)
    }

    /// Returns once it has exited: the kernel says so through the pidfd,
    /// nothing is polled. Needs a tokio runtime.
    pub async fn exited(&self) -> io::Result<()> {
        let fd = self.exit_fd()?;
        let _ready = fd.readable().await?;
        Ok(())
    }

    /// A copy of the pidfd registered with the async runtime: it becomes
    /// readable once the process has exited. For a caller that waits for
    /// the end again and again (in a `select!` loop) without registering
    /// anew each time. Needs a tokio runtime.
    pub(crate) fn exit_fd(&self) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
        super::readable_fd(self.fd.try_clone()?).map_err(|(_, e)| e)
    }
}

/// A pidfd polls readable once its process has exited.
fn pidfd_exited(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// `pidfd_open` for a child just spawned (still registered, so the pid is
/// ours); `None` on kernels without it.
pub(crate) fn open_own(pid: u32) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(pid as i32)?, PidfdFlags::empty()).ok()
}
