//! What the manager does with each signal it can receive.
//!
//! | signal | meaning |
//! |---|---|
//! | SIGINT, SIGTERM, SIGQUIT | graceful shutdown; a second one kills every process at once, a third exits at once |
//! | SIGHUP | reload the config (as `procman reload`) |
//! | SIGUSR1 | reopen every log file |
//! | SIGUSR2 | every process's state to the manager log |
//! | every other signal whose default action ends the process | handled and logged at debug: nothing a user or the kernel sends by accident may end the manager and orphan its services |
//!
//! Left at their default action on purpose:
//! - SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS: they report
//!   a fault of the manager itself (or a seccomp filter refusing a system
//!   call); carrying on after one would supervise with a broken process.
//!   (tokio refuses handlers for SIGSEGV, SIGILL and SIGFPE anyway.)
//! - SIGKILL and SIGSTOP, which cannot be caught; SIGPIPE, which Rust's
//!   runtime already ignores (a write to a closed pipe is an error then);
//!   SIGCHLD, SIGURG, SIGWINCH, SIGCONT, whose default does nothing; SIGTSTP,
//!   SIGTTIN, SIGTTOU, the shell's job control, which only pause.
//!
//! Handled signals are reset to their default by `execve`, so children are
//! unaffected by any of this.

mod handlers;

use std::future::poll_fn;
use std::task::Poll;

use anyhow::Context as _;
use procman_core::outcome::Signal as Named;
use procman_core::platform::SpawnHalt;
use rustix::process::Signal as Sig;
use tokio::signal::unix::{signal, SignalKind};

/// The highest signal number on Linux (the kernel's `_NSIG`).
const LAST: i32 = 64;

/// What a signal asks of the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Shutdown,
    Reload,
    ReopenLogs,
    DumpStates,
    /// Handled only so that it does not end the manager; logged at debug.
    Harmless,
    /// Not handled: its default action stays (see the module docs).
    Default,
}

/// The table of the module docs, for signal number `n`.
pub fn disposition(n: i32) -> Disposition {
    const INT: i32 = Sig::INT.as_raw();
    const TERM: i32 = Sig::TERM.as_raw();
    const QUIT: i32 = Sig::QUIT.as_raw();
    const HUP: i32 = Sig::HUP.as_raw();
    const USR1: i32 = Sig::USR1.as_raw();
    const USR2: i32 = Sig::USR2.as_raw();
    const ALRM: i32 = Sig::ALARM.as_raw();
    const VTALRM: i32 = Sig::VTALARM.as_raw();
    const PROF: i32 = Sig::PROF.as_raw();
    const IO: i32 = Sig::IO.as_raw();
    const PWR: i32 = Sig::POWER.as_raw();
    const STKFLT: i32 = Sig::STKFLT.as_raw();
    const XCPU: i32 = Sig::XCPU.as_raw();
    const XFSZ: i32 = Sig::XFSZ.as_raw();
    // The kernel's real-time range; glibc keeps 32 and 33 for itself.
    const RT_FIRST: i32 = 32;
    match n {
        INT | TERM | QUIT => Disposition::Shutdown,
        HUP => Disposition::Reload,
        USR1 => Disposition::ReopenLogs,
        USR2 => Disposition::DumpStates,
        ALRM | VTALRM | PROF | IO | PWR | STKFLT | XCPU | XFSZ => Disposition::Harmless,
        RT_FIRST..=LAST => Disposition::Harmless,
        _ => Disposition::Default,
    }
}

/// Every signal the manager handles (all but those left at their default).
fn handled_numbers() -> Vec<i32> {
    (1..=LAST)
        .filter(|&n| disposition(n) != Disposition::Default)
        .collect()
}

/// Holds every signal the manager will handle, from the first moment of
/// `procman run` until [`Signals::install`] has its handlers in place: each
/// is blocked in the calling thread and in every thread created from it,
/// so one that arrives during start-up (loading the config, creating the
/// runtime) waits instead of ending the manager by its default action.
/// Call it on the thread that later runs `install` (`main`, which drives
/// the runtime's `block_on`); `install` unblocks them there, so that thread
/// is the one that runs the handlers. A failure leaves the signals
/// unblocked, which is how every earlier release ran.
pub fn hold() -> std::io::Result<()> {
    handlers::set_blocked(&handled_numbers(), true)
}

/// One received signal.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub number: i32,
    pub disposition: Disposition,
}

impl Received {
    /// `SIGTERM`, or `SIG40` for a signal without a name: for the log.
    pub fn name(self) -> String {
        Named(self.number).name()
    }
}

