//! The one reader of `/proc/<pid>/stat`.
//!
//! Every question the engine asks `/proc` about a process (is it a zombie,
//! who is its parent, which group and session is it in, when did it start,
//! how much CPU time has it used) goes through [`Stat::read`], so there is
//! one answer to "what does an unreadable file mean": `Ok(None)` when the
//! process does not exist (it ended and was reaped, or never existed),
//! `Err` for anything else (no `/proc` mounted, a permission problem),
//! which callers must not take for either "alive" or "gone" without saying
//! so.
//!
//! A pid read here is only a name: it may belong to another process by the
//! time it is used. Code that acts on a process (signals it) first opens a
//! pidfd and then re-reads this file, see `child.rs`.

use std::io;

/// The fields of `/proc/<pid>/stat` the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `D`, `Z`, `T`, `X`, …
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Fields 14 and 15: clock ticks spent in user and in kernel mode.
    pub utime: u64,
    pub stime: u64,
    /// CPU time of its children that it has waited for (`cutime + cstime`).
    pub children_time: u64,
    /// Field 22: clock ticks after boot at which the process started. With
    /// the pid, it names one process for the life of the system.
    pub start_time: u64,
}

impl Stat {
    /// The process's stat, `Ok(None)` when no process has this pid.
    pub fn read(pid: u32) -> io::Result<Option<Stat>> {
        let mut buf = [0u8; STAT_MAX];
        match read_small(pid, &mut buf) {
            Ok(n) => parse(pid, &buf[..n]).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cannot parse /proc/{pid}/stat"),
                )
            }),
            // ENOENT: no such process; ESRCH: it ended while we read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Exited but not yet reaped (`Z`), or being torn down (`X`).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Room for any stat line: 52 fields of at most 20 characters, the
/// command name (at most 64 bytes) and the separators.
const STAT_MAX: usize = 2048;

/// Reads `/proc/<pid>/stat` into `buf`: one open and one read (the kernel
/// makes the whole line at the first read); returns its length.
fn read_small(pid: u32, buf: &mut [u8; STAT_MAX]) -> io::Result<usize> {
    use std::io::Write;
    let mut path = [0u8; 32];
    let mut w = &mut path[..];
    write!(w, "/proc/{pid}/stat\0")?;
    let path = std::ffi::CStr::from_bytes_until_nul(&path)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut n = 0;
    while n < buf.len() {
        match rustix::io::read(&fd, &mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                n += k;
                // The line ends with a newline: nothing more to read.
                if buf[n - 1] == b'\n' {
                    return Ok(n);
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("/proc/{pid}/stat is longer than {STAT_MAX} bytes"),
    ))
}

/// Whether `pid` names a live process (not a zombie). An unreadable
/// `/proc` counts as alive: the caller then waits for a real event instead
/// of acting on a guess.
pub fn alive(pid: u32) -> bool {
    match Stat::read(pid) {
        Ok(Some(stat)) => !stat.is_zombie(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// [`Stat`] from the bytes of a stat file read by the caller (through a
/// descriptor of the process's `/proc` directory, say).
pub(crate) fn parse_bytes(pid: u32, bytes: &[u8]) -> Option<Stat> {
    parse(pid, bytes)
}

/// Field 52 of a stat file: the wait status of a process that has exited
/// (a zombie), as `waitpid` would give it to its parent (Linux 3.5+).
pub(crate) fn exit_status(bytes: &[u8]) -> Option<i32> {
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    // The fields after the name start at field 3.
    rest.split_ascii_whitespace().nth(52 - 3)?.parse().ok()
}

/// `pid (comm) S ppid pgrp session …`: the command name may hold spaces
/// and parentheses, so the fields are counted from the last `)`.
fn parse(pid: u32, bytes: &[u8]) -> Option<Stat> {
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // Fields 7..=13 (tty_nr … cmajflt), then 14 and 15: utime, stime.
    let utime = fields.nth(7)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    // Fields 16 and 17: cutime, cstime; 18..=21 (priority …
    // itrealvalue), then 22: starttime.
    let cutime: u64 = fields.next()?.parse().ok()?;
    let cstime: u64 = fields.next()?.parse().ok()?;
    let start_time = fields.nth(4)?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
        session,
        utime,
        stime,
        children_time: cutime + cstime,
        start_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_command_name_with_spaces_and_parentheses() {
        let line = b"4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n";
        let s = parse(4242, line).expect("parses");
        assert_eq!(
            s,
            Stat {
                pid: 4242,
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                session: 4242,
                utime: 1,
                stime: 2,
                children_time: 0,
                start_time: 987_654,
            }
        );
        assert!(!s.is_zombie());
        assert!(parse(1, b"1 (x) Z").is_none(), "truncated");
    }

    #[test]
    fn own_stat_is_read_and_a_missing_pid_is_none() {
        let me = Stat::read(std::process::id()).unwrap().expect("self");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.start_time > 0);
        assert!(alive(std::process::id()));
        // Above the largest pid_max the kernel allows (2^22).
        assert_eq!(Stat::read(4_194_304 + 7).unwrap(), None);
        assert!(!alive(4_194_304 + 7));
    }
}
