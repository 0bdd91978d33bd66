//! Finding a process that procman did not start (an `unmanaged` one) by
//! its pid, its pid file or its name, and holding it by identity.
//!
//! A pid read from a file or from `/proc` is only a name. A process found
//! is opened as a pidfd first and *then* checked again in `/proc` (see
//! [`Member::open_with_stat`]): the process the pidfd holds is the one
//! the check saw, or the pidfd's process has already ended, which the
//! caller hears at once. Its start time is kept with its pid
//! ([`Identity`]): the two name one process for the life of the system,
//! so a later liveness check or usage reading never mistakes a stranger
//! that got the same number for it.
//!
//! Matching by name (pure, see [`matches`]): the name must equal the
//! process's name as `/proc/<pid>/comm` has it (what `ps` and `pgrep`
//! show; the kernel cuts it to 15 bytes) or the last part of its
//! `argv[0]` (so a longer name matches too), and its command line, the
//! arguments joined by spaces, must contain `argument_match` when one is
//! given. The manager itself and its own children are never matched,
//! nor kernel threads (no command line) or zombies. Of several matches
//! the oldest (lowest start time) is taken.
//!
//! Everything here blocks on `/proc`: run it on the platform worker.

use std::time::{Duration, SystemTime};

use super::child::Member;
use super::pidfile;
use super::procstat::Stat;
use super::proctree;
use super::usage::{self, Sample, Sources};
use crate::config::{cut, Discovery};

/// One process for the life of the system: its pid and its start time
/// (clock ticks after boot, `/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    pub start_time: u64,
}

impl Identity {
    /// Whether this very process still runs (not a zombie): a pid now
    /// held by another process is not it.
    pub fn is_running(&self) -> bool {
        matches!(Stat::read(self.pid),
            Ok(Some(s)) if s.start_time == self.start_time && !s.is_zombie())
    }

    /// When it started, by the wall clock (`None` when `/proc/stat` has
    /// no boot time).
    pub fn started_at(&self) -> Option<SystemTime> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let boot: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let ticks = rustix::param::clock_ticks_per_second();
        let after_boot = Duration::from_millis(self.start_time.checked_mul(1000)? / ticks.max(1));
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(boot) + after_boot)
    }

    /// The process and its live descendants, itself first (empty once it
    /// has ended).
    pub fn tree(&self) -> Vec<u32> {
        if !self.is_running() {
            return Vec::new();
        }
        let mut pids = vec![self.pid];
        pids.extend(
            proctree::descendants(&[self.pid])
                .into_iter()
                .map(|(p, _)| p),
        );
        pids
    }

    /// What the process and its descendants use, summed from `/proc`
    /// (`fds`: count their open descriptors too).
    pub fn sample(&self, fds: bool) -> Sample {
        usage::sample(&Sources::default(), &self.tree(), fds)
    }
}

/// A process found, held by its pidfd.
#[derive(Debug)]
pub struct Found {
    pub member: Member,
    pub identity: Identity,
    /// How many processes matched (a name can match several; the oldest
    /// is the one found).
    pub matches: usize,
}

/// Looks for the process `how` describes, now; why none was found
/// otherwise (for the process's diagnostics).
pub fn find(how: &Discovery) -> Result<Found, String> {
    let single = |(member, identity)| Found {
        member,
        identity,
        matches: 1,
    };
    match how {
        Discovery::Pid(pid) => hold(*pid, None).map(single),
        Discovery::PidFile(path) => {
            let pid = pidfile::read(path)?;
            hold(pid, None)
                .map(single)
                .map_err(|e| format!("pid file {} names pid {pid}, but {e}", path.display()))
        }
        Discovery::ProcessName {
            name,
            argument_match,
        } => by_name(name, argument_match.as_deref()),
    }
}

/// Opens `pid` and checks it after the open: running, not the manager,
/// and (`start_time`) the very process a scan saw.
fn hold(pid: u32, start_time: Option<u64>) -> Result<(Member, Identity), String> {
    if pid == std::process::id() {
        return Err(format!("pid {pid} is procman itself"));
    }
    let (member, stat) = Member::open_with_stat(pid, |_, stat| {
        !stat.is_zombie() && start_time.is_none_or(|t| t == stat.start_time)
    })
    .ok_or_else(|| format!("no process with pid {pid} is running"))?;
    if stat.ppid == std::process::id() {
        return Err(format!(
            "pid {pid} is a process procman started itself, not an unmanaged one"
        ));
    }
    // The check read a stranger that took the number after the pidfd's
    // process ended: not found (yet).
    if member.has_exited() {
        return Err(format!("process {pid} has ended"));
    }
    let identity = Identity {
        pid,
        start_time: stat.start_time,
    };
    Ok((member, identity))
}

/// The oldest process that [`matches`], other than the manager and its
/// children.
fn by_name(name: &str, argument_match: Option<&str>) -> Result<Found, String> {
    let me = std::process::id();
    let mut seen: Vec<Stat> = pids()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            matches(name, argument_match, &comm, &cmdline)
        })
        .filter_map(|pid| Stat::read(pid).ok().flatten())
        .filter(|s| s.ppid != me && !s.is_zombie())
        .collect();
    seen.sort_by_key(|s| (s.start_time, s.pid));
    // The oldest that can still be held: one may end meanwhile.
    let held = seen
        .iter()
        .find_map(|s| hold(s.pid, Some(s.start_time)).ok());
    match held {
        Some((member, identity)) => Ok(Found {
            member,
            identity,
            matches: seen.len(),
        }),
        None => Err(match argument_match {
            None => format!("no process named `{}` is running", cut(name)),
            Some(a) => format!(
                "no process named `{}` whose command line contains `{}` is running",
                cut(name),
                cut(a)
            ),
        }),
    }
}

/// Every pid in `/proc` now.
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// Whether a process whose `/proc/<pid>/comm` is `comm` and whose
/// `/proc/<pid>/cmdline` is `cmdline` (NUL-separated arguments) is the
/// one `name` and `argument_match` describe. A process without a command
/// line (a kernel thread, a zombie) never is.
pub fn matches(name: &str, argument_match: Option<&str>, comm: &[u8], cmdline: &[u8]) -> bool {
    let cmdline = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    if cmdline.is_empty() {
        return false;
    }
    let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let named = comm == name.as_bytes() || base == name.as_bytes();
    named
        && argument_match.is_none_or(|needle| {
            let joined: Vec<u8> = cmdline
                .iter()
                .map(|&b| if b == 0 { b' ' } else { b })
                .collect();
            String::from_utf8_lossy(&joined).contains(needle)
        })
}

#[cfg(test)]
#[path = "tests/discovery.rs"]
mod tests;
