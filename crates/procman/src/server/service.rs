//! The operations of the API, once for REST and gRPC: each reads the
//! engine through its [`Control`] and answers in the wire types of
//! `procman-api`. The transports only add their framing and status codes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use procman_api as api;
use procman_core::config::{HealthCheckKind, ProcessConfig};
use procman_core::logs::reader::LogSet;
use procman_core::manager::{Control, ManagerError, ManagerState};
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::policy::BreakerState;
use procman_core::supervisor::{CommandError, Event, Lifecycle, Phase, ProcessStatus, Transition};
use tokio::time::Instant;

use super::resources;

/// Why an operation was refused; each transport maps it to its status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// 404 / NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// 400 / INVALID_ARGUMENT.
    #[error("{0}")]
    BadRequest(String),
    /// 409 / FAILED_PRECONDITION: the process is not in a state that
    /// allows it (unmanaged, not running, failed to start).
    #[error("{0}")]
    Conflict(String),
    /// 409 / FAILED_PRECONDITION: a start refused because processes it
    /// depends on are down; each with its state.
    #[error("{message}")]
    DependenciesDown {
        message: String,
        down: Vec<(String, String)>,
    },
    /// 422 / INVALID_ARGUMENT: the config file a reload read is not valid
    /// (every error, with its location), or a log file it names cannot be
    /// used. Nothing was changed.
    #[error("{0}")]
    InvalidConfig(String),
    /// 503 / UNAVAILABLE: the manager is shutting down.
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    /// The stable code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound(_) => "not_found",
            Refusal::BadRequest(_) => "bad_request",
            Refusal::Conflict(_) => "conflict",
            Refusal::DependenciesDown { .. } => "dependencies_down",
            Refusal::InvalidConfig(_) => "invalid_config",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

impl From<ManagerError> for Refusal {
    fn from(e: ManagerError) -> Refusal {
        match e {
            ManagerError::UnknownProcess(_) => Refusal::NotFound(e.to_string()),
            ManagerError::Command(CommandError::Gone(_)) => {
                Refusal::Unavailable(format!("{e}: the manager is shutting down"))
            }
            ManagerError::DependenciesDown { ref down, .. } => Refusal::DependenciesDown {
                message: e.to_string(),
                down: down.clone(),
            },
            other => Refusal::Conflict(other.to_string()),
        }
    }
}

/// RFC 3339 in UTC, to the millisecond.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn seconds(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

pub fn exit(end: ProcessEnd) -> api::Exit {
    let (signal, core_dumped) = match end {
        ProcessEnd::Signaled { signal, core } => (Some(signal.to_string()), core),
        ProcessEnd::Exited(_) | ProcessEnd::Unknown => (None, false),
    };
    api::Exit {
        code: end.code(),
        signal,
        core_dumped,
        description: end.to_string(),
    }
}

pub fn transition(t: &Transition) -> api::Transition {
    api::Transition {
        from: t.from.to_string(),
        to: t.to.to_string(),
        cause: t.cause.to_string(),
        cause_kind: t.cause.kind().to_string(),
        at: timestamp(t.at),
    }
}

/// A process as a row of the table.
pub fn process(cfg: &ProcessConfig, s: &ProcessStatus, now: SystemTime) -> api::Process {
    let up = s.phase().is_active();
    api::Process {
        id: s.id.clone(),
        kind: cfg.kind.as_str().to_string(),
        state: s.phase().to_string(),
        enabled: cfg.enabled,
        pid: s.pid(),
        started_at: s.started_at.map(timestamp),
        uptime_seconds: s
            .started_at
            .filter(|_| up)
            .map(|at| seconds(now.duration_since(at).unwrap_or_default())),
        runs: s.runs,
        restarts: s.restarts,
        // Only for a run under way: a stopped process is not healthy, and
        // a new run has no result before its first check.
        health: match (&cfg.health_check, &s.health) {
            (None, _) => None,
            (Some(_), _) if !up => None,
            (Some(_), Some(h)) => Some(h.health.as_str().to_string()),
            (Some(_), None) => Some("starting".to_string()),
        },
        last_exit: s.last_exit.map(exit),
        last_error: s.last_error.clone(),
        waiting_reason: match &s.lifecycle {
            Lifecycle::Waiting { reason } => Some(reason.clone()),
            _ => None,
        },
        usage: None,
    }
}

/// Every process, in config order.
pub fn list(control: &Control) -> Vec<api::Process> {
    list_of(control, None)
}

/// The processes named in `only` (every one without it), in config order.
pub fn list_of(control: &Control, only: Option<&[&str]>) -> Vec<api::Process> {
    let now = SystemTime::now();
    // One lineup: a reload cannot come between the configs and the states.
    let (config, handles) = control.lineup();
    config
        .processes
        .iter()
        .zip(handles.iter())
        .filter(|(cfg, _)| named(only, &cfg.id))
        .map(|(cfg, h)| process(cfg, &h.status(), now))
        .collect()
}