/// Every handled signal, installed at once.
pub struct Signals {
    handled: Vec<(Received, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Installs a handler for every signal that is not left at its
    /// default. Call it inside the runtime, before anything is started: a
    /// signal that arrives during start-up must find its handler in place.
    pub fn install() -> anyhow::Result<Signals> {
        let mut handled = Vec::new();
        let mut refused = Vec::new();
        for number in 1..=LAST {
            let disposition = disposition(number);
            if disposition == Disposition::Default {
                continue;
            }
            match signal(SignalKind::from_raw(number)) {
                Ok(s) => handled.push((
                    Received {
                        number,
                        disposition,
                    },
                    s,
                )),
                // glibc refuses handlers for the two real-time signals it
                // uses itself (32 and 33): see `handlers.rs`.
                Err(_) if disposition == Disposition::Harmless => refused.push(number),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot handle {}", Named(number).name()))
                }
            }
        }
        neutralise(&refused);
        let numbers: Vec<i32> = handled.iter().map(|(r, _)| r.number).collect();
        if let Err(e) = handlers::mask_during_handlers(&numbers) {
            tracing::warn!(error = %e, "cannot keep signal handlers from nesting");
        }
        // Whatever arrived since `hold` is delivered now, to these handlers.
        handlers::set_blocked(&handled_numbers(), false)
            .context("cannot unblock the signals held during start-up")?;
        Ok(Signals { handled })
    }

    /// Makes every shutdown signal refuse new spawns inside its handler,
    /// before the manager's tasks get to it: during a start of hundreds of
    /// processes they are busy spawning, and would otherwise spawn on for
    /// tens of milliseconds. What the signal means is still decided by
    /// [`Signals::next`].
    pub fn halt_spawns_on_shutdown(&self, halt: &SpawnHalt) -> anyhow::Result<()> {
        for (received, _) in &self.handled {
            if received.disposition != Disposition::Shutdown {
                continue;
            }
            let halt = halt.clone();
            // SAFETY: the action runs in a signal handler; it only stores
            // to an atomic (`SpawnHalt::halt`), which is async-signal-safe,
            // and the registry keeps it alive as long as it is registered.
            unsafe { signal_hook_registry::register(received.number, move || halt.halt()) }
                .with_context(|| format!("cannot handle {}", received.name()))?;
        }
        Ok(())
    }

    /// The next signal received (cancel safe: a signal that arrives while
    /// the caller is busy elsewhere is kept for the next call).
    pub async fn next(&mut self) -> Received {
        poll_fn(|cx| {
            for (received, s) in &mut self.handled {
                if s.poll_recv(cx).is_ready() {
                    return Poll::Ready(*received);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Gives the signals tokio could not handle a do-nothing handler.
fn neutralise(refused: &[i32]) {
    if refused.is_empty() {
        return;
    }
    let names: Vec<String> = refused.iter().map(|&n| Named(n).name()).collect();
    match handlers::neutralise(refused, Sig::USR2.as_raw()) {
        Ok(()) => tracing::debug!(signals = ?names, "ignored by a handler of our own"),
        Err(e) => tracing::warn!(signals = ?names, error = %e,
            "cannot handle these signals; each would end the manager"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_that_would_end_the_manager_has_a_disposition() {
        let named = [
            (1, Disposition::Reload),
            (2, Disposition::Shutdown),
            (3, Disposition::Shutdown),
            (10, Disposition::ReopenLogs),
            (12, Disposition::DumpStates),
            (15, Disposition::Shutdown),
        ];
        for (n, want) in named {
            assert_eq!(disposition(n), want, "signal {n}");
        }
        // Default action "terminate" or "core" on Linux x86_64, minus the
        // faults of the manager itself.
        for n in [14, 16, 24, 25, 26, 27, 29, 30] {
            assert_eq!(disposition(n), Disposition::Harmless, "signal {n}");
        }
        for n in 32..=64 {
            assert_eq!(disposition(n), Disposition::Harmless, "signal {n}");
        }
        // Faults (ILL TRAP ABRT BUS FPE SEGV SYS), uncatchable (KILL STOP),
        // ignored by Rust (PIPE), default "ignore"/"continue"/"stop".
        for n in [4, 5, 6, 7, 8, 11, 31, 9, 19, 13, 17, 23, 28, 18, 20, 21, 22] {
            assert_eq!(disposition(n), Disposition::Default, "signal {n}");
        }
    }
}
