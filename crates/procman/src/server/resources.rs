//! Resource limits and usage as the API and the metrics show them: what
//! the config sets, what enforces each limit on the current (or last)
//! run, and what a running tree uses now.
//!
//! Limits and counters are copies of the supervisor's published state (no
//! I/O). Usage is read on demand, through the supervisor that owns the
//! run ([`Handle::usage`]), only for a process that runs, and bounded by
//! [`USAGE_DEADLINE`]: a supervisor busy with something slower, or a
//! platform worker with a long queue, costs a missing figure, never a
//! stuck answer.

use std::time::Duration;

use futures_util::future::join_all;
use procman_api as api;
use procman_core::config::{ProcessConfig, ProcessKind, ResourceLimits};
use procman_core::platform::{Controller, Enforcement, Enforcer};
use procman_core::supervisor::{Handle, ResourceUsage};
use tokio::time::Instant;

/// How long one answer (a detail, a scrape) waits for usage readings.
pub const USAGE_DEADLINE: Duration = Duration::from_secs(2);

/// One limit the config sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The config key (`max_memory_mb`).
    pub key: &'static str,
    /// As configured, in the key's unit (MiB, percent of one core, open
    /// files, processes).
    pub value: f64,
    /// The same in a base unit, for Prometheus: bytes, cores, files,
    /// processes.
    pub base: f64,
    /// The name of that base unit.
    pub unit: &'static str,
    /// `None` until a run has applied it.
    pub enforced_by: Option<Enforcer>,
}

/// The limits that apply to `process`: none for an unmanaged process,
/// which procman never starts (validate warns about any it has).
pub fn applicable(process: &ProcessConfig) -> &ResourceLimits {
    static NONE: std::sync::OnceLock<ResourceLimits> = std::sync::OnceLock::new();
    match process.kind {
        ProcessKind::Unmanaged => NONE.get_or_init(ResourceLimits::default),
        _ => &process.resource_limits,
    }
}

/// The limits `cfg` sets, in the order of its keys, each with what
/// enforces it as of `enforcement` (that of the current or last run:
/// empty before the first). `max_file_descriptors` is always an rlimit.
pub fn limits(cfg: &ResourceLimits, enforcement: &Enforcement) -> Vec<Limit> {
    let by = |c: Controller| enforcement.of(c);
    let mut out = Vec::new();
    if let Some(mb) = cfg.max_memory_mb {
        out.push(Limit {
            key: Controller::Memory.key(),
            value: mb as f64,
            base: mb.saturating_mul(1 << 20) as f64,
            unit: "bytes",
            enforced_by: by(Controller::Memory),
        });
    }
    if let Some(percent) = cfg.max_cpu_percent {
        out.push(Limit {
            key: Controller::Cpu.key(),
            value: percent,
            base: percent / 100.0,
            unit: "cores",
            enforced_by: by(Controller::Cpu),
        });
    }
    if let Some(n) = cfg.max_file_descriptors {
        out.push(Limit {
            key: "max_file_descriptors",
            value: n as f64,
            base: n as f64,
            unit: "files",
            enforced_by: Some(Enforcer::Rlimit),
        });
    }
    if let Some(n) = cfg.max_processes {
        out.push(Limit {
            key: Controller::Pids.key(),
            value: n as f64,
            base: n as f64,
            unit: "processes",
            enforced_by: by(Controller::Pids),
        });
    }
    out
}

/// The wire form of [`limits`].
pub fn wire_limits(cfg: &ResourceLimits, enforcement: &Enforcement) -> Vec<api::ResourceLimit> {
    limits(cfg, enforcement)
        .into_iter()
        .map(|l| api::ResourceLimit {
            limit: l.key.to_string(),
            value: l.value,
            enforced_by: l.enforced_by.map(|e| e.as_str().to_string()),
        })
        .collect()
}