fn named(only: Option<&[&str]>, id: &str) -> bool {
    only.is_none_or(|ids| ids.contains(&id))
}

/// [`list_of`], each with what its run uses now (read from every running
/// process at once, within the usage deadline).
pub async fn list_with_usage(control: &Control, only: Option<&[&str]>) -> Vec<api::Process> {
    let now = SystemTime::now();
    let (config, handles) = control.lineup();
    let rows: Vec<_> = config
        .processes
        .iter()
        .zip(handles.iter())
        .filter(|(cfg, _)| named(only, &cfg.id))
        .map(|(cfg, h)| (cfg, h, h.status()))
        .collect();
    let running = rows.iter().map(|(_, h, s)| (*h, s.phase().is_active()));
    let usages = resources::usages(running, resources::USAGE_DEADLINE).await;
    rows.iter()
        .zip(usages)
        .map(|((cfg, _, s), u)| api::Process {
            usage: u.as_ref().map(resources::wire_usage),
            ..process(cfg, s, now)
        })
        .collect()
}

fn config_of(control: &Control, id: &str) -> Result<Arc<ProcessConfig>, Refusal> {
    control
        .config()
        .process(id)
        .cloned()
        .ok_or_else(|| Refusal::from(ManagerError::UnknownProcess(id.to_string())))
}

/// One process as a row of the table.
pub fn one(control: &Control, id: &str) -> Result<api::Process, Refusal> {
    let cfg = config_of(control, id)?;
    let status = control.handle(id)?.status();
    Ok(process(&cfg, &status, SystemTime::now()))
}

fn health_kind(kind: HealthCheckKind) -> &'static str {
    match kind {
        HealthCheckKind::Http => "http",
        HealthCheckKind::Grpc => "grpc",
        HealthCheckKind::Tcp => "tcp",
        HealthCheckKind::Exec => "exec",
        HealthCheckKind::Process => "process",
    }
}

/// One process with its diagnostics.
pub async fn detail(control: &Control, id: &str) -> Result<api::ProcessDetail, Refusal> {
    let cfg = config_of(control, id)?;
    let handle = control.handle(id)?;
    let pids = handle.pids().await;
    let usage = resources::usage_by(&handle, Instant::now() + resources::USAGE_DEADLINE).await;
    let s = handle.status();
    let health_check = match (&cfg.health_check, &s.health) {
        (Some(hc), Some(h)) => Some(api::HealthCheck {
            kind: health_kind(hc.kind).to_string(),
            state: h.health.as_str().to_string(),
            last_check: h.last_check.map(timestamp),
            last_latency_seconds: h.last_latency.map(|d| d.as_secs_f64()),
            last_result: h.last_result.clone(),
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error.clone(),
        }),
        _ => None,
    };
    let log_file = LogSet::of(&control.config(), &cfg)
        .ok()
        .flatten()
        .map(|set| set.path.display().to_string());
    let counters = handle.log_counters();
    let rl = resources::applicable(&cfg);
    let any_limit = !resources::limits(rl, &s.enforcement).is_empty();
    Ok(api::ProcessDetail {
        process: process(&cfg, &s, SystemTime::now()),
        last_transition: s.last_transition.as_ref().map(transition),
        pids,
        breaker: match s.breaker {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
        }
        .to_string(),
        health_check,
        log_file,
        log_bytes: counters
            .bytes_read
            .load(std::sync::atomic::Ordering::Relaxed),
        log_dropped: counters.dropped(),
        restarts_by_cause: s
            .restart_causes
            .iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        limits: resources::wire_limits(rl, &s.enforcement),
        on_violation: any_limit.then(|| rl.on_violation.as_str().to_string()),
        violation_grace_seconds: any_limit.then_some(rl.violation_grace.as_secs_f64()),
        sample_interval_seconds: any_limit.then_some(rl.sample_interval.as_secs_f64()),
        // A run that ended since the reading has no usage any more.
        usage: usage
            .filter(|_| s.phase().is_active())
            .as_ref()
            .map(resources::wire_usage),
        oom_kills: s.oom_kills,
        violations: s.violations,
    })
}

