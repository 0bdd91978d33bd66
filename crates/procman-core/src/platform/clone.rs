//! Creating a child on Linux: `clone3`, or `clone` where `clone3` is
//! refused, and what the child does before it execs.
//!
//! - `CLONE_PIDFD`: the child comes with a pidfd (Linux 5.2+), so it is
//!   known by identity from its first instant (see `child.rs`).
//! - `CLONE_INTO_CGROUP` (`clone3`, Linux 5.7+): the child is created
//!   directly inside its cgroup. Moving it there afterwards, by a write to
//!   `cgroup.procs`, waits for an RCU grace period (several milliseconds:
//!   most of a restart's latency). Where `clone3` is missing or filtered
//!   (old kernels, some container seccomp profiles) the plain `clone` is
//!   used, and the child joins its cgroup itself before it execs.
//!
//! Between the clone and `execve` the child only makes raw system calls on
//! memory prepared before the clone: no allocation, no locks (the parent is
//! multi-threaded; another thread may have held the allocator's lock at the
//! instant of the clone). When a step fails it writes the step and `errno`
//! to a close-on-exec pipe and exits with 127; the parent reads that pipe
//! (an empty pipe at its end means the exec worked).
//!
//! Pitfall: the raw `clone` system call's argument order differs on a few
//! architectures (s390's `CLONE_BACKWARDS2`); the order used here is the
//! one of x86_64 and aarch64, where the pidfd pointer is the third argument.

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::account::{self, IdentityStep};
use super::launcher;
use super::reaper::{self, Flight};
use super::spawn::Step;

/// `struct clone_args` of the kernel ABI (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub(crate) flags: u64,
    pub(crate) pidfd: u64,
    pub(crate) child_tid: u64,
    pub(crate) parent_tid: u64,
    pub(crate) exit_signal: u64,
    pub(crate) stack: u64,
    pub(crate) stack_size: u64,
    pub(crate) tls: u64,
    pub(crate) set_tid: u64,
    pub(crate) set_tid_size: u64,
    pub(crate) cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PARENT_SETTID: u64 = libc::CLONE_PARENT_SETTID as u64;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// False once `clone3` proved unavailable (old kernel, seccomp filter).
static CLONE3: AtomicBool = AtomicBool::new(true);
/// False once `CLONE_PIDFD` proved unknown to the kernel (before 5.2).
static PIDFD: AtomicBool = AtomicBool::new(true);

/// Everything the child needs, as raw values and pointers into memory the
/// parent prepared and keeps alive until the clone returns.
#[derive(Clone)]
pub(crate) struct Child {
    pub(crate) program: *const c_char,
    pub(crate) argv: *const *const c_char,
    pub(crate) envp: *const *const c_char,
    pub(crate) cwd: *const c_char,
    pub(crate) stdin: RawFd,
    pub(crate) stdout: Option<RawFd>,
    pub(crate) stderr: Option<RawFd>,
    /// The write end of the report pipe (moved in the child if it sits on
    /// a descriptor to hold, see `hold_descriptors`).
    pub(crate) report: std::cell::Cell<RawFd>,
    /// `cgroup.procs` files to write `0` to (join before exec), when the
    /// clone did not already place the child.
    pub(crate) join: *const RawFd,
    pub(crate) join_len: usize,
    /// `cgroup.procs` files of cgroup v1 hierarchies (the limits of a
    /// hybrid host), joined before exec in every case.
    pub(crate) join_v1: *const RawFd,
    pub(crate) join_v1_len: usize,
    pub(crate) nofile: Option<(u64, u64)>,
    /// Descriptors the program keeps, each at a given number, without
    /// close-on-exec: `(descriptor now, number in the program)`. At most
    /// [`MAX_HOLD`].
    pub(crate) hold: [(RawFd, RawFd); MAX_HOLD],
    pub(crate) hold_len: usize,
    /// Supplementary groups to set (`None`: leave them).
    pub(crate) groups: Option<(*const libc::gid_t, usize)>,
    pub(crate) gid: Option<u32>,
    pub(crate) uid: Option<u32>,
}

/// How many descriptors a child can be given to hold (see `Child::hold`).
pub(crate) const MAX_HOLD: usize = 2;

/// A child just created, before its exec report has been read.
pub(crate) struct Cloned {
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<OwnedFd>,
}

