//! The plumbing under the manager's signal handlers.
//!
//! **No nesting.** tokio installs its handlers (through signal-hook) with an
//! empty `sa_mask`, so a burst of different signals nests one handler frame
//! on another. On a thread's stack that is harmless, but glibc runs its own
//! handler for signal 33 on the alternate signal stack (`SA_ONSTACK`), and
//! the one Rust's runtime sets up is a few kilobytes: a burst that arrives
//! while that handler runs nests there and overflows it (SIGSEGV, seen with
//! `kill -33` among forty other signals). [`mask_during_handlers`] gives
//! each handler a mask of every signal but the faults, so at most one of
//! ours ever runs on top of glibc's.
//!
//! **Signals glibc keeps for itself**: 32 (thread cancellation) and 33 (the
//! `set*id` broadcast to every thread). Its `sigaction` refuses both, so
//! tokio cannot handle them. glibc installs a handler for 33 when the first
//! thread is created (it ignores a 33 it did not send), but for 32 only
//! when a thread is first cancelled, which this program never does: until
//! then `kill -32 <manager>` would end the manager and orphan every
//! service. [`neutralise`] installs a handler that does nothing with the
//! `rt_sigaction` system call itself. On x86_64 the kernel returns from a
//! handler through the "restorer" that the C library registers with every
//! action; ours copies the flags and restorer of an action glibc installed,
//! so it returns the same way. A handler, unlike SIG_IGN, is reset to the
//! default by `execve`: children never inherit it. Should glibc ever need
//! signal 32, it installs its own handler over ours, as it expects.

use std::ffi::c_int;
use std::io;

/// Faults of the manager itself: never blocked, even inside a handler.
const FAULTS: [c_int; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Blocks (or unblocks) `signals` in the calling thread; threads it
/// creates afterwards start with its mask.
pub fn set_blocked(signals: &[c_int], blocked: bool) -> io::Result<()> {
    // SAFETY: `sigset_t` is plain data for which all zeroes is valid, and
    // sigemptyset makes it a proper empty set before any use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is live and writable; these only set its bits.
    unsafe {
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
    }
    let how = if blocked {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: `set` is a valid signal set; the old mask is not asked for.
    match unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Re-installs the handler of each of `signals` with a mask of every
/// signal but [`FAULTS`]; signals without a handler are left alone.
pub fn mask_during_handlers(signals: &[c_int]) -> io::Result<()> {
    for &sig in signals {
        // SAFETY: `sigaction` is plain data for which all zeroes is valid.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: with a null new action, sigaction only writes the current
        // one into `action`, which is live and writable.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut action) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if action.sa_sigaction == libc::SIG_DFL || action.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        // SAFETY: `sa_mask` is a valid, initialised signal set; these only
        // set and clear its bits.
        unsafe {
            libc::sigfillset(&mut action.sa_mask);
            for f in FAULTS {
                libc::sigdelset(&mut action.sa_mask, f);
            }
        }
        // SAFETY: the same handler, flags and restorer that were installed
        // a moment ago, with a wider mask: nothing the handler relies on
        // changes.
        if unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The kernel's `struct sigaction` (not libc's) on x86_64 and aarch64.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct KernelAction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    /// Bit `n - 1` is signal `n`.
    mask: u64,
}

/// The size of the kernel's signal set, which `rt_sigaction` insists on.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
const SIGSET_BYTES: usize = std::mem::size_of::<u64>();

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
extern "C" fn ignore(_: c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn query(sig: c_int) -> io::Result<KernelAction> {
    let mut old = KernelAction::default();
    // SAFETY: with a null new action, rt_sigaction only writes the current
    // action into `old`, a live, writable kernel sigaction of the right size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<KernelAction>(),
            &mut old as *mut KernelAction,
            SIGSET_BYTES,
        )
    };
    if r == 0 {
        Ok(old)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs the do-nothing handler on each of `signals` still at its
/// default action, modelled on the action glibc installed for `template`.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn neutralise(signals: &[c_int], template: c_int) -> io::Result<()> {
    let model = query(template)?;
    if model.handler == libc::SIG_DFL || model.handler == libc::SIG_IGN {
        return Err(io::Error::other(format!(
            "signal {template} has no handler to model one on"
        )));
    }
    let mask = FAULTS.iter().fold(u64::MAX, |m, &f| m & !(1u64 << (f - 1)));
    for &sig in signals {
        if query(sig)?.handler != libc::SIG_DFL {
            continue;
        }
        let action = KernelAction {
            handler: ignore as *const () as usize,
            flags: model.flags | libc::SA_SIGINFO as libc::c_ulong,
            restorer: model.restorer,
            mask,
        };
        // SAFETY: `action` is a complete kernel sigaction whose handler is a
        // function that touches nothing (async-signal-safe by being empty)
        // and whose flags and restorer are the ones the C library uses for
        // its own handlers, so the kernel can return from it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &action as *const KernelAction,
                std::ptr::null_mut::<KernelAction>(),
                SIGSET_BYTES,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Elsewhere the reserved signals keep their default.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn neutralise(signals: &[c_int], _template: c_int) -> io::Result<()> {
    Err(io::Error::other(format!(
        "no handler for signals {signals:?} on this platform"
    )))
}
