//! Spawning without copying the manager: `clone3` with `CLONE_VM |
//! CLONE_VFORK | CLONE_FILES`, the way `posix_spawn` creates a child.
//!
//! A child created by a plain `clone` gets a copy of the manager's page
//! tables and of its whole descriptor table, and its `exec` then tears
//! both down again. With thousands of processes the manager holds
//! thousands of descriptors (pipes, log files, pidfds), so every spawn
//! copied and closed them all: a cost per spawn that grows with the number
//! of processes already running, quadratic for a start of N. Here the
//! child shares the manager's memory and descriptor table instead, and:
//!
//! - runs on a stack of its own (a guarded mapping kept for all spawns),
//!   started by a small trampoline, since it cannot return into the
//!   frame that called `clone3`;
//! - first gives itself a private descriptor table holding only the
//!   lowest descriptors (`close_range(first, ~0, CLOSE_RANGE_UNSHARE)`,
//!   Linux 5.9: a copy of a few entries, not thousands). What it needs
//!   (its stdin, stdout, stderr, the exec report pipe, the cgroup files it
//!   joins, the descriptors it holds) was placed beforehand in reserved
//!   low *slots*, descriptors the launcher keeps open for that purpose;
//! - keeps the calling thread suspended until it has exec'd or exited
//!   (`CLONE_VFORK`), so nothing it reads can change under it, and the
//!   exec report is complete when `clone3` returns.
//!
//! A launcher's slots and stack serve one spawn at a time (its lock); a
//! few launchers let the runtime's threads spawn at once, each waiting
//! for its own child's exec.
//! Signals are blocked in the calling thread around the clone, so that no
//! handler of the manager ever runs in the child; the child sets every
//! handler back to its default before it unblocks them (see `clone.rs`).
//!
//! Where this is not possible (another architecture, no `clone3`, a kernel
//! before 5.9 without `CLOSE_RANGE_UNSHARE`, more descriptors than slots)
//! the child is created by the copying clone of `clone.rs`, as before.
//!
//! The price of `CLONE_VFORK`: a child that hangs before its `exec` (a
//! working directory on a dead network mount) holds the spawning thread.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::clone::Child;
use super::spawn::Step;

/// Reserved descriptors: stdin, stdout, stderr, the report pipe, one v2
/// `cgroup.procs`, the v1 hierarchies of the limits (memory, cpu, pids and
/// their companions) and the two held pipes, with room to spare.
const SLOTS: usize = 16;
/// The child's stack: the few frames before `execve`.
const STACK_SIZE: usize = 64 * 1024;
const CLOSE_RANGE_UNSHARE: libc::c_uint = 1 << 1;

/// False once the kernel refused `CLOSE_RANGE_UNSHARE` (before 5.9).
static UNSHARE_RANGE: AtomicBool = AtomicBool::new(true);
/// False once the kernel refused the shared clone itself.
static SHARED: AtomicBool = AtomicBool::new(true);

pub(crate) struct Launcher {
    /// Open on `/dev/null` while no spawn uses them.
    slots: [RawFd; SLOTS],
    /// What a slot is reset to after a spawn (a descriptor on `/dev/null`).
    idle: OwnedFd,
    /// The child keeps the descriptors below this number.
    keep_below: u32,
    stack: Stack,
}

// SAFETY: the raw descriptor numbers and the stack mapping are owned by the
// launcher and only used under its lock.
unsafe impl Send for Launcher {}

/// How many spawns can be under way at once: one per runtime thread on
/// most machines, with their slots and stacks kept for the manager's life.
const LAUNCHERS: usize = 4;

static LAUNCHER: OnceLock<Vec<Mutex<Launcher>>> = OnceLock::new();

/// Reserves the slots and the stacks. Called early (when the reaper
/// starts), so that the slots are low descriptors and the child's private
/// table stays small; a later first spawn would reserve them itself.
pub(crate) fn prepare() {
    let _ = launchers();
}

/// The launchers made; empty when not even one could be (then every spawn
/// copies).
fn launchers() -> &'static [Mutex<Launcher>] {
    LAUNCHER.get_or_init(|| {
        let mut made = Vec::with_capacity(LAUNCHERS);
        for _ in 0..LAUNCHERS {
            match Launcher::new() {
                Ok(l) => made.push(Mutex::new(l)),
                Err(e) => {
                    tracing::debug!(error = %e, made = made.len(), "fewer launchers for shared clones");
                    break;
                }
            }
        }
        made
    })
}

/// Whether spawns can share the manager's memory on this machine.
pub(crate) fn available() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
        && SHARED.load(Ordering::Relaxed)
        && UNSHARE_RANGE.load(Ordering::Relaxed)
        && !launchers().is_empty()
}

/// Spawns copy from now on (the kernel refused the shared clone).
pub(crate) fn disable() {
    SHARED.store(false, Ordering::Relaxed);
}

