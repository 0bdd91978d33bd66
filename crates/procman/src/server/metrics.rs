//! `/metrics`: the manager and its processes in the Prometheus text
//! exposition format (version 0.0.4), every name prefixed `procman_`.
//!
//! Per process (label `process`):
//! - `process_state{state}`: one series per state, 1 for the current one;
//! - `process_up`: 1 while a run is starting or running;
//! - `process_restarts_total{cause}`: restarts made by the restart policy,
//!   by the kind of end they followed (`exit`, `health_check`, …);
//! - `process_runs_total`: runs spawned;
//! - `process_uptime_seconds`: how long the current run has been up (0
//!   while none is);
//! - `process_health` (1 healthy, 0 starting or unhealthy) and
//!   `process_health_check_latency_seconds` (of the last check): only for
//!   processes with a health check, the latter once one has run;
//! - `process_log_bytes_total`, `process_log_dropped_total`: output read,
//!   records lost (a full disk);
//! - `process_oom_kills_total`, `process_violations_total`: runs ended by
//!   the kernel's OOM killer, violations of a limit the manager watches;
//! - `process_limit{limit,unit,enforced_by}`: one series per limit the
//!   config sets, `limit` its config key, the value in a base unit as
//!   Prometheus names them (`unit`: `bytes` for `max_memory_mb`, `cores`
//!   for `max_cpu_percent` (250 % = 2.5), `files`, `processes`), so that
//!   a usage divides by it directly; `enforced_by` (`cgroup v2`, `cgroup
//!   v1`, `rlimit`, `monitor`) is left out before the first run;
//! - while a run is under way: `process_memory_bytes`,
//!   `process_cpu_seconds_total` (of the current run: it starts again at
//!   0 with each run, which `rate()` takes as a counter reset),
//!   `process_processes`, `process_open_files`; each only when it could be
//!   read.
//!
//! The manager: `manager_up` (1), `manager_state{state}` (as
//! `process_state`), `manager_processes`, `manager_cpu_seconds_total`,
//! `manager_resident_memory_bytes`, `manager_open_fds` (the last three
//! when `/proc` can be read).
//!
//! A scrape costs no I/O per idle process: each process's state is a copy
//! of what its supervisor last published, its log counters are atomics;
//! the manager's own three `/proc/self` files are read, and the usage of
//! each running process: at scrape time only (no timer), every supervisor
//! asked at once, and the scrape waits at most `USAGE_DEADLINE` (2 s) for
//! them; a process whose reading is later has no usage series in that
//! scrape.

use std::fmt::Error;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use procman_core::manager::{Control, ManagerState};
use procman_core::platform::usage::Usage;
use procman_core::supervisor::{Phase, ProcessStatus, ResourceUsage};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::resources::{self, Limit};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

const PHASES: [Phase; 9] = [
    Phase::Registered,
    Phase::Waiting,
    Phase::Starting,
    Phase::Running,
    Phase::Stopping,
    Phase::Stopped,
    Phase::Backoff,
    Phase::Failed,
    Phase::Exited,
];

const MANAGER_STATES: [ManagerState; 5] = [
    ManagerState::Created,
    ManagerState::Starting,
    ManagerState::Running,
    ManagerState::Stopping,
    ManagerState::Stopped,
];

/// One process as the scrape saw it.
#[derive(Debug)]
struct Process {
    status: ProcessStatus,
    has_check: bool,
    log_bytes: u64,
    log_dropped: u64,
    limits: Vec<Limit>,
    /// Read for this scrape, while a run is under way.
    usage: Option<ResourceUsage>,
}

/// Everything one scrape reports, read once before encoding.
#[derive(Debug)]
struct Snapshot {
    processes: Vec<Process>,
    state: ManagerState,
    usage: Usage,
    now: SystemTime,
}

