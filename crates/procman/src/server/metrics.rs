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
//!   records lost (a full disk).
//!
//! The manager: `manager_up` (1), `manager_state{state}` (as
//! `process_state`), `manager_processes`, `manager_cpu_seconds_total`,
//! `manager_resident_memory_bytes`, `manager_open_fds` (the last three
//! when `/proc` can be read).
//!
//! A scrape costs no I/O per process: each process's state is a copy of
//! what its supervisor last published, its log counters are atomics; only
//! the manager's own three `/proc/self` files are read.

use std::fmt::Error;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use procman_core::manager::{Control, ManagerState};
use procman_core::platform::usage::Usage;
use procman_core::supervisor::{Phase, ProcessStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

const PHASES: [Phase; 8] = [
    Phase::Registered,
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
pub fn render(control: &Control) -> String {
    let processes = control
        .handles()
        .iter()
        .zip(&control.config().processes)
        .map(|(h, cfg)| {
            let counters = h.log_counters();
            Process {
                status: h.status(),
                has_check: cfg.health_check.is_some(),
                log_bytes: counters.bytes_read.load(Ordering::Relaxed),
                log_dropped: counters.dropped(),
            }
        })
        .collect();
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
