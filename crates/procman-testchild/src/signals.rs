//! Signal dispositions and race-free waiting.
//!
//! Caught signals stay blocked except inside `sigsuspend`, and the handler
//! only sets a bit in an atomic. Checking the bits and going to sleep can
//! therefore never lose a wake-up, and no other code runs in signal context.

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

/// Bit `n` is set when signal `n` arrived and has not been taken yet.
static PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn record(sig: c_int) {
    if (1..64).contains(&sig) {
        PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

fn check(rc: c_int, what: &str) -> io::Result<()> {
    if rc == -1 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(())
}

fn set_of(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the set it is given; the signal
    // numbers come from our parser or libc constants, so `sigaddset` cannot
    // fail in a way that leaves the set uninitialised.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &sig in signals {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

fn set_handler(sig: c_int, handler: libc::sighandler_t, mask: libc::sigset_t) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty
    // restorer), and every field we rely on is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_mask = mask;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is fully initialised; the handler is either SIG_DFL,
    // SIG_IGN or `record`, which is async-signal-safe (one atomic RMW).
    let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    check(rc, "sigaction")
}

/// Restores the default action for `sig` (e.g. SIGPIPE, which the Rust
/// runtime ignores, so that a vanished reader kills us like any C program).
pub fn default(sig: c_int) -> io::Result<()> {
    set_handler(sig, libc::SIG_DFL, set_of(&[]))
}

/// Ignores `sig`; forked children inherit the setting.
pub fn ignore(sig: c_int) -> io::Result<()> {
    set_handler(sig, libc::SIG_IGN, set_of(&[]))
}

/// Unblocks `sig` in case the process that started us left it blocked.
pub fn unblock(sig: c_int) -> io::Result<()> {
    let set = set_of(&[sig]);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    check(rc, "sigprocmask")
}

/// Signals `1..=31` (the standard ones) that are currently blocked.
pub fn blocked() -> Vec<c_int> {
    let mut current = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: with a null new-set, `sigprocmask` only writes the current mask
    // into `current`; we read it only if the call succeeded.
    let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), current.as_mut_ptr()) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: initialised by the successful call above.
    let current = unsafe { current.assume_init() };
    // SAFETY: `current` is a valid set; `sigismember` only reads it.
    (1..32)
        .filter(|&sig| unsafe { libc::sigismember(&current, sig) } == 1)
        .collect()
}

/// Signals `1..=31` whose disposition is SIG_IGN.
pub fn ignored() -> Vec<c_int> {
    (1..32)
        .filter(|&sig| {
            let mut old = MaybeUninit::<libc::sigaction>::uninit();
            // SAFETY: with a null new action, `sigaction` only writes the
            // current one into `old`; we read it only on success.
            let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
            // SAFETY: initialised by the successful call.
            rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
        })
        .collect()
}

/// A set of caught signals and the mask to sleep with while waiting for them.
pub struct Catcher {
    wait_mask: libc::sigset_t,
}

impl Catcher {
    /// Blocks `signals` and routes them to the recording handler. From here
    /// on they are delivered only inside [`Catcher::wait`].
    ///
    /// Forked children inherit both the mask and the handler, so fork before
    /// installing a catcher.
    pub fn install(signals: &[c_int]) -> io::Result<Self> {
        let block = set_of(signals);
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `block` is initialised and `old` receives the previous mask.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &block, old.as_mut_ptr()) };
        check(rc, "sigprocmask")?;
        // SAFETY: initialised by the successful call above.
        let mut wait_mask = unsafe { old.assume_init() };
        for &sig in signals {
            set_handler(
                sig,
                record as extern "C" fn(c_int) as libc::sighandler_t,
                block,
            )?;
            // SAFETY: `wait_mask` is initialised; removing a valid signal
            // makes sure an inherited mask cannot keep it from us.
            unsafe { libc::sigdelset(&mut wait_mask, sig) };
        }
        Ok(Self { wait_mask })
    }

    /// Sleeps until one of the caught signals has arrived and returns it
    /// (the lowest-numbered one first, if several are pending).
    pub fn wait(&self) -> c_int {
        loop {
            if let Some(sig) = take_pending() {
                return sig;
            }
            // SAFETY: `wait_mask` is a valid set. `sigsuspend` always returns
            // -1/EINTR after a handler ran, which is exactly our wake-up.
            unsafe { libc::sigsuspend(&self.wait_mask) };
        }
    }
}

fn take_pending() -> Option<c_int> {
    let bits = PENDING.load(Ordering::SeqCst);
    if bits == 0 {
        return None;
    }
    let sig = bits.trailing_zeros();
    PENDING.fetch_and(!(1 << sig), Ordering::SeqCst);
    // `sig` is below 64.
    Some(sig as c_int)
}

/// Blocks until killed. Signals with a handler wake `pause`, so loop.
pub fn sleep_forever() -> ! {
    loop {
        // SAFETY: `pause` has no preconditions.
        unsafe { libc::pause() };
    }
}
