//! Adopting a process that an earlier manager spawned, after that manager
//! died (even by SIGKILL) or detached: the same process, never a stranger
//! that was given its pid since.
//!
//! A process is named by its pid *and* its start time (`/proc/<pid>/stat`
//! field 22, in clock ticks since boot) *and* the boot it started in
//! (`/proc/sys/kernel/random/boot_id`): a pid is reused, the three
//! together never are. The check is made after the pidfd is opened, so
//! the pidfd is known to name that process: if the pid had been reused
//! between the open and the check, the check sees the stranger.
//!
//! An adopted process is not our child: its real parent (init, or the
//! nearest subreaper) reaps it and gets its exit status. We hear of its
//! end through the pidfd, and read its status from `/proc/<pid>/stat`
//! (field 52) if it is still a zombie at that instant, through a
//! descriptor of its `/proc` directory opened while it was alive (so a
//! later process with the same pid cannot answer for it). When its parent
//! was quicker, the end is [`ProcessEnd::Unknown`].
//!
//! Its output pipes are found again through `/proc/<pid>/fd/<n>`: each
//! child holds a duplicate of the read end of its own pipes at a fixed
//! descriptor ([`HOLD_FDS`]), so the pipes outlive the manager, and their
//! pipe inodes, kept in the state file, say that the descriptor found is
//! still that pipe.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use rustix::fs::{fstat, openat, FileType, Mode, OFlags, CWD};
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::sync::oneshot;

use super::child::Child;
use super::procstat;
use crate::outcome::{ProcessEnd, Signal};

/// Where a child holds the read ends of its stdout and stderr pipes: high
/// enough to be out of the way of a program's own descriptors (which are
/// handed out lowest first), below 64 so that the kernel's initial
/// descriptor table of the child does not have to grow for them.
pub const HOLD_FDS: [i32; 2] = [62, 63];

/// Why a process named by a state file was not adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No process has that pid now.
    Gone,
    /// It ended and its parent has not reaped it yet: how it ended.
    Ended(ProcessEnd),
    /// A process has that pid, but it started at another time: a stranger
    /// that was given the recycled pid. It is left alone.
    Recycled { pid: u32 },
    /// The state file is from an earlier boot: every pid in it is stale.
    OtherBoot,
    /// `/proc` could not be read.
    Unreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Gone => f.write_str("it is no longer running"),
            Refusal::Ended(end) => write!(f, "it has ended ({end})"),
            Refusal::Recycled { pid } => write!(
                f,
                "pid {pid} now belongs to another process (started at another time); it is left alone"
            ),
            Refusal::OtherBoot => f.write_str("the state is from an earlier boot"),
            Refusal::Unreadable(why) => write!(f, "cannot read /proc: {why}"),
        }
    }
}

/// This boot's id (empty when the kernel does not say).
pub fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// The start time of `pid` (field 22 of its stat), `None` if it is gone.
pub fn start_time(pid: u32) -> Option<u64> {
    procstat::Stat::read(pid)
        .ok()
        .flatten()
        .map(|s| s.start_time)
}

/// The inode of a pipe, which names it for as long as any end is open.
pub fn pipe_inode(fd: impl AsFd) -> io::Result<u64> {
    Ok(fstat(fd)?.st_ino)
}

/// An adopted process and the channel its end arrives on.
pub struct Adopted {
    pub child: Child,
    pub exit: oneshot::Receiver<ProcessEnd>,
}