/// The metrics of the manager behind `control`, as Prometheus text.
pub async fn render(control: &Control) -> String {
    let handles = control.handles();
    let mut processes: Vec<Process> = handles
        .iter()
        .zip(&control.config().processes)
        .map(|(h, cfg)| {
            let counters = h.log_counters();
            let status = h.status();
            Process {
                limits: resources::limits(resources::applicable(cfg), &status.enforcement),
                status,
                has_check: cfg.health_check.is_some(),
                log_bytes: counters.bytes_read.load(Ordering::Relaxed),
                log_dropped: counters.dropped(),
                usage: None,
            }
        })
        .collect();
    let running = handles
        .iter()
        .zip(&processes)
        .map(|(h, p)| (h, p.status.phase().is_active()));
    let usages = resources::usages(running, resources::USAGE_DEADLINE).await;
    for (p, u) in processes.iter_mut().zip(usages) {
        p.usage = u;
    }
    let snapshot = Snapshot {
        processes,
        state: control.manager_state(),
        usage: Usage::own(),
        now: SystemTime::now(),
    };
    let mut registry = Registry::with_prefix("procman");
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    // Writing to a String cannot fail, and no metric here returns an error.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    text
}

fn gauge(m: &mut MetricEncoder, labels: &[(&str, &str)], v: f64) -> Result<(), Error> {
    m.encode_family(&labels)?.encode_gauge(&v)
}

