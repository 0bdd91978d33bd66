//! Sending signals, the raw calls. These take numbers, so they are only
//! safe where the caller knows the number still names its process: the
//! pid of an unreaped child of ours (checked under the reaper's lock), or
//! a pidfd, which names one process and never another (see `child.rs`).

use std::io;
use std::os::fd::AsFd;

use rustix::process::{Pid, Signal as Sig};

use crate::outcome::Signal;

/// Our signal as rustix's: named signals by name; the others (real-time
/// ones, which rustix only builds unchecked) after checking the range.
fn convert(sig: Signal) -> io::Result<Sig> {
    if let Some(named) = Sig::from_named_raw(sig.0) {
        return Ok(named);
    }
    if (1..=64).contains(&sig.0) {
        // SAFETY: a valid, non-zero signal number (Linux has 64). It is only
        // ever sent to another process, never used to change this
        // process's handlers or mask, so the libc's own use of 32 and 33
        // here is not disturbed.
        return Ok(unsafe { Sig::from_raw_unchecked(sig.0) });
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{sig} cannot be sent"),
    ))
}

fn pid(raw: i32) -> io::Result<Pid> {
    match Pid::from_raw(raw) {
        // Never 0, -1 or our own process (or, as PID 1, init itself).
        Some(p) if raw > 1 && raw as u32 != std::process::id() => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {raw}"),
        )),
    }
}

/// `Ok(false)`: there was no such process (any more).
fn delivered(r: rustix::io::Result<()>) -> io::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `kill(pid, sig)`.
pub(crate) fn process(raw: i32, sig: Signal) -> io::Result<bool> {
    delivered(rustix::process::kill_process(pid(raw)?, convert(sig)?))
}

/// `kill(-pgid, sig)`.
pub(crate) fn group(raw: i32, sig: Signal) -> io::Result<bool> {
    delivered(rustix::process::kill_process_group(
        pid(raw)?,
        convert(sig)?,
    ))
}

/// `pidfd_send_signal(fd, sig)`.
pub(crate) fn pidfd(fd: impl AsFd, sig: Signal) -> io::Result<bool> {
    delivered(rustix::process::pidfd_send_signal(fd, convert(sig)?))
}

/// Signals a process that is not one of ours and that the caller has
/// identified by other means (a test, a tool). The engine itself never
/// signals a bare pid: it goes through [`Child`](super::Child) and
/// [`Member`](super::Member).
pub fn signal_process(pid: u32, sig: Signal) -> io::Result<()> {
    process(pid as i32, sig).map(drop)
}