/// A launcher, for one spawn: a free one, else one of the busy (taken
/// in turn, so waits spread evenly).
pub(crate) fn lock() -> Option<MutexGuard<'static, Launcher>> {
    if !available() {
        return None;
    }
    let all = launchers();
    for l in all {
        match l.try_lock() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let l = all.get(NEXT.fetch_add(1, Ordering::Relaxed) % all.len())?;
    Some(l.lock().unwrap_or_else(|p| p.into_inner()))
}

impl Launcher {
    fn new() -> io::Result<Launcher> {
        let idle = OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?,
        );
        let mut slots = [-1; SLOTS];
        let mut owned = Vec::with_capacity(SLOTS);
        for slot in &mut slots {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new
            // descriptor (or -1), which we take ownership of at once.
            let fd = unsafe { libc::fcntl(idle.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just created and is owned by nobody else.
            owned.push(unsafe { OwnedFd::from_raw_fd(fd) });
            *slot = fd;
        }
        let keep_below = slots.iter().copied().max().unwrap_or(2) as u32 + 1;
        let stack = Stack::new()?;
        // The slots stay open for the manager's life: leak the owners.
        owned.into_iter().for_each(std::mem::forget);
        Ok(Launcher {
            slots,
            idle,
            keep_below,
            stack,
        })
    }

    /// Creates `child` sharing the manager's memory and descriptors (see the
    /// module's doc), with `flags` and `cgroup` as for `clone3`. `None`:
    /// not possible for this child (too many descriptors): use the copying
    /// clone.
    pub(crate) fn clone(
        &mut self,
        child: &Child,
        flags: u64,
        cgroup: Option<RawFd>,
        pidfd: &mut libc::c_int,
        parent_tid: *mut i32,
    ) -> Option<io::Result<u32>> {
        let mut parked = Parked::new(self);
        let mut join = [-1; SLOTS];
        let mut join_v1 = [-1; SLOTS];
        let mut hold = child.hold;
        // SAFETY: `join`/`join_v1` point to `join_len`/`join_v1_len`
        // descriptors the caller keeps open.
        let (join_src, v1_src) = unsafe {
            (
                std::slice::from_raw_parts(child.join, child.join_len),
                std::slice::from_raw_parts(child.join_v1, child.join_v1_len),
            )
        };
        let placed = (|| {
            let stdin = parked.park(child.stdin)?;
            let stdout = match child.stdout {
                Some(fd) => Some(parked.park(fd)?),
                None => None,
            };
            let stderr = match child.stderr {
                Some(fd) => Some(parked.park(fd)?),
                None => None,
            };
            let report = parked.park(child.report.get())?;
            for (to, &from) in join.iter_mut().zip(join_src) {
                *to = parked.park(from)?;
            }
            for (to, &from) in join_v1.iter_mut().zip(v1_src) {
                *to = parked.park(from)?;
            }
            for held in hold.iter_mut().take(child.hold_len) {
                held.0 = parked.park(held.0)?;
            }
            Some((stdin, stdout, stderr, report))
        })();
        let Some((stdin, stdout, stderr, report)) = placed else {
            // More descriptors than slots (or a dup failed): not this way.
            return None;
        };
        let shared = Child {
            stdin,
            stdout,
            stderr,
            report: std::cell::Cell::new(report),
            join: join.as_ptr(),
            join_v1: join_v1.as_ptr(),
            hold,
            ..child.clone()
        };
        let start = Start {
            child: &shared,
            keep_below: self.keep_below,
            join_cgroups: cgroup.is_none(),
        };
        let mut args = super::clone::CloneArgs {
            flags: flags | CLONE_VM | CLONE_VFORK | CLONE_FILES,
            pidfd: pidfd as *mut libc::c_int as u64,
            parent_tid: parent_tid as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: self.stack.base as u64,
            stack_size: STACK_SIZE as u64,
            ..Default::default()
        };
        if let Some(dir) = cgroup {
            args.cgroup = dir as u64;
        }
        let blocked = BlockSignals::new();
        // SAFETY: `args` is a valid clone_args with a stack the child owns
        // while we wait (CLONE_VFORK suspends this thread until it has
        // exec'd or exited); `start` and everything it points to live on
        // this frame, which does not return before then.
        let pid = unsafe { trampoline::clone3(&args, enter, (&start as *const Start).cast()) };
        drop(blocked);
        drop(parked);
        Some(if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid as u32)
        })
    }
}

const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_VFORK: u64 = libc::CLONE_VFORK as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;

/// What the child is started with.
struct Start<'a> {
    child: &'a Child,
    keep_below: u32,
    join_cgroups: bool,
}

