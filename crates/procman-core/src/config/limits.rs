//! `management.resource_limits`, and the ceilings of this host that a
//! `max_file_descriptors` cannot pass.
//!
//! `max_file_descriptors` becomes the child's RLIMIT_NOFILE (soft and
//! hard) between fork and exec, set by the manager before it switches to
//! the process's user. The kernel refuses it there (`EPERM`), and the
//! process could never start, when it is above `fs.nr_open` (nobody may
//! pass that), or above the manager's own hard limit when the manager
//! cannot raise a hard limit (it lacks CAP_SYS_RESOURCE: any user but
//! root, and root in a container that dropped the capability). So both
//! are config errors, found before anything starts. The other limits
//! cannot fail that way: a host without the cgroup controller watches
//! them instead (`docs/limits.md`), which `procman validate` reports.

use std::time::Duration;

use super::decode::Decoder;
use super::error::cut;
use super::management::positive_duration;
use super::node::{Item, Section};
use super::schema::{ResourceLimits, ViolationAction};

const LIMIT_KEYS: &[&str] = &[
    "max_memory_mb",
    "max_cpu_percent",
    "max_file_descriptors",
    "max_processes",
    "on_violation",
    "violation_grace",
    "sample_interval",
];

/// The largest memory limit a cgroup takes: 2^43 MiB is 2^63 bytes.
const MAX_MEMORY_MB: u64 = 1 << 43;
/// The kernel's PID_MAX_LIMIT: no tree can hold more processes.
const MAX_PROCESSES: u64 = 4_194_304;
/// 1 ms of CPU per 1 s period, the smallest quota the kernel takes.
const MIN_CPU_PERCENT: f64 = 0.1;
/// 1000 CPUs.
const MAX_CPU_PERCENT: f64 = 100_000.0;
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The capability that lets a process raise a hard resource limit.
const CAP_SYS_RESOURCE: u32 = 24;

pub(super) fn resource_limits(d: &mut Decoder<'_>, mgmt: &Section<'_>) -> ResourceLimits {
    let s = d.child(mgmt, "resource_limits", LIMIT_KEYS);
    let actions = [
        ("log", ViolationAction::Log),
        ("restart", ViolationAction::Restart),
        ("stop", ViolationAction::Stop),
    ];
    let positive = |d: &mut Decoder<'_>, i: &Item<'_>| d.uint(i, 1, u64::MAX);
    ResourceLimits {
        max_memory_mb: d
            .field(&s, "max_memory_mb", |d, i| {
                // `512MB`, `1G`, `512Mi`: the unit is in the key's name.
                let text = i.plain_text().unwrap_or("").trim();
                let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                if digits != text && !digits.is_empty() && digits.parse::<f64>().is_ok() {
                    d.invalid(
                        i,
                        format!(
                            "expected a whole number of MiB without a unit, found {}",
                            cut(text)
                        ),
                    );
                    return None;
                }
                d.uint(i, 1, MAX_MEMORY_MB)
            })
            .value(),
        max_cpu_percent: d
            .field(&s, "max_cpu_percent", |d, i| {
                let pct = d.percent(i)?;
                if !(MIN_CPU_PERCENT..=MAX_CPU_PERCENT).contains(&pct) {
                    d.invalid(
                        i,
                        format!(
                            "must be from {MIN_CPU_PERCENT} (the kernel's smallest quota, 1 ms per \
                             second) to {MAX_CPU_PERCENT} (1000 CPUs), found {}",
                            cut(&pct.to_string())
                        ),
                    );
                    return None;
                }
                Some(pct)
            })
            .value(),
        max_file_descriptors: d
            .field(&s, "max_file_descriptors", |d, i| {
                let n = positive(d, i)?;
                // For another host, only what no Linux kernel allows.
                if !d.here {
                    if n > NR_OPEN_MAX {
                        d.invalid(
                            i,
                            format!(
                                "{n} is above {NR_OPEN_MAX}, the most any Linux kernel allows \
                                 (the ceiling of fs.nr_open)"
                            ),
                        );
                        return None;
                    }
                    return Some(n);
                }
                if let Err(message) = d.fd_ceiling().check(n) {
                    d.invalid(i, message);
                    return None;
                }
                Some(n)
            })
            .value(),
        max_processes: d
            .field(&s, "max_processes", |d, i| d.uint(i, 1, MAX_PROCESSES))
            .value(),
        on_violation: d
            .field(&s, "on_violation", |d, i| {
                d.choice(i, "violation action", &actions)
            })
            .or(ViolationAction::Log),
        violation_grace: d
            .field(&s, "violation_grace", Decoder::duration)
            .or(Duration::ZERO),
        sample_interval: d
            .field(&s, "sample_interval", |d, i| {
                let every = positive_duration(d, i)?;
                if every < MIN_SAMPLE_INTERVAL {
                    d.invalid(
                        i,
                        "must be at least 100ms: each sample reads the whole tree's usage, \
                         and sampling faster only costs the manager CPU",
                    );
                    return None;
                }
                Some(every)
            })
            .or(ResourceLimits::SAMPLE_INTERVAL),
    }
}

/// What bounds the RLIMIT_NOFILE the manager can give a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdCeiling {
    /// `fs.nr_open`, the kernel's ceiling for every process; `None` when
    /// it cannot be read (then nothing is checked against it).
    pub nr_open: Option<u64>,
    /// The manager's own hard limit, when the manager cannot raise it;
    /// `None` when it can (CAP_SYS_RESOURCE) or when it is unlimited.
    pub hard: Option<u64>,
}

impl FdCeiling {
    /// This process's: read on every call (a few small reads), so that a
    /// config loaded again sees a changed `fs.nr_open`; a load reads it
    /// once, at the first `max_file_descriptors` (see `Decoder::fd_ceiling`).
    pub(crate) fn current() -> FdCeiling {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let hard = if may_raise_hard_limits() {
            None
        } else {
            rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum
        };
        FdCeiling { nr_open, hard }
    }

    /// Whether a child can be given `n` open files; else why not.
    pub(crate) fn check(&self, n: u64) -> Result<(), String> {
        if let Some(ceiling) = self.nr_open.filter(|&c| n > c) {
            return Err(format!(
                "{n} is above the kernel's ceiling of {ceiling} open files per process \
                 (fs.nr_open), so the process could never start; lower it, or raise \
                 fs.nr_open (sysctl)"
            ));
        }
        if let Some(hard) = self.hard.filter(|&h| n > h) {
            return Err(format!(
                "{n} is above the manager's own hard limit of {hard} open files, and \
                 raising a hard limit needs CAP_SYS_RESOURCE, which the manager lacks \
                 (root has it unless a container dropped it); lower it, or start \
                 procman with a higher hard limit (`ulimit -Hn`, LimitNOFILE= under \
                 systemd)"
            ));
        }
        Ok(())
    }
}

/// The highest `fs.nr_open` a Linux kernel accepts (`sysctl_nr_open_max`
/// on 64-bit: `INT_MAX` rounded down to a multiple of 64).
const NR_OPEN_MAX: u64 = 2_147_483_584;

/// Whether this process holds CAP_SYS_RESOURCE in its effective set (as
/// root normally does, unless a container dropped it); without
/// `/proc/self/status`, whether it is root.
fn may_raise_hard_limits() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    match effective {
        Some(caps) => caps & (1 << CAP_SYS_RESOURCE) != 0,
        None => rustix::process::geteuid().is_root(),
    }
}
