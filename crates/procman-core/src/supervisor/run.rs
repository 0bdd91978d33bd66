//! One run of a process: its child, the pumps reading its output, and the
//! health watch that probes it.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::monitor::Monitor;
use super::state::HealthStatus;
use crate::config::HealthCheck;
use crate::health::probe::{Probe, ProbeOutcome, ProbeTarget};
use crate::health::verdict::{Change, Verdict};
use crate::outcome::ProcessEnd;
use crate::platform::{Child, OomWatch};

/// One run of the process: the child, how to hear of its end, the pumps
/// reading its output, and its health watch.
pub(super) struct Run {
    pub(super) child: Child,
    /// Which run of the process this is (1 for the first).
    pub(super) number: u32,
    pub(super) exit: oneshot::Receiver<ProcessEnd>,
    pub(super) started: Instant,
    /// The pump reading the run's output (one task for both streams).
    pub(super) pumps: Option<JoinHandle<()>>,
    pub(super) health: Option<HealthWatch>,
    /// OOM kills in the run's memory cgroup (with a memory limit there).
    /// Boxed, as the monitor: most runs have neither.
    pub(super) oom: Option<Box<OomWatch>>,
    /// Limits only the manager watches, sampled on a timer.
    pub(super) monitor: Option<Box<Monitor>>,
    /// CPU time of the tree when the run began, and the last reading for
    /// the usage API: `(when, microseconds)`.
    pub(super) cpu_base: u64,
    pub(super) cpu_last: (Instant, u64),
}

/// What is left of a run once its child is gone.
pub(super) struct Ended {
    pub(super) pid: u32,
    pub(super) number: u32,
    pub(super) started: Instant,
    pub(super) pumps: Option<JoinHandle<()>>,
}

impl Run {
    pub(super) fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Takes what outlives the child: its pid, number, start and pumps.
    pub(super) fn ended(&mut self) -> Ended {
        Ended {
            pid: self.child.pid(),
            number: self.number,
            started: self.started,
            pumps: self.pumps.take(),
        }
    }

    /// Whether the kernel's OOM killer killed a process of the run.
    pub(super) fn oom_killed(&self) -> bool {
        self.oom.as_ref().is_some_and(|w| w.kills() > 0)
    }

    /// What the last health check saw, if any check ran.
    pub(super) fn last_check(&self) -> Option<&str> {
        self.health.as_ref()?.last_detail.as_deref()
    }
}

/// The longest wait between checks before the first success.
const STARTING_INTERVAL: Duration = Duration::from_secs(1);

/// How long a run's pumps may take to reach end of file once its whole
/// tree is gone (only a process outside the tree can hold a pipe longer).
const DRAIN: Duration = Duration::from_secs(5);

/// Waits until the pump has read everything the run wrote. A pump still
/// reading after [`DRAIN`] (a process outside the tree holds a pipe) is
/// aborted: its pipes close, and that process gets EPIPE from then on.
pub(super) async fn drain(id: &str, pumps: Option<JoinHandle<()>>) {
    let Some(mut pump) = pumps else {
        return;
    };
    if tokio::time::timeout(DRAIN, &mut pump).await.is_err() {
        pump.abort();
        tracing::warn!(process = %id, waited = ?DRAIN,
            "output pipes still held open after the process tree ended (by a process outside it); stopped reading them");
    }
}

pub(super) async fn exit_of(run: &mut Option<Run>) -> ProcessEnd {
    match run {
        // The reaper keeps the sender until it has the status; a dropped
        // sender would mean the reaper thread died, which we report as -1.
        Some(r) => (&mut r.exit).await.unwrap_or(ProcessEnd::Exited(-1)),
        None => std::future::pending().await,
    }
}

/// What happened to a run: its child ended, a health check finished, the
/// OOM killer struck, or the monitor's sample is due.
pub(super) enum RunEvent {
    Exit(ProcessEnd),
    Health(ProbeOutcome),
    Oom,
    SampleDue,
}