/// The child's first function, on its own stack, sharing our memory.
unsafe extern "C" fn enter(arg: *const c_void) -> ! {
    // SAFETY: `arg` is the `Start` the parent keeps alive while it waits.
    // Only raw system calls from here on, as in `Child::exec`.
    unsafe {
        let start = &*arg.cast::<Start<'_>>();
        // A private descriptor table with only the low descriptors (the
        // slots among them): the manager's own table is left untouched.
        if libc::syscall(
            libc::SYS_close_range,
            start.keep_below,
            libc::c_uint::MAX,
            CLOSE_RANGE_UNSHARE,
        ) < 0
        {
            if *libc::__errno_location() == libc::EINVAL {
                UNSHARE_RANGE.store(false, Ordering::Relaxed);
            }
            // A copy of the whole table: slower, as correct.
            if libc::syscall(libc::SYS_unshare, libc::CLONE_FILES) < 0 {
                start.child.fail(Step::Stdio)
            }
        }
        start.child.exec(start.join_cgroups)
    }
}

/// The descriptors of one spawn, placed in slots; set back to `/dev/null`
/// when dropped, so that the manager holds no end of the child's pipes.
struct Parked<'a> {
    launcher: &'a Launcher,
    used: usize,
}

impl<'a> Parked<'a> {
    fn new(launcher: &'a Launcher) -> Self {
        Parked { launcher, used: 0 }
    }

    /// Places `fd` in the next free slot; its number there.
    fn park(&mut self, fd: RawFd) -> Option<RawFd> {
        let slot = *self.launcher.slots.get(self.used)?;
        // SAFETY: dup3 onto a slot the launcher owns, from a descriptor the
        // caller keeps open.
        if unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) } < 0 {
            return None;
        }
        self.used += 1;
        Some(slot)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        for &slot in &self.launcher.slots[..self.used] {
            // SAFETY: as in `park`; /dev/null replaces what the slot held.
            unsafe { libc::dup3(self.launcher.idle.as_raw_fd(), slot, libc::O_CLOEXEC) };
        }
    }
}

/// Every signal blocked in this thread until dropped.
struct BlockSignals(libc::sigset_t);

impl BlockSignals {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask
        // only read and write the sets given.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockSignals(old)
        }
    }
}

impl Drop for BlockSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// The child's stack: a private mapping with a guard page below it.
struct Stack {
    /// Lowest usable address (just above the guard page).
    base: *mut u8,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        let page = 4096;
        // SAFETY: a new anonymous mapping; nothing else refers to it.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(p, page, libc::PROT_NONE) < 0 {
                let e = io::Error::last_os_error();
                libc::munmap(p, STACK_SIZE + page);
                return Err(e);
            }
            Ok(Stack {
                base: p.cast::<u8>().add(page),
            })
        }
    }
}

mod trampoline {
    //! `clone3` with a new stack: the child cannot return from the system
    //! call into its caller's frame (that frame is the parent's, on
    //! another stack), so it calls `entry(arg)` straight from the
    //! instruction after `syscall`, on the stack the kernel switched it
    //! to. `entry` never returns.

    use std::ffi::c_void;

    use super::super::clone::CloneArgs;

    pub(super) type Entry = unsafe extern "C" fn(*const c_void) -> !;

    /// # Safety
    /// `args` must be valid, with a 16-byte aligned stack top that stays
    /// mapped while the child runs; `entry(arg)` must be safe to run there.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn clone3(args: &CloneArgs, entry: Entry, arg: *const c_void) -> isize {
        let ret: isize;
        // SAFETY: see above. In the parent `syscall` returns the pid (or
        // -errno) and the jump skips the child's part; rcx and r11 are
        // clobbered by `syscall`.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, r12",
                "call r13",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args as *const CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                in("r12") arg,
                in("r13") entry,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        set_errno(ret)
    }

    /// # Safety
    /// As for x86_64.
    #[cfg(target_arch = "aarch64")]
    pub(super) unsafe fn clone3(args: &CloneArgs, entry: Entry, arg: *const c_void) -> isize {
        let ret: isize;
        // SAFETY: see above; the kernel preserves x20 and x21.
        unsafe {
            std::arch::asm!(
                "svc 0",
                "cbnz x0, 2f",
                "mov x0, x20",
                "blr x21",
                "brk #0",
                "2:",
                inlateout("x0") args as *const CloneArgs => ret,
                in("x1") std::mem::size_of::<CloneArgs>(),
                in("x8") libc::SYS_clone3,
                in("x20") arg,
                in("x21") entry,
                options(nostack),
            );
        }
        set_errno(ret)
    }

    /// Elsewhere: never called ([`super::available`] says no).
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn clone3(_: &CloneArgs, _: Entry, _: *const c_void) -> isize {
        set_errno(-(libc::ENOSYS as isize))
    }

    /// A raw system call's `-errno` as the libc convention: -1 and `errno`.
    fn set_errno(ret: isize) -> isize {
        if (-4095..0).contains(&ret) {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = -ret as i32 };
            -1
        } else {
            ret
        }
    }
}

#[cfg(test)]
#[path = "tests/launcher.rs"]
mod tests;