/// Adopts `pid` if it is the process that started at `start` (clock ticks
/// after boot) in boot `boot`. Needs a tokio runtime (its end is awaited
/// on a task).
pub fn adopt(pid: u32, start: u64, boot: &str) -> Result<Adopted, Refusal> {
    if !boot.is_empty() && !boot_id().is_empty() && boot != boot_id() {
        return Err(Refusal::OtherBoot);
    }
    let raw = Pid::from_raw(pid as i32).ok_or(Refusal::Gone)?;
    let pidfd = pidfd_open(raw, PidfdFlags::empty()).map_err(|e| match e {
        rustix::io::Errno::SRCH => Refusal::Gone,
        e => Refusal::Unreadable(e.to_string()),
    })?;
    let dir = openat(
        CWD,
        format!("/proc/{pid}"),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| Refusal::Gone)?;
    let stat = read_stat(&dir, pid).ok_or(Refusal::Gone)?;
    if stat.start_time != start {
        return Err(Refusal::Recycled { pid });
    }
    if stat.is_zombie() {
        let end = read_end(&dir, pid).unwrap_or(ProcessEnd::Unknown);
        return Err(Refusal::Ended(end));
    }
    let watched = pidfd
        .try_clone()
        .map_err(|e| Refusal::Unreadable(e.to_string()))?;
    let (tx, exit) = oneshot::channel();
    tokio::spawn(async move {
        let end = match super::readable_fd(watched) {
            Ok(fd) => match fd.readable().await {
                Ok(_) => read_end(&dir, pid).unwrap_or(ProcessEnd::Unknown),
                Err(_) => ProcessEnd::Unknown,
            },
            Err((_, e)) => {
                tracing::error!(pid, error = %e, "cannot watch an adopted process; it counts as ended");
                ProcessEnd::Unknown
            }
        };
        let _ = tx.send(end);
    });
    Ok(Adopted {
        child: Child::adopted(pid, pidfd),
        exit,
    })
}

/// The process that holds one of `pipes` (`(descriptor, pipe inode)`)
/// at its descriptor, and its start time: the child of a spawn whose
/// manager died before it could name it. Its own children inherit the
/// descriptors, so of all holders the one that started first (the
/// session leader on a tie) is the child. A scan of `/proc`, for the rare
/// state file written before a clone and never completed.
pub fn holder_of(pipes: &[(i32, u64)]) -> Option<(u32, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if pipes.is_empty() {
        return None;
    }
    let me = std::process::id();
    let mut best: Option<(u64, bool, u32)> = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let holds = pipes.iter().any(|&(fd, inode)| {
            std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .is_ok_and(|m| m.file_type().is_fifo() && m.ino() == inode)
        });
        if !holds {
            continue;
        }
        let Ok(Some(stat)) = procstat::Stat::read(pid) else {
            continue;
        };
        if stat.is_zombie() {
            continue;
        }
        // Earliest first; a session leader (the child calls setsid) first
        // among those of the same tick.
        let key = (stat.start_time, stat.session != pid, pid);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best.map(|(start, _, pid)| (pid, start))
}

/// Opens the read end of a pipe that process `pid` holds at `fd`, if it is
/// still the pipe with inode `inode`: non-blocking, close-on-exec.
pub fn reopen_pipe(pid: u32, fd: i32, inode: u64) -> io::Result<OwnedFd> {
    let path = format!("/proc/{pid}/fd/{fd}");
    let opened = openat(
        CWD,
        &path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&opened)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo || st.st_ino != inode {
        return Err(io::Error::other(format!(
            "{path} is no longer the process's output pipe"
        )));
    }
    Ok(opened)
}

fn read_stat_bytes(dir: &OwnedFd) -> Option<Vec<u8>> {
    let file = openat(dir, "stat", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut out = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        match rustix::io::read(&file, &mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

fn read_stat(dir: &OwnedFd, pid: u32) -> Option<procstat::Stat> {
    procstat::parse_bytes(pid, &read_stat_bytes(dir)?)
}

/// How the process ended, if it is a zombie still (field 52 of its stat
/// holds its wait status then).
fn read_end(dir: &OwnedFd, pid: u32) -> Option<ProcessEnd> {
    let bytes = read_stat_bytes(dir)?;
    let stat = procstat::parse_bytes(pid, &bytes)?;
    if !stat.is_zombie() {
        return None;
    }
    let status = procstat::exit_status(&bytes)?;
    Some(decode(status))
}

/// A wait status (as `waitpid` gives it) as a [`ProcessEnd`].
fn decode(status: i32) -> ProcessEnd {
    let sig = status & 0x7f;
    if sig == 0 {
        ProcessEnd::Exited((status >> 8) & 0xff)
    } else {
        ProcessEnd::Signaled {
            signal: Signal(sig),
            core: status & 0x80 != 0,
        }
    }
}

#[cfg(test)]
#[path = "tests/adopt.rs"]
mod tests;