/// The manager itself.
pub fn manager(control: &Control) -> api::ManagerInfo {
    let states = control.process_states();
    let mut by_state = BTreeMap::new();
    for s in &states {
        *by_state.entry(s.phase().to_string()).or_insert(0) += 1;
    }
    let started = control.started_at();
    api::ManagerInfo {
        state: control.manager_state().as_str().to_string(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: timestamp(started),
        uptime_seconds: seconds(
            SystemTime::now()
                .duration_since(started)
                .unwrap_or_default(),
        ),
        config_file: control.config().source.display().to_string(),
        state_dir: control.state_dir().display().to_string(),
        cgroups: control.uses_cgroups(),
        processes: states.len() as u32,
        by_state,
    }
}

/// Whether the manager's shutdown has begun.
pub fn shutting_down(control: &Control) -> bool {
    matches!(
        control.manager_state(),
        ManagerState::Stopping | ManagerState::Stopped
    )
}

/// What a start, stop or restart is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `with_deps`: every process it depends on is started too (else the
    /// start is refused when one of them is down).
    Start {
        with_deps: bool,
    },
    Stop,
    Restart,
}

/// Starts, stops or restarts a process and answers with its new state.
/// With `wait`, returns once done; without, once the request is sent.
pub async fn act(
    control: &Control,
    id: &str,
    verb: Verb,
    wait: bool,
) -> Result<api::Process, Refusal> {
    let handle = control.handle(id)?;
    if verb != Verb::Stop && shutting_down(control) {
        // A process started now would only be stopped again at once.
        return Err(Refusal::Unavailable(
            "the manager is shutting down: nothing starts any more".to_string(),
        ));
    }
    let ticket = match verb {
        Verb::Start { with_deps } => control.request_start(id, with_deps)?,
        Verb::Stop => handle.stop(),
        Verb::Restart => handle.restart(),
    };
    if wait {
        ticket.await.map_err(ManagerError::from)?;
        if verb != Verb::Stop {
            ready(control, id).await?;
        }
    }
    one(control, id)
}

/// After a start: a process with a health check is `starting` until its
/// first check passes; wait for that (as `systemctl start` waits for a
/// service's readiness), bounded by its `startup_timeout`, after which it
/// is no longer `starting` either way.
async fn ready(control: &Control, id: &str) -> Result<(), Refusal> {
    let cfg = config_of(control, id)?;
    if cfg.health_check.is_none() {
        return Ok(());
    }
    let mut status = control.handle(id)?.subscribe();
    let bound = cfg.control.startup_timeout + Duration::from_secs(5);
    let settled = status.wait_for(|s| s.phase() != Phase::Starting);
    // Past the bound the answer says `starting`, which is the truth.
    let _ = tokio::time::timeout(bound, settled).await;
    Ok(())
}

/// Sends a signal by name or number.
pub async fn signal(
    control: &Control,
    id: &str,
    request: &api::SignalRequest,
) -> Result<api::Process, Refusal> {
    let handle = control.handle(id)?;
    let sig = signal_named(&request.signal).ok_or_else(|| {
        Refusal::BadRequest(format!(
            "`{}` is not a signal: use a name in upper or lower case, with or without SIG (TERM, SIGHUP, usr1), or a number from 1 to 64",
            request.signal.chars().take(40).collect::<String>()
        ))
    })?;
    handle
        .signal(sig, request.tree)
        .await
        .map_err(ManagerError::from)?;
    one(control, id)
}

/// The signal `text` names, in exactly the forms the OpenAPI pattern of
/// `SignalRequest.signal` allows: a name in one case, with or without
/// `SIG`, or a number from 1 to 64 without sign or leading zero.
fn signal_named(text: &str) -> Option<Signal> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return if text.starts_with('0') {
            None
        } else {
            Signal::parse(text)
        };
    }
    let plain = text.bytes().all(|b| b.is_ascii_alphanumeric());
    let one_case = text == text.to_ascii_uppercase() || text == text.to_ascii_lowercase();
    if plain && one_case {
        Signal::parse(text)
    } else {
        None
    }
}

/// The wire form of an engine event.
pub fn event(e: &Event) -> api::Event {
    api::Event {
        seq: e.seq,
        process: e.process.to_string(),
        from: e.transition.from.to_string(),
        to: e.transition.to.to_string(),
        cause: e.transition.cause.to_string(),
        cause_kind: e.transition.cause.kind().to_string(),
        pid: e.pid,
        run: e.run,
        at: timestamp(e.transition.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_as_the_schema_says() {
        for (text, n) in [
            ("TERM", 15),
            ("SIGTERM", 15),
            ("term", 15),
            ("sighup", 1),
            ("usr1", 10),
            ("9", 9),
            ("64", 64),
        ] {
            assert_eq!(signal_named(text), Some(Signal(n)), "{text}");
        }
        for text in [
            "", " TERM", "Term", "SIGterm", "sig15", "SIG15", "0", "015", "+15", "65", "NOPE",
            "TERM\n",
        ] {
            assert_eq!(signal_named(text), None, "{text:?}");
        }
    }
}
