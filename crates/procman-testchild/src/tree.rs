//! Process trees: grandchildren that try to escape the process group or the
//! parent (`grandchildren`), bursts of short-lived children
//! (`spawn-storm`), and more children than a process limit allows
//! (`fork-loop`).
//!
//! We are single-threaded whenever we fork, so the children may run ordinary
//! code; they never return into `main` and leave through `_exit` or a signal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libc::{c_int, pid_t};

use crate::out::say;
use crate::signals::{self, sleep_forever, Catcher};

/// A pipe that carries one pid from a forked process back to us; it is how a
/// grandchild says "my setup is done" before we print its line.
struct PidPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl PidPipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors `pipe` writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        Ok(unsafe {
            Self {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }

    /// In the forked process: send `pid` and exit on failure, since nobody
    /// could hear about it otherwise.
    fn send(self, pid: pid_t) {
        drop(self.read);
        let bytes = pid.to_ne_bytes();
        // SAFETY: `bytes` is live for the call; a 4-byte pipe write is atomic.
        if unsafe { libc::write(self.write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) } != 4 {
            // SAFETY: `_exit` is always safe to call in a forked child.
            unsafe { libc::_exit(100) };
        }
    }

    /// In the parent: wait for the pid, or EOF if the forked process died.
    fn receive(self) -> io::Result<pid_t> {
        drop(self.write);
        let mut bytes = [0u8; 4];
        let mut got = 0;
        while got < bytes.len() {
            let rest = &mut bytes[got..];
            // SAFETY: `rest` is a live, writable slice of the given length.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
            match n {
                0 => {
                    return Err(io::Error::other(
                        "forked process died before reporting its pid",
                    ))
                }
                // `n` is positive and at most `rest.len()`.
                n if n > 0 => got += n as usize,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return Err(io::Error::last_os_error()),
            }
        }
        Ok(pid_t::from_ne_bytes(bytes))
    }
}

enum Forked {
    Child,
    Parent(pid_t),
}

fn fork() -> io::Result<Forked> {
    // SAFETY: the process is single-threaded, so the child gets a consistent
    // copy of the whole address space (no lock can be held by a lost thread).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

fn exit_now(code: c_int) -> ! {
    // SAFETY: `_exit` skips atexit handlers and stdio flushing, which is what
    // a forked copy of this process must do.
    unsafe { libc::_exit(code) }
}

fn setsid_or_exit() {
    // SAFETY: `setsid` has no memory-safety preconditions.
    if unsafe { libc::setsid() } == -1 {
        exit_now(101);
    }
}

fn own_pid() -> pid_t {
    // SAFETY: `getpid` always succeeds.
    unsafe { libc::getpid() }
}

/// A grandchild that sleeps forever, after `setsid` if asked. Returns once
/// it has reported, so its session is already the one we print.
fn sleeper(new_session: bool) -> io::Result<pid_t> {
    let pipe = PidPipe::new()?;
    match fork()? {
        Forked::Child => {
            if new_session {
                setsid_or_exit();
            }
            pipe.send(own_pid());
            sleep_forever()
        }
        Forked::Parent(_) => pipe.receive(),
    }
}

/// The classic double fork: an intermediate calls `setsid`, forks the
/// daemon, hands its pid back and exits, so the daemon is reparented to the
/// nearest subreaper. Returns after we reaped the intermediate, by which
/// time the reparenting has happened.
fn daemon() -> io::Result<pid_t> {
    let pipe = PidPipe::new()?;
    let intermediate = match fork()? {
        Forked::Child => {
            setsid_or_exit();
            match fork() {
                Ok(Forked::Child) => {
                    drop(pipe);
                    sleep_forever()
                }
                Ok(Forked::Parent(pid)) => {
                    pipe.send(pid);
                    exit_now(0)
                }
                Err(_) => exit_now(102),
            }
        }
        Forked::Parent(pid) => pid,
    };
    let pid = pipe.receive();
    reap(intermediate, 0);
    pid
}

/// `waitpid` for `pid` (or any child for -1); returns the reaped pid.
fn reap(pid: pid_t, flags: c_int) -> Option<pid_t> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid place for waitpid to store the status.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        if got == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return (got > 0).then_some(got);
    }
}

/// `grandchildren [--daemon] [--ignore-term]`
pub fn grandchildren(with_daemon: bool, ignore_term: bool) -> io::Result<u8> {
    if ignore_term {
        // Set before forking: SIG_IGN is inherited by every grandchild.
        signals::ignore(libc::SIGTERM)?;
    }
    say!("grandchild pid={} kind=group", sleeper(false)?);
    say!("grandchild pid={} kind=setsid", sleeper(true)?);
    if with_daemon {
        say!("grandchild pid={} kind=daemon", daemon()?);
    }
    // Installed after the forks so the grandchildren keep a clean mask.
    let catcher = Catcher::install(&[libc::SIGCHLD])?;
    say!("ready pid={}", std::process::id());
    loop {
        while let Some(pid) = reap(-1, libc::WNOHANG) {
            say!("reaped pid={pid}");
        }
        catcher.wait();
    }
}

/// `spawn-storm N [--no-reap]`: forks `count` children that exit at once.
/// By default we reap them all before reporting; with `no_reap` they stay
/// zombies until we die and the subreaper inherits them.
pub fn spawn_storm(count: u32, reap_them: bool) -> io::Result<u8> {
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap for us.
    signals::default(libc::SIGCHLD)?;
    let mut pids = Vec::new();
    for _ in 0..count {
        match fork() {
            Ok(Forked::Child) => exit_now(0),
            Ok(Forked::Parent(pid)) => pids.push(pid),
            Err(e) => {
                say!(
                    "fork-failed after={} errno={}",
                    pids.len(),
                    e.raw_os_error().unwrap_or(0)
                );
                break;
            }
        }
    }
    if reap_them {
        for &pid in &pids {
            reap(pid, 0);
        }
    }
    say!("spawned {}", pids.len());
    sleep_forever()
}

/// `fork-loop N`: tries to fork `count` children that sleep forever.
/// Every attempt is made even after one failed (a process limit must hold
/// against all of them); the first failure is reported as `fork failed
/// errno=E`, then `forked K` counts the children made, and we block.
pub fn fork_loop(count: u32) -> io::Result<u8> {
    let mut forked = 0u32;
    let mut failed = false;
    for _ in 0..count {
        match fork() {
            Ok(Forked::Child) => sleep_forever(),
            Ok(Forked::Parent(_)) => forked += 1,
            Err(e) => {
                if !failed {
                    say!("fork failed errno={}", e.raw_os_error().unwrap_or(0));
                }
                failed = true;
            }
        }
    }
    say!("forked {forked}");
    sleep_forever()
}