fn counter(m: &mut MetricEncoder, labels: &[(&str, &str)], v: f64) -> Result<(), Error> {
    m.encode_family(&labels)?
        .encode_counter::<NoLabelSet, _, f64>(&v, None)
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Snapshot {
    /// One family with a series per process, for those `value` gives one.
    fn per_process(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        kind: MetricType,
        value: impl Fn(&Process) -> Option<f64>,
    ) -> Result<(), Error> {
        let mut m = encoder.encode_descriptor(name, help, None, kind)?;
        for p in &self.processes {
            let Some(v) = value(p) else { continue };
            let labels = [("process", p.status.id.as_str())];
            match kind {
                MetricType::Counter => counter(&mut m, &labels, v)?,
                _ => gauge(&mut m, &labels, v)?,
            }
        }
        Ok(())
    }

    fn processes(&self, encoder: &mut DescriptorEncoder) -> Result<(), Error> {
        let mut m = encoder.encode_descriptor(
            "process_state",
            "The state of the process: 1 for the current one",
            None,
            MetricType::Gauge,
        )?;
        for p in &self.processes {
            let phase = p.status.phase();
            for s in PHASES {
                let labels = [("process", p.status.id.as_str()), ("state", s.as_str())];
                gauge(&mut m, &labels, flag(s == phase))?;
            }
        }
        self.per_process(
            encoder,
            "process_up",
            "1 while a run of the process is starting or running",
            MetricType::Gauge,
            |p| {
                Some(flag(matches!(
                    p.status.phase(),
                    Phase::Starting | Phase::Running
                )))
            },
        )?;
        let mut m = encoder.encode_descriptor(
            "process_restarts",
            "Restarts made by the restart policy, by the kind of end they followed",
            None,
            MetricType::Counter,
        )?;
        for p in &self.processes {
            for (cause, n) in p.status.restart_causes.iter() {
                let labels = [("process", p.status.id.as_str()), ("cause", cause)];
                counter(&mut m, &labels, f64::from(n))?;
            }
        }
        self.per_process(
            encoder,
            "process_runs",
            "Runs of the process spawned",
            MetricType::Counter,
            |p| Some(f64::from(p.status.runs)),
        )?;
        self.per_process(
            encoder,
            "process_uptime_seconds",
            "How long the current run has been up (0 while none is)",
            MetricType::Gauge,
            |p| {
                let up = p.status.phase().is_active();
                let since = p.status.started_at.filter(|_| up);
                Some(since.map_or(0.0, |at| {
                    self.now
                        .duration_since(at)
                        .unwrap_or_default()
                        .as_secs_f64()
                }))
            },
        )?;
        self.per_process(
            encoder,
            "process_health",
            "1 when the health check passes, 0 while starting or unhealthy",
            MetricType::Gauge,
            |p| {
                p.has_check.then(|| {
                    let h = p.status.health.as_ref();
                    // A process that does not run is not healthy.
                    flag(
                        p.status.phase().is_active()
                            && h.is_some_and(|h| h.health.as_str() == "healthy"),
                    )
                })
            },
        )?;
        self.per_process(
            encoder,
            "process_health_check_latency_seconds",
            "How long the last health check took",
            MetricType::Gauge,
            |p| {
                let h = p.status.health.as_ref().filter(|_| p.has_check)?;
                h.last_latency.map(|d| d.as_secs_f64())
            },
        )?;
        self.per_process(
            encoder,
            "process_log_bytes",
            "Bytes of output read from the process",
            MetricType::Counter,
            |p| Some(p.log_bytes as f64),
        )?;
        self.per_process(
            encoder,
            "process_log_dropped",
            "Log records of the process that could not be written",
            MetricType::Counter,
            |p| Some(p.log_dropped as f64),
        )?;
        self.resources(encoder)
    }

    /// Limits, their counters, and the usage of the runs under way.
    fn resources(&self, encoder: &mut DescriptorEncoder) -> Result<(), Error> {
        self.per_process(
            encoder,
            "process_oom_kills",
            "Runs of the process ended by the kernel's OOM killer",
            MetricType::Counter,
            |p| Some(f64::from(p.status.oom_kills)),
        )?;
        self.per_process(
            encoder,
            "process_violations",
            "Violations of a resource limit the manager watches, each sustained for violation_grace",
            MetricType::Counter,
            |p| Some(f64::from(p.status.violations)),
        )?;
        let mut m = encoder.encode_descriptor(
            "process_limit",
            "A resource limit the config sets (label limit: its key), in the unit of label unit; \
             enforced_by says what enforces it in the current or last run",
            None,
            MetricType::Gauge,
        )?;
        for p in &self.processes {
            for l in &p.limits {
                let mut labels = vec![
                    ("process", p.status.id.as_str()),
                    ("limit", l.key),
                    ("unit", l.unit),
                ];
                if let Some(e) = l.enforced_by {
                    labels.push(("enforced_by", e.as_str()));
                }
                gauge(&mut m, &labels, l.base)?;
            }
        }
        let usage =
            |f: fn(&ResourceUsage) -> Option<f64>| move |p: &Process| f(p.usage.as_ref()?);
        self.per_process(
            encoder,
            "process_memory_bytes",
            "Memory the running tree uses: charged to its cgroup, or its resident sets",
            MetricType::Gauge,
            usage(|u| u.memory_bytes.map(|b| b as f64)),
        )?;
        self.per_process(
            encoder,
            "process_cpu_seconds",
            "CPU time of the running tree during the current run",
            MetricType::Counter,
            usage(|u| u.cpu_seconds),
        )?;
        self.per_process(
            encoder,
            "process_processes",
            "Processes in the running tree",
            MetricType::Gauge,
            usage(|u| Some(f64::from(u.processes))),
        )?;
        self.per_process(
            encoder,
            "process_open_files",
            "Descriptors open across the running tree",
            MetricType::Gauge,
            usage(|u| u.open_files.map(|n| n as f64)),
        )
    }

    fn manager(&self, encoder: &mut DescriptorEncoder) -> Result<(), Error> {
        let one = |encoder: &mut DescriptorEncoder, name, help, kind, v: f64| {
            let mut m = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => m.encode_counter::<NoLabelSet, _, f64>(&v, None),
                _ => m.encode_gauge(&v),
            }
        };
        one(
            encoder,
            "manager_up",
            "1: the manager answers",
            MetricType::Gauge,
            1.0,
        )?;
        let mut m = encoder.encode_descriptor(
            "manager_state",
            "The state of the manager: 1 for the current one",
            None,
            MetricType::Gauge,
        )?;
        for s in MANAGER_STATES {
            gauge(&mut m, &[("state", s.as_str())], flag(s == self.state))?;
        }
        one(
            encoder,
            "manager_processes",
            "Processes in the configuration",
            MetricType::Gauge,
            self.processes.len() as f64,
        )?;
        if let Some(v) = self.usage.cpu_seconds {
            let help = "CPU time the manager has used, user and system";
            one(encoder, "manager_cpu_seconds", help, MetricType::Counter, v)?;
        }
        if let Some(v) = self.usage.resident_bytes {
            let help = "Resident memory of the manager";
            one(
                encoder,
                "manager_resident_memory_bytes",
                help,
                MetricType::Gauge,
                v as f64,
            )?;
        }
        if let Some(v) = self.usage.open_fds {
            let help = "Descriptors open in the manager";
            one(
                encoder,
                "manager_open_fds",
                help,
                MetricType::Gauge,
                v as f64,
            )?;
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        self.manager(&mut encoder)?;
        self.processes(&mut encoder)
    }
}

#[cfg(test)]
#[path = "tests/metrics.rs"]
mod tests;
