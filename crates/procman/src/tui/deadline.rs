//! A bound on how long the view takes to end after a signal to end it.
//!
//! The view's loop handles SIGINT, SIGTERM, SIGHUP and SIGQUIT within
//! milliseconds, unless it is stuck writing to a terminal that no longer
//! reads (a stalled ssh session): its one thread then never gets to the
//! signal. So each of those signals also wakes a thread of its own, which
//! waits [`GRACE`] and, if the process is still there, gives the terminal
//! its normal mode back (an ioctl, which writes nothing) and ends the
//! process at once, with exit code 1.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustix::pipe::{pipe_with, PipeFlags};

/// How long the loop has to end by itself.
const GRACE: Duration = Duration::from_secs(3);

/// Sets the deadline up; call once, before the terminal is taken.
pub fn arm() -> io::Result<()> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
    let write = Arc::new(write);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let write = write.clone();
        // SAFETY: the action runs in a signal handler: it makes one
        // write(2) system call on a pipe, which is async-signal-safe, and
        // ignores the result (a full pipe already holds a wake-up). The
        // registry keeps the closure, and with it the descriptor, alive.
        unsafe {
            signal_hook_registry::register(signal, move || {
                let _ = rustix::io::write(&*write, b"!");
            })
        }?;
    }
    std::thread::Builder::new()
        .name("tui-deadline".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            if let Ok(1) = rustix::io::read(&read, &mut byte) {
                std::thread::sleep(GRACE);
                let _ = crossterm::terminal::disable_raw_mode();
                // SAFETY: `_exit` ends the process at once and runs
                // nothing more: no flush of a stdout that blocks.
                unsafe { libc::_exit(1) };
            }
        })?;
    Ok(())
}
