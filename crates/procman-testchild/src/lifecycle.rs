//! How the process ends: exit codes, signal deaths, and the reactions to
//! stop signals (`exit`, `crash`, `sleep`, `run`, `ignore-term`).

use std::io;
use std::thread;
use std::time::Duration;

use libc::c_int;

use crate::out::say;
use crate::signals::{self, Catcher};
use crate::values::signal_name;

fn pause_for(after: Option<Duration>) {
    if let Some(d) = after {
        thread::sleep(d);
    }
}

/// `exit CODE [--after DURATION]`
pub fn exit(code: u8, after: Option<Duration>) -> io::Result<u8> {
    pause_for(after);
    Ok(code)
}

/// `sleep DURATION`
pub fn sleep(duration: Duration) -> io::Result<u8> {
    thread::sleep(duration);
    Ok(0)
}

/// `crash SIGNAL [--after DURATION] [--core]`: dies by `signal`, whatever
/// disposition or mask we inherited.
///
/// Unless `core` is set, RLIMIT_CORE is lowered to 0 first: a crash test
/// should not wait for a core dump or leave `core` files behind.
pub fn crash(signal: c_int, after: Option<Duration>, core: bool) -> io::Result<u8> {
    pause_for(after);
    if !core {
        disable_core_dumps()?;
    }
    if signal != libc::SIGKILL && signal != libc::SIGSTOP {
        signals::default(signal)?;
    }
    signals::unblock(signal)?;
    // SAFETY: `raise` has no memory-safety preconditions.
    if unsafe { libc::raise(signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Signals whose default is to ignore (SIGCHLD) or stop (SIGSTOP) get here.
    Err(io::Error::other(format!(
        "{} did not terminate the process",
        signal_name(signal)
    )))
}

fn disable_core_dumps() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    limit.rlim_cur = 0;
    // SAFETY: `limit` is initialised; lowering the soft limit is always allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `run [--term-exit CODE] [--term-delay DURATION]`: a well-behaved service.
///
/// SIGTERM prints `got SIGTERM`, waits `term_delay`, exits `term_exit`.
/// SIGINT prints `got SIGINT` and exits 130. SIGHUP, SIGUSR1 and SIGUSR2 are
/// reported (`got SIGHUP`) and otherwise ignored, for reload tests.
pub fn run(term_exit: u8, term_delay: Option<Duration>) -> io::Result<u8> {
    let caught = [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ];
    let catcher = Catcher::install(&caught)?;
    say!("ready pid={}", std::process::id());
    loop {
        let sig = catcher.wait();
        say!("got {}", signal_name(sig));
        match sig {
            libc::SIGTERM => {
                pause_for(term_delay);
                return Ok(term_exit);
            }
            libc::SIGINT => return Ok(130),
            _ => {}
        }
    }
}

/// `ignore-term`: reports SIGTERM and SIGINT (`got SIGTERM`) and carries
/// on, so only SIGKILL (or another signal) ends it.
///
/// The signals are caught rather than set to SIG_IGN so that a test can see
/// that the polite signal really was sent before the escalation.
pub fn ignore_term() -> io::Result<u8> {
    let catcher = Catcher::install(&[libc::SIGTERM, libc::SIGINT])?;
    say!("ready pid={}", std::process::id());
    loop {
        let sig = catcher.wait();
        say!("got {}", signal_name(sig));
    }
}
