//! What a process tree, or the manager itself, uses of the machine: CPU
//! time, memory and open descriptors.
//!
//! The manager's own figures are three small reads of its own files
//! (`/proc/self/stat`, `statm`, `fd`). A supervised process's come from
//! its cgroups where they count it (`cpu.stat` of its v2 cgroup,
//! `memory.current` or `memory.usage_in_bytes` of its memory cgroup,
//! `pids.current`), else from `/proc` summed over its tree's members
//! (resident memory, user and system time of the live members). Each
//! figure is read on its own: one that cannot be read is `None`, never a
//! guess, and the others are kept.

use std::fs;
use std::path::{Path, PathBuf};

use super::limits::Enforcer;
use super::procstat::Stat;

/// What one process tree uses, as of one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Memory charged to its cgroup (page cache included), or the sum of
    /// the members' resident sets.
    pub memory_bytes: Option<u64>,
    /// CPU time used so far (its cgroup's, or that of the live members).
    pub cpu_usec: Option<u64>,
    pub processes: u32,
    /// Descriptors open across the members (read only when asked).
    pub open_files: Option<u64>,
    /// Whether the figures come from cgroup files (else from `/proc`).
    pub from_cgroup: bool,
}

/// Where a tree's figures can be read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    /// The tree's v2 cgroup (`cpu.stat` exists there without a controller).
    pub(crate) v2: Option<PathBuf>,
    pub(crate) memory: Option<(Enforcer, PathBuf)>,
    pub(crate) pids: Option<PathBuf>,
}

/// Reads a tree's usage; `pids` are its live members. Blocking (small
/// reads of in-memory files): for the platform worker.
pub(crate) fn sample(sources: &Sources, pids: &[u32], fds: bool) -> Sample {
    let memory_bytes = match &sources.memory {
        Some((Enforcer::CgroupV2, d)) => read_u64(&d.join("memory.current")),
        Some((_, d)) => read_u64(&d.join("memory.usage_in_bytes")),
        None => sum(pids, resident_of),
    };
    let cgroup_cpu = sources.v2.as_deref().and_then(cgroup_cpu_usec);
    let cpu_usec = cgroup_cpu.or_else(|| sum(pids, cpu_usec_of));
    let processes = sources
        .pids
        .as_deref()
        .and_then(|d| read_u64(&d.join("pids.current")))
        .map_or(pids.len() as u32, |n| n as u32);
    let open_files = if fds { sum(pids, open_fds_of) } else { None };
    Sample {
        memory_bytes,
        cpu_usec,
        processes,
        open_files,
        // Memory is the figure users read first: "cgroup" only when both
        // it and the CPU time come from cgroup files.
        from_cgroup: cgroup_cpu.is_some() && sources.memory.is_some(),
    }
}

/// The sum of `f` over `pids`; `None` only when no member could be read.
fn sum(pids: &[u32], f: impl Fn(u32) -> Option<u64>) -> Option<u64> {
    pids.iter()
        .filter_map(|&p| f(p))
        .fold(None, |acc, n| Some(acc.unwrap_or(0) + n))
}

fn read_u64(file: &Path) -> Option<u64> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// `usage_usec` of a v2 `cpu.stat`.
pub(crate) fn cgroup_cpu_usec(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("cpu.stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|n| n.trim().parse().ok())
}

/// A member's CPU time and that of the children it has reaped, so that
/// short-lived descendants (a shell's commands) count once they are gone.
fn cpu_usec_of(pid: u32) -> Option<u64> {
    let stat = Stat::read(pid).ok()??;
    let ticks = rustix::param::clock_ticks_per_second();
    let total = stat.utime + stat.stime + stat.children_time;
    (ticks > 0).then(|| total * 1_000_000 / ticks)
}

fn resident_of(pid: u32) -> Option<u64> {
    statm_resident(&format!("/proc/{pid}/statm"))
}

fn open_fds_of(pid: u32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The manager's own usage, as of the moment [`Usage::own`] read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU time since the manager started.
    pub cpu_seconds: Option<f64>,
    /// Resident set size.
    pub resident_bytes: Option<u64>,
    /// Descriptors open in the manager (the one used to count them aside).
    pub open_fds: Option<u64>,
}

impl Usage {
    pub fn own() -> Usage {
        Usage {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes(),
            open_fds: open_fds(),
        }
    }
}

fn cpu_seconds() -> Option<f64> {
    let stat = Stat::read(std::process::id()).ok()??;
    let ticks = rustix::param::clock_ticks_per_second();
    (ticks > 0).then(|| (stat.utime + stat.stime) as f64 / ticks as f64)
}

fn resident_bytes() -> Option<u64> {
    statm_resident("/proc/self/statm")
}

/// `size resident shared …`, in pages.
fn statm_resident(file: &str) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(rustix::param::page_size() as u64))
}

fn open_fds() -> Option<u64> {
    let entries = fs::read_dir("/proc/self/fd").ok()?;
    let listed = entries.filter(Result::is_ok).count() as u64;
    // The listing holds the descriptor that reads it.
    Some(listed.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_usage_is_read_and_follows_what_the_process_does() {
        let before = Usage::own();
        let cpu = before.cpu_seconds.expect("cpu time");
        assert!(cpu >= 0.0);
        let rss = before.resident_bytes.expect("resident memory");
        assert!(rss > 1 << 20, "a test binary holds more than 1 MiB: {rss}");
        before.open_fds.expect("descriptors");
        // Other tests of this binary open and close descriptors meanwhile,
        // so only a lower bound holds.
        let held: Vec<fs::File> = (0..16)
            .map(|_| fs::File::open("/dev/null").expect("open"))
            .collect();
        let after = Usage::own();
        assert!(after.open_fds.expect("descriptors") >= 16, "{after:?}");
        drop(held);
        // Spin a little: CPU time never goes backwards.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        std::hint::black_box(x);
        assert!(Usage::own().cpu_seconds.expect("cpu time") >= cpu);
    }
}
