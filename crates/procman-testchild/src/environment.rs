//! `env`: everything a process inherits from whoever spawned it.

use std::ffi::{CStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

use libc::c_int;

use crate::out::{escape, escape_word, say};
use crate::signals::{self, sleep_forever};
use crate::values::signal_name;

/// Prints, in this order:
///
/// ```text
/// env KEY=VALUE          one per variable, sorted by key
/// cwd PATH
/// args ARG...            spaces inside an argument escaped as \x20
/// pgid=N sid=N pid=N ppid=N
/// fds 0,1,2
/// stdin /dev/null        or: closed, pipe, socket, tty, file, other
/// sigblocked LIST        inherited blocked mask, e.g. SIGTERM,SIGINT or -
/// sigignored LIST        inherited SIG_IGN dispositions, SIGPIPE excluded
/// ```
///
/// With `stay`, it then prints `ready pid=N` and blocks.
pub fn env(stay: bool, args: &[OsString]) -> io::Result<u8> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    vars.sort();
    for (key, value) in vars {
        say!(
            "env {}={}",
            escape(key.as_bytes()),
            escape(value.as_bytes())
        );
    }
    let cwd = std::env::current_dir()?;
    say!("cwd {}", escape(cwd.as_os_str().as_bytes()));
    let words: Vec<String> = args
        .iter()
        .map(|a| format!(" {}", escape_word(a.as_bytes())))
        .collect();
    say!("args{}", words.concat());
    // SAFETY: these calls take no pointers and cannot fail for our own process.
    let (pgid, sid, pid, ppid) = unsafe {
        (
            libc::getpgrp(),
            libc::getsid(0),
            libc::getpid(),
            libc::getppid(),
        )
    };
    say!("pgid={pgid} sid={sid} pid={pid} ppid={ppid}");
    let fds: Vec<String> = open_fds()?.iter().map(c_int::to_string).collect();
    say!("fds {}", fds.join(","));
    say!("stdin {}", stdin_kind());
    say!("sigblocked {}", signal_list(&signals::blocked()));
    // The Rust runtime sets SIGPIPE to SIG_IGN before `main`, so what we
    // inherited for it is unknowable; leave it out rather than lie.
    let ignored: Vec<c_int> = signals::ignored()
        .into_iter()
        .filter(|&s| s != libc::SIGPIPE)
        .collect();
    say!("sigignored {}", signal_list(&ignored));
    if stay {
        say!("ready pid={pid}");
        sleep_forever();
    }
    Ok(0)
}

fn signal_list(sigs: &[c_int]) -> String {
    if sigs.is_empty() {
        return "-".into();
    }
    sigs.iter()
        .map(|&s| signal_name(s))
        .collect::<Vec<_>>()
        .join(",")
}

/// Open descriptors, read from /proc/self/fd (or /dev/fd elsewhere), minus
/// the one the directory listing itself uses.
fn open_fds() -> io::Result<Vec<c_int>> {
    for dir in [c"/proc/self/fd", c"/dev/fd"] {
        if let Some(fds) = list_fd_dir(dir) {
            return Ok(fds);
        }
    }
    Err(io::Error::other(
        "cannot list open fds: neither /proc/self/fd nor /dev/fd is readable",
    ))
}

fn list_fd_dir(path: &CStr) -> Option<Vec<c_int>> {
    // SAFETY: `path` is a valid NUL-terminated string.
    let dir = unsafe { libc::opendir(path.as_ptr()) };
    if dir.is_null() {
        return None;
    }
    // SAFETY: `dir` is a valid, open DIR stream.
    let own = unsafe { libc::dirfd(dir) };
    let mut fds = Vec::new();
    loop {
        // SAFETY: `dir` is valid; the returned entry stays valid until the
        // next readdir/closedir, and we copy what we need out of it first.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: `d_name` of a live dirent is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Some(fd) = name.to_str().ok().and_then(|s| s.parse::<c_int>().ok()) {
            if fd != own {
                fds.push(fd);
            }
        }
    }
    // SAFETY: `dir` came from opendir and is closed exactly once.
    unsafe { libc::closedir(dir) };
    fds.sort_unstable();
    Some(fds)
}

/// What fd 0 is: `/dev/null`, `closed`, `pipe`, `socket`, `tty`, `file` or `other`.
fn stdin_kind() -> &'static str {
    // SAFETY: an all-zero `stat` is a valid value for fstat/stat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid place for fstat to write into.
    if unsafe { libc::fstat(libc::STDIN_FILENO, &mut st) } != 0 {
        return "closed";
    }
    // SAFETY: as above.
    let mut null: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `null` is writable.
    let null_ok = unsafe { libc::stat(c"/dev/null".as_ptr(), &mut null) } == 0;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR if null_ok && st.st_rdev == null.st_rdev => "/dev/null",
        // SAFETY: `isatty` only inspects the descriptor.
        libc::S_IFCHR if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 => "tty",
        libc::S_IFIFO => "pipe",
        libc::S_IFSOCK => "socket",
        libc::S_IFREG => "file",
        _ => "other",
    }
}