/// Creates the child. `cgroup` is its cgroup directory, if any; `child`
/// already lists the `cgroup.procs` descriptors it joins itself, used only
/// when the clone could not place it (`child.join` is ignored otherwise).
pub(crate) fn clone(
    child: &Child,
    cgroup: Option<BorrowedFd<'_>>,
    flight: &Flight,
) -> io::Result<Cloned> {
    if CLONE3.load(Ordering::Relaxed) {
        match clone3(child, cgroup, flight) {
            Ok(cloned) => return Ok(cloned),
            Err(e) if fork_failed(&e) => return Err(e),
            Err(e) => {
                // ENOSYS, EPERM (seccomp), E2BIG: never; anything else (a
                // cgroup that refuses CLONE_INTO_CGROUP): this time only.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EPERM | libc::E2BIG)
                ) {
                    CLONE3.store(false, Ordering::Relaxed);
                }
                tracing::debug!(error = %e, "clone3 refused; using clone");
            }
        }
    }
    // Its `parent_tid` carries the pidfd: the pid is set by hand, under
    // the lock the reaper takes before it looks at an exit.
    let held = reaper::lock();
    let cloned = clone_legacy(child)?;
    flight.set(cloned.pid as i32);
    drop(held);
    Ok(cloned)
}

/// Errors that mean the process could not be created at all (a limit, no
/// memory), rather than that this way of creating it is unsupported.
fn fork_failed(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::ENOSPC | libc::EUSERS)
    )
}

fn clone3(child: &Child, cgroup: Option<BorrowedFd<'_>>, flight: &Flight) -> io::Result<Cloned> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        // The kernel writes the pid to the flight's slot before the child
        // can run (see `reaper::Flight`).
        flags: CLONE_PIDFD | CLONE_PARENT_SETTID,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        parent_tid: flight.slot() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    let placed = cgroup.is_some();
    if let Some(mut launcher) = launcher::lock() {
        let dir = cgroup.map(|d| d.as_raw_fd());
        match launcher.clone(child, args.flags, dir, &mut pidfd, flight.slot()) {
            Some(Ok(pid)) => {
                return Ok(Cloned {
                    pid,
                    // SAFETY: with CLONE_PIDFD the kernel stored a new
                    // descriptor here.
                    pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
                });
            }
            Some(Err(e)) if fork_failed(&e) => return Err(e),
            Some(Err(e)) => {
                // A kernel that refuses the shared clone (and not clone3
                // itself, tried next): copy from now on.
                tracing::debug!(error = %e, "shared clone refused; copying");
                launcher::disable();
            }
            None => {}
        }
    }
    // SAFETY: `args` is a valid clone_args of the given size. Without
    // CLONE_VM the child runs on a private copy of this thread's memory, and
    // `Child::exec` only makes async-signal-safe calls before exec or _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: we are the new child; see above.
        unsafe { child.exec(!placed) }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Cloned {
        pid: pid as u32,
        // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor here.
        pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
    })
}

fn clone_legacy(child: &Child) -> io::Result<Cloned> {
    let mut with_pidfd = PIDFD.load(Ordering::Relaxed);
    loop {
        let mut pidfd: libc::c_int = -1;
        let flags = libc::SIGCHLD as u64 | if with_pidfd { CLONE_PIDFD } else { 0 };
        // SAFETY: as for clone3: no CLONE_VM, a null stack (the child runs on
        // its copy of ours), and the pidfd written to `pidfd` (the parent_tid
        // argument, as CLONE_PIDFD specifies).
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags,
                0usize,
                &mut pidfd as *mut libc::c_int,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            // SAFETY: we are the new child; see above.
            unsafe { child.exec(true) }
        }
        if pid < 0 {
            let e = io::Error::last_os_error();
            if with_pidfd && e.raw_os_error() == Some(libc::EINVAL) {
                PIDFD.store(false, Ordering::Relaxed);
                with_pidfd = false;
                continue;
            }
            return Err(e);
        }
        // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor here.
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
        return Ok(Cloned {
            pid: pid as u32,
            pidfd,
        });
    }
}

