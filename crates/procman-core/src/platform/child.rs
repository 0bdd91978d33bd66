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

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::procstat::Stat;
use super::reaper::{self, Registration};
use super::signal;
use crate::outcome::Signal;

/// A process we spawned.
#[derive(Debug)]
pub struct Child {
    pid: u32,
    /// Its entry in the reaper's table, which only it ever had.
    reg: Registration,
    /// `None` only on kernels without pidfds (before 5.3).
    pidfd: Option<OwnedFd>,
}

impl Child {
    pub(crate) fn new(reg: Registration, pidfd: Option<OwnedFd>) -> Child {
        Child {
            pid: reg.pid as u32,
            reg,
            pidfd,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn id(&self) -> ChildId {
        ChildId { reg: self.reg }
    }

    pub(crate) fn registration(&self) -> Registration {
        self.reg
    }

    /// Sends `sig` to this process. `Ok(false)`: it has already ended.
    pub fn signal(&self, sig: Signal) -> io::Result<bool> {
        match &self.pidfd {
            Some(fd) => signal::pidfd(fd, sig),
            None => {
                let table = reaper::lock();
                if !table.is_current(self.reg) {
                    return Ok(false);
                }
                signal::process(self.pid as i32, sig)
            }
        }
    }

    /// Sends `sig` to the process group this child leads, while it has not
    /// been reaped. `Ok(false)`: it has been, so the group's number may
    /// belong to someone else now and nothing is sent.
    pub fn signal_group(&self, sig: Signal) -> io::Result<bool> {
        let table = reaper::lock();
        if !table.is_current(self.reg) {
            return Ok(false);
        }
        signal::group(self.pid as i32, sig)
    }

    /// Whether any process is left in the group this child leads; `false`
    /// once the child has been reaped (the number is no longer its).
    pub fn group_alive(&self) -> bool {
        let table = reaper::lock();
        table.is_current(self.reg)
            && Pid::from_raw(self.pid as i32)
                .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => pidfd_exited(fd),
            None => {
                let table = reaper::lock();
                !table.is_current(self.reg) || !super::procstat::alive(self.pid)
            }
        }
    }

    /// Whether it has not been reaped yet (a zombie has not).
    pub fn is_unreaped(&self) -> bool {
        reaper::lock().is_current(self.reg)
    }
}

/// Names one child of ours for as long as it is unreaped, to ask about it
/// later (a liveness check) without holding its pidfd. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildId {
    reg: Registration,
}

impl ChildId {
    pub fn pid(&self) -> u32 {
        self.reg.pid as u32
    }

    /// Running: not reaped, and not a zombie waiting to be.
    pub fn is_running(&self) -> bool {
        let table = reaper::lock();
        table.is_current(self.reg) && super::procstat::alive(self.pid())
    }

    /// SIGKILL to the child and its group, while it is unreaped.
    pub(crate) fn kill(&self) {
        let table = reaper::lock();
        if table.is_current(self.reg) {
            let _ = signal::group(self.reg.pid, Signal::KILL);
            let _ = signal::process(self.reg.pid, Signal::KILL);
        }
    }

    /// An id that names no child (tests of code that only carries ids).
    #[cfg(test)]
    pub(crate) fn unregistered(pid: u32) -> ChildId {
        ChildId {
            reg: Registration::unregistered(pid as i32),
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
        let fd = pidfd_open(Pid::from_raw(pid as i32)?, PidfdFlags::empty()).ok()?;
        match Stat::read(pid) {
            Ok(Some(stat)) if is_ours(pid, &stat) => Some(Member { pid, fd }),
            _ => None,
        }
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
        let fd = super::readable_fd(self.fd.try_clone()?).map_err(|(_, e)| e)?;
        let _ready = fd.readable().await?;
        Ok(())
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
