//! The Linux fast path for spawning: `clone3(CLONE_INTO_CGROUP)`.
//!
//! Creating the child directly inside its cgroup avoids migrating it there
//! with a write to `cgroup.procs`, which waits for an RCU grace period
//! (several milliseconds on an idle machine: most of a restart's latency).
//! Needs Linux 5.7; where `clone3` is missing or filtered (old kernels,
//! some container seccomp profiles) the caller falls back to the portable
//! path, once and for all.
//!
//! Between `clone3` and `execve` the child only makes raw system calls on
//! memory prepared before the clone: no allocation, no locks.

use std::ffi::{c_char, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::account;
use super::spawn::{SpawnSpec, Stdio};

/// `struct clone_args` of the kernel ABI (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub(crate) enum CloneError {
    /// `clone3` itself failed: use the portable path (`permanent` when the
    /// kernel or a seccomp filter will never allow it).
    Unsupported { error: io::Error, permanent: bool },
    /// The child was created but could not exec.
    Exec(io::Error),
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
}

/// The environment the child gets: ours, overridden by `overrides`.
fn environment(overrides: &[(String, String)]) -> io::Result<Vec<CString>> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| OsStr::new(o) == k))
        .collect();
    vars.extend(overrides.iter().map(|(k, v)| (k.into(), v.into())));
    vars.iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv)
        })
        .collect()
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn raw(s: &Stdio, devnull: RawFd) -> Option<RawFd> {
    match s {
        Stdio::Inherit => None,
        Stdio::Null => Some(devnull),
        Stdio::Fd(fd) => Some(fd.as_raw_fd()),
    }
}

/// A child created by [`spawn`] that has not yet reported whether its
/// `exec` worked.
pub(crate) struct Pending {
    pub(crate) pid: u32,
    report: OwnedFd,
}

impl Pending {
    /// Blocks until the child has exec'd (`Ok`) or reported why it could
    /// not (`Err`, after which it exits with 127). Call this *without* the
    /// reaper's lock, so spawns and reaping go on meanwhile.
    pub(crate) fn wait_exec(self) -> Result<(), io::Error> {
        match read_errno(&self.report) {
            None => Ok(()),
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// Spawns `spec` as a new session leader inside the cgroup `cgroup` (a
/// directory descriptor). The caller holds the reaper's lock, registers
/// the pid, releases the lock, then calls [`Pending::wait_exec`].
pub(crate) fn spawn(spec: &SpawnSpec, cgroup: BorrowedFd<'_>) -> Result<Pending, CloneError> {
    let exec_err = |e: io::Error| CloneError::Exec(e);
    let program = cstring(spec.program.as_os_str().as_bytes()).map_err(exec_err)?;
    let mut argv = vec![program.clone()];
    for a in &spec.args {
        argv.push(cstring(a.as_bytes()).map_err(exec_err)?);
    }
    let envp = environment(&spec.env).map_err(exec_err)?;
    let cwd = cstring(spec.cwd.as_os_str().as_bytes()).map_err(exec_err)?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    let devnull = OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(exec_err)?,
    );
    let (err_r, err_w) = pipe().map_err(exec_err)?;
    let child = Child {
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: envp_ptrs.as_ptr(),
        cwd: cwd.as_ptr(),
        stdin: devnull.as_raw_fd(),
        stdout: raw(&spec.stdout, devnull.as_raw_fd()),
        stderr: raw(&spec.stderr, devnull.as_raw_fd()),
        err: err_w.as_raw_fd(),
        uid: spec.uid,
        gid: spec.gid,
        groups: spec.groups.as_deref(),
        nofile: spec.nofile,
    };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
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
        unsafe { child.exec() }
    }
    if pid < 0 {
        let error = io::Error::last_os_error();
        let permanent = matches!(error.raw_os_error(), Some(libc::ENOSYS | libc::EPERM));
        return Err(CloneError::Unsupported { error, permanent });
    }
    drop(err_w);
    Ok(Pending {
        pid: pid as u32,
        report: err_r,
    })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads the child's errno from the close-on-exec pipe: `None` when the
/// pipe closed empty, i.e. the exec succeeded.
fn read_errno(fd: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    loop {
        // SAFETY: `buf` is valid for 4 bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return (n == 4).then(|| i32::from_ne_bytes(buf));
    }
}

/// Everything the child needs, as raw pointers into memory the parent
/// prepared (and keeps alive until the clone returns).
struct Child<'a> {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdin: RawFd,
    stdout: Option<RawFd>,
    stderr: Option<RawFd>,
    err: RawFd,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<&'a [u32]>,
    nofile: Option<(u64, u64)>,
}

impl Child<'_> {
    /// # Safety
    /// Only in the child of `clone3`, with all pointers valid.
    unsafe fn exec(&self) -> ! {
        // SAFETY (whole body): raw system calls on valid descriptors and
        // pointers; no allocation, no locks, as required after a clone in a
        // multi-threaded process.
        unsafe {
            if libc::setsid() < 0 {
                self.fail()
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
            // A clean signal state: nothing blocked, SIGPIPE back to default
            // (Rust ignores it in the parent, and ignoring survives exec).
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if let Some((soft, hard)) = self.nofile {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) < 0 {
                    self.fail()
                }
            }
            if let Err(code) = account::switch(self.groups, self.gid, self.uid) {
                self.report(code)
            }
            if libc::chdir(self.cwd) < 0 {
                self.fail()
            }
            libc::execve(self.program, self.argv, self.envp);
            self.fail()
        }
    }

    unsafe fn redirect(&self, from: RawFd, to: RawFd) {
        // SAFETY: see `exec`. dup2 onto itself would keep close-on-exec set.
        unsafe {
            if from == to {
                let flags = libc::fcntl(from, libc::F_GETFD);
                libc::fcntl(from, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(from, to) < 0 {
                self.fail()
            }
        }
    }

    unsafe fn fail(&self) -> ! {
        // SAFETY: see `exec`.
        unsafe { self.report(*libc::__errno_location()) }
    }

    /// Sends `code` (an errno, maybe tagged by [`account::switch`]) to
    /// the parent and exits.
    unsafe fn report(&self, code: i32) -> ! {
        // SAFETY: see `exec`.
        unsafe {
            libc::write(self.err, (&code as *const i32).cast(), 4);
            libc::_exit(127)
        }
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