/// The next event of the run (pending forever when there is no run).
pub(super) async fn next_event(run: &mut Option<Run>) -> RunEvent {
    let Some(r) = run else {
        return std::future::pending().await;
    };
    // The waits of a check and of the OOM watch are boxed, made only when
    // the run has one: the supervisor holds this future at all times, and
    // most runs have neither.
    let checks = async {
        match r.health.as_mut() {
            Some(w) => Box::pin(w.rx.recv()).await,
            None => std::future::pending().await,
        }
    };
    let oom = async {
        match r.oom.as_mut() {
            Some(w) => Box::pin(w.fired()).await,
            None => std::future::pending().await,
        }
    };
    let sample = super::task::until(r.monitor.as_ref().map(|m| m.next));
    tokio::select! {
        end = &mut r.exit => RunEvent::Exit(end.unwrap_or(ProcessEnd::Exited(-1))),
        Some(outcome) = checks => RunEvent::Health(outcome),
        _ = oom => RunEvent::Oom,
        () = sample => RunEvent::SampleDue,
    }
}

/// A task probing the run on its own timer, and the verdict on its results.
pub(super) struct HealthWatch {
    rx: mpsc::Receiver<ProbeOutcome>,
    task: JoinHandle<()>,
    verdict: Verdict,
    failure_threshold: u32,
    success_threshold: u32,
    last_check: Option<SystemTime>,
    last_detail: Option<String>,
}

impl HealthWatch {
    /// Starts probing: first after `initial_delay`, then every `interval`,
    /// each check bounded by `timeout`.
    ///
    /// Always `Some`: a probe that cannot be built (a TLS setup that
    /// fails, an endpoint the probe cannot use although validation let it
    /// through) still runs, as a check that fails every time with the
    /// reason. The process then stays `starting` and is ended by
    /// `startup_timeout` with the reason in its diagnostics, rather than
    /// running as if it were checked.
    pub(super) fn start(id: &str, hc: HealthCheck, target: &ProbeTarget) -> Option<HealthWatch> {
        Some(HealthWatch::spawn(id, hc, target, Verdict::default()))
    }

    /// Probes a process that was already running when it was found (an
    /// unmanaged one): every `interval` from the start, and failures count
    /// from the first check ([`Verdict::from_start`]).
    pub(super) fn for_found(id: &str, hc: HealthCheck, target: &ProbeTarget) -> HealthWatch {
        HealthWatch::spawn(id, hc, target, Verdict::from_start())
    }

    /// The next check's outcome (`None` once the probing task has ended).
    pub(super) async fn next(&mut self) -> Option<ProbeOutcome> {
        self.rx.recv().await
    }

    fn spawn(id: &str, hc: HealthCheck, target: &ProbeTarget, verdict: Verdict) -> HealthWatch {
        let probe = Probe::from_config(&hc, target).unwrap_or_else(|reason| {
            tracing::error!(process = %id, error = %reason,
                "cannot build the health check; every check fails until this is fixed");
            Probe::Invalid { reason }
        });
        let (tx, rx) = mpsc::channel(1);
        let (interval, timeout, delay) = (hc.interval, hc.timeout, hc.initial_delay);
        // Until the first success, check at most every STARTING_INTERVAL: a
        // server that listens 50 ms after its spawn should not wait a whole
        // `interval` (10 s by default) to be seen ready.
        let starting_interval = interval.min(STARTING_INTERVAL);
        // A process found running has no start to wait for.
        let found = verdict.counts_from_start();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut ready = found;
            let mut next = tokio::time::Instant::now();
            loop {
                let outcome = probe.check(timeout).await;
                ready |= outcome.healthy;
                if tx.send(outcome).await.is_err() {
                    break;
                }
                next += if ready { interval } else { starting_interval };
                tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
            }
        });
        HealthWatch {
            rx,
            task,
            verdict,
            failure_threshold: hc.failure_threshold,
            success_threshold: hc.success_threshold,
            last_check: None,
            last_detail: None,
        }
    }

    /// The process was ready before (re-attached): failed checks count
    /// from the first one.
    pub(super) fn assume_ready(&mut self) {
        self.verdict = Verdict::ready();
    }

    pub(super) fn record(&mut self, outcome: &ProbeOutcome) -> Change {
        self.last_check = Some(SystemTime::now());
        self.last_detail = Some(outcome.detail.clone());
        self.verdict.record(
            outcome.healthy,
            self.failure_threshold,
            self.success_threshold,
        )
    }

    pub(super) fn diagnostics(&self, last: &ProbeOutcome) -> HealthStatus {
        HealthStatus {
            health: self.verdict.health(),
            last_check: self.last_check,
            last_latency: Some(last.latency),
            last_result: last.detail.clone(),
            consecutive_failures: self.verdict.consecutive_failures(),
            last_error: (!last.healthy).then(|| last.detail.clone()),
        }
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