impl Child {
    /// # Safety
    /// Only in the child of a clone, with all pointers valid.
    pub(crate) unsafe fn exec(&self, join_cgroups: bool) -> ! {
        // SAFETY (whole body): raw system calls on valid descriptors and
        // pointers; no allocation, no locks, as required after a clone in a
        // multi-threaded process.
        unsafe {
            reset_signals();
            for i in 0..self.join_v1_len {
                if libc::write(*self.join_v1.add(i), b"0".as_ptr().cast(), 1) < 0 {
                    self.fail(Step::Cgroup)
                }
            }
            if join_cgroups {
                for i in 0..self.join_len {
                    // "0" moves the writing process: this child, before exec.
                    if libc::write(*self.join.add(i), b"0".as_ptr().cast(), 1) < 0 {
                        self.fail(Step::Cgroup)
                    }
                }
            }
            if libc::setsid() < 0 {
                self.fail(Step::Session)
            }
            self.redirect(self.stdin, 0);
            if let Some(fd) = self.stdout {
                self.redirect(fd, 1);
            }
            if let Some(fd) = self.stderr {
                self.redirect(fd, 2);
            }
            // Descriptors the manager inherited without close-on-exec (a
            // caller's pipe, a socket) must not leak into every service.
            mark_cloexec_from(3);
            // Before the descriptor limit is lowered: placing them needs
            // numbers the program's own limit may not allow.
            self.hold_descriptors();
            if let Some((soft, hard)) = self.nofile {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) < 0 {
                    self.fail(Step::Rlimit)
                }
            }
            let groups = self
                .groups
                .map(|(list, len)| std::slice::from_raw_parts(list, len));
            if let Err((step, errno)) = account::switch(groups, self.gid, self.uid) {
                let step = match step {
                    IdentityStep::Groups => Step::Groups,
                    IdentityStep::Group => Step::Group,
                    IdentityStep::User => Step::User,
                };
                self.report(step, errno)
            }
            if libc::chdir(self.cwd) < 0 {
                self.fail(Step::Chdir)
            }
            libc::execve(self.program, self.argv, self.envp);
            self.fail(Step::Exec)
        }
    }

    /// Places each held descriptor at its number, without close-on-exec
    /// (the report pipe is moved first if it sits on one of those
    /// numbers). Everything is first moved above the targets, so that no
    /// placement overwrites a descriptor still to be placed.
    unsafe fn hold_descriptors(&self) {
        // SAFETY: see `exec`: fcntl and dup2 on valid descriptors.
        unsafe {
            let hold = &self.hold[..self.hold_len.min(MAX_HOLD)];
            if hold.is_empty() {
                return;
            }
            let above = hold.iter().map(|&(_, to)| to).max().unwrap_or(0) + 1;
            let report = self.report.get();
            if hold.iter().any(|&(_, to)| to == report) {
                let moved = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, above);
                if moved < 0 {
                    self.fail(Step::Hold)
                }
                self.report.set(moved);
            }
            let mut moved = [-1; MAX_HOLD];
            for (i, &(from, _)) in hold.iter().enumerate() {
                moved[i] = libc::fcntl(from, libc::F_DUPFD_CLOEXEC, above);
                if moved[i] < 0 {
                    self.fail(Step::Hold)
                }
            }
            for (i, &(_, to)) in hold.iter().enumerate() {
                if libc::dup2(moved[i], to) < 0 {
                    self.fail(Step::Hold)
                }
            }
        }
    }

    unsafe fn redirect(&self, from: RawFd, to: RawFd) {
        // SAFETY: see `exec`. dup2 onto itself would keep close-on-exec set.
        unsafe {
            if from == to {
                let flags = libc::fcntl(from, libc::F_GETFD);
                libc::fcntl(from, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(from, to) < 0 {
                self.fail(Step::Stdio)
            }
        }
    }

    pub(crate) unsafe fn fail(&self, step: Step) -> ! {
        // SAFETY: see `exec`.
        unsafe { self.report(step, *libc::__errno_location()) }
    }

    /// Sends the failed step and its errno to the parent, and exits.
    unsafe fn report(&self, step: Step, errno: i32) -> ! {
        // SAFETY: see `exec`.
        unsafe {
            let report = [step as i32, errno];
            libc::write(self.report.get(), report.as_ptr().cast(), 8);
            libc::_exit(127)
        }
    }
}

/// Every signal back to its default action, and nothing blocked, whatever
/// the manager inherited or set: an ignored signal stays ignored across
/// exec (a manager started with `&` by a script passes SIGINT and SIGQUIT
/// ignored), and the mask is inherited as it is.
///
/// Raw system calls rather than glibc's `sigaction`, which refuses the two
/// real-time signals it reserves for itself (32 and 33): a program may
/// have left those ignored too (seen here: a test harness ignoring 32).
///
/// # Safety
/// Only in the child of a clone (it changes the whole process's handlers).
unsafe fn reset_signals() {
    // The kernel's `struct sigaction`, all zero: SIG_DFL, no flags, an
    // empty mask. 32 bytes cover its layout on x86_64 and aarch64.
    let default = [0u64; 4];
    let empty: u64 = 0;
    // Size of the kernel's signal set: 64 signals.
    const SIGSET_SIZE: usize = 8;
    // SAFETY: rt_sigaction and rt_sigprocmask are single system calls on
    // valid memory; no allocation, no locks. 64 is _NSIG - 1 on Linux.
    unsafe {
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    SIGSET_SIZE,
                );
            }
        }
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        );
    }
}

/// Sets close-on-exec on every descriptor from `first` up
/// (`close_range(CLOSE_RANGE_CLOEXEC)`, Linux 5.11; older kernels keep
/// what they have). Async-signal-safe: one system call.
pub(crate) fn mark_cloexec_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; errors are ignored.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
    }
}

pub(crate) fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

pub(crate) fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Reads the child's report from the close-on-exec pipe: `None` when the
/// pipe closed empty, i.e. the exec succeeded.
pub(crate) fn parse_report(buf: &[u8]) -> Option<(i32, i32)> {
    let step = i32::from_ne_bytes(buf.get(0..4)?.try_into().ok()?);
    let errno = i32::from_ne_bytes(buf.get(4..8)?.try_into().ok()?);
    Some((step, errno))
}