/// The wire form of a reading.
pub fn wire_usage(u: &ResourceUsage) -> api::ResourceUsage {
    api::ResourceUsage {
        memory_bytes: u.memory_bytes,
        cpu_seconds: u.cpu_seconds,
        cpu_percent: u.cpu_percent,
        processes: u.processes,
        open_files: u.open_files,
        source: source(u).to_string(),
    }
}

/// `cgroup` or `proc`: where a reading's figures come from.
pub fn source(u: &ResourceUsage) -> &'static str {
    if u.from_cgroup {
        "cgroup"
    } else {
        "proc"
    }
}

/// What `handle`'s run uses now; `None` when nothing runs or the reading
/// misses `deadline`.
pub async fn usage_by(handle: &Handle, deadline: Instant) -> Option<ResourceUsage> {
    tokio::time::timeout_at(deadline, handle.usage())
        .await
        .ok()
        .flatten()
}

/// The usage of each handle's run, read at once (the supervisors answer
/// concurrently), in the order of `handles`. A handle for which `read`
/// is false is not asked (`None`), nor is one that misses the deadline.
pub async fn usages<'h>(
    handles: impl IntoIterator<Item = (&'h Handle, bool)>,
    within: Duration,
) -> Vec<Option<ResourceUsage>> {
    let deadline = Instant::now() + within;
    join_all(handles.into_iter().map(|(h, read)| async move {
        match read {
            true => usage_by(h, deadline).await,
            false => None,
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_set() -> ResourceLimits {
        ResourceLimits {
            max_memory_mb: Some(64),
            max_cpu_percent: Some(250.0),
            max_file_descriptors: Some(100),
            max_processes: Some(32),
            ..ResourceLimits::default()
        }
    }

    #[test]
    fn no_limit_no_entry() {
        assert!(limits(&ResourceLimits::default(), &Enforcement::default()).is_empty());
    }

    #[test]
    fn before_a_run_only_the_rlimit_is_known() {
        let got = wire_limits(&all_set(), &Enforcement::default());
        let keys: Vec<(&str, f64, Option<&str>)> = got
            .iter()
            .map(|l| (l.limit.as_str(), l.value, l.enforced_by.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [
                ("max_memory_mb", 64.0, None),
                ("max_cpu_percent", 250.0, None),
                ("max_file_descriptors", 100.0, Some("rlimit")),
                ("max_processes", 32.0, None),
            ]
        );
    }

    #[test]
    fn a_run_says_what_enforces_each_and_base_units_are_bytes_and_cores() {
        let enforcement = Enforcement(vec![
            (Controller::Memory, Enforcer::CgroupV1),
            (Controller::Cpu, Enforcer::Monitor),
            (Controller::Pids, Enforcer::CgroupV2),
        ]);
        let got = limits(&all_set(), &enforcement);
        let by: Vec<Option<&str>> = got
            .iter()
            .map(|l| l.enforced_by.map(Enforcer::as_str))
            .collect();
        assert_eq!(
            by,
            [
                Some("cgroup v1"),
                Some("monitor"),
                Some("rlimit"),
                Some("cgroup v2")
            ]
        );
        assert_eq!((got[0].base, got[0].unit), (64.0 * 1048576.0, "bytes"));
        assert_eq!((got[1].base, got[1].unit), (2.5, "cores"));
        assert_eq!((got[2].base, got[2].unit), (100.0, "files"));
        assert_eq!((got[3].base, got[3].unit), (32.0, "processes"));
    }

    #[test]
    fn a_reading_names_its_source() {
        let mut u = ResourceUsage {
            memory_bytes: Some(1 << 20),
            cpu_seconds: Some(0.5),
            cpu_percent: None,
            processes: 2,
            open_files: None,
            from_cgroup: true,
        };
        let w = wire_usage(&u);
        assert_eq!(w.source, "cgroup");
        assert_eq!(w.memory_bytes, Some(1 << 20));
        assert_eq!(w.processes, 2);
        u.from_cgroup = false;
        assert_eq!(wire_usage(&u).source, "proc");
    }
}
