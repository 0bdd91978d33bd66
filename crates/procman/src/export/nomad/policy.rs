//! The restart policy as a task's `restart` block and its group's
//! `reschedule`, and the resource limits as `resources` (and, for the
//! docker driver, its `ulimit` and `pids_limit`).
//!
//! procman's circuit breaker (at most `max_attempts` restarts within
//! `window`, then the process is `failed` and stays so) is Nomad's
//! `mode = "fail"` with `attempts` and `interval`, and rescheduling off,
//! so that a failed group is not placed again. `max_attempts: 0` (no
//! limit) is `mode = "delay"`, which never gives up. Nomad's delay is
//! fixed (plus up to 25% jitter): procman's growing backoff is not
//! carried.

use std::time::Duration;

use procman_core::config::{Config, ProcessConfig, RestartStrategy, ViolationAction};

use super::hcl::Block;
use super::placement::{Hook, JobType};
use super::Driver;
use crate::export::{duration_text, process_path, seconds, Warning};

/// Nomad's smallest restart `interval`.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The longest duration Nomad reads (Go's `time.Duration`, 2^63 - 1 ns),
/// in whole seconds.
const MAX_DURATION: Duration = Duration::from_secs(9_223_372_036);
/// Nomad's smallest `memory`, in MB.
const MIN_MEMORY_MB: u64 = 10;

/// The task's `restart` block. `job_type` and `hook` decide whether
/// Nomad restarts the task after exit 0 (a main task of a service job).
pub fn restart(
    config: &Config,
    i: usize,
    job_type: JobType,
    hook: Hook,
    warnings: &mut Vec<Warning>,
) -> Block {
    let p = &config.processes[i];
    let r = &p.restart;
    let key = |k: &str| format!("{}.management.restart_policy.{k}", process_path(i));
    let interval = r.window.max(MIN_INTERVAL);
    let mut block = Block::new("restart", &[]);
    if r.strategy == RestartStrategy::Never {
        block.int("attempts", 0);
        block.str("interval", duration_text(interval));
        block.str("delay", duration_text(r.restart_delay));
        block.str("mode", "fail");
        return block;
    }
    let restarts_after_success = job_type == JobType::Service && hook == Hook::Main;
    match r.strategy {
        RestartStrategy::OnFailure if restarts_after_success => warnings.push(Warning::new(
            key("strategy"),
            "on_failure: in a service job Nomad restarts a main task after any exit, exit 0 included (as always)",
        )),
        RestartStrategy::Always if !restarts_after_success => warnings.push(Warning::new(
            key("strategy"),
            "always: Nomad does not restart a batch job's task or a lifecycle task after exit 0",
        )),
        _ => {}
    }
    if r.max_attempts == 0 {
        // No limit: as many attempts as fit in the interval, then Nomad
        // waits for the next interval and goes on.
        let attempts = (seconds(interval) / seconds(r.restart_delay).max(1)).max(1);
        block.int("attempts", i64::try_from(attempts).unwrap_or(i64::MAX));
        block.str("interval", duration_text(interval));
        block.str("delay", duration_text(r.restart_delay));
        block.str("mode", "delay");
    } else {
        // Nomad refuses an interval that cannot hold the attempts, and
        // reads no duration longer than Go's.
        let needed = r.restart_delay.saturating_mul(r.max_attempts);
        let (attempts, interval) = if needed > MAX_DURATION {
            let fit = MAX_DURATION.as_nanos() / r.restart_delay.as_nanos().max(1);
            let attempts = u32::try_from(fit).unwrap_or(u32::MAX);
            warnings.push(Warning::new(
                key("max_attempts"),
                format!(
                    "{} restarts of {} each take longer than the longest duration Nomad reads (about 292 years): written as attempts = {attempts} within interval = {}",
                    r.max_attempts,
                    duration_text(r.restart_delay),
                    duration_text(MAX_DURATION)
                ),
            ));
            (attempts, MAX_DURATION)
        } else {
            let interval = interval.max(needed);
            if interval != r.window {
                warnings.push(Warning::new(
                    key("window"),
                    format!(
                        "Nomad's interval must be at least 5s and hold max_attempts × restart_delay: written as {}",
                        duration_text(interval)
                    ),
                ));
            }
            (r.max_attempts, interval)
        };
        block.int("attempts", attempts);
        block.str("interval", duration_text(interval));
        block.str("delay", duration_text(r.restart_delay));
        block.str("mode", "fail");
    }
    if r.backoff_multiplier > 1.0 {
        warnings.push(Warning::new(
            key("backoff_multiplier"),
            format!(
                "{} (up to max_delay {}) is not carried: Nomad waits the same delay, {}, before every restart",
                r.backoff_multiplier,
                duration_text(r.max_delay),
                duration_text(r.restart_delay)
            ),
        ));
    }
    if (r.jitter - 0.1).abs() > f64::EPSILON {
        warnings.push(Warning::new(
            key("jitter"),
            format!(
                "{} is not carried: Nomad adds up to 25% to each delay",
                r.jitter
            ),
        ));
    }
    if r.reset_after != Duration::from_secs(600) {
        warnings.push(Warning::new(
            key("reset_after"),
            format!(
                "{} is not carried: Nomad counts attempts in fixed intervals of {} from the first start",
                duration_text(r.reset_after),
                duration_text(interval)
            ),
        ));
    }
    block
}

/// The group's `reschedule` block: off, as procman never moves a failed
/// process elsewhere.
pub fn reschedule() -> Block {
    let mut block = Block::new("reschedule", &[]);
    block.int("attempts", 0);
    block.bool("unlimited", false);
    block
}

/// The task's `resources` block (`memory` in MB: Nomad's MB are MiB, as
/// procman's), or `None` when there is no memory limit.
pub fn resources(
    i: usize,
    p: &ProcessConfig,
    driver: Driver,
    warnings: &mut Vec<Warning>,
) -> Option<Block> {
    let l = &p.resource_limits;
    let base = format!("{}.management.resource_limits", process_path(i));
    let key = |k: &str| format!("{base}.{k}");
    if let Some(pct) = l.max_cpu_percent {
        warnings.push(Warning::new(
            key("max_cpu_percent"),
            format!("{pct}% is not carried: Nomad's cpu is a share in MHz, not a cap (cores = N would reserve N whole cores)"),
        ));
    }
    if driver == Driver::RawExec {
        if l.max_file_descriptors.is_some() {
            warnings.push(Warning::new(
                key("max_file_descriptors"),
                "raw_exec has no descriptor limit: the task inherits the client's",
            ));
        }
        if l.max_processes.is_some() {
            warnings.push(Warning::new(
                key("max_processes"),
                "raw_exec has no process limit: not carried",
            ));
        }
    }
    let monitor = [
        (l.on_violation != ViolationAction::Log, "on_violation"),
        (!l.violation_grace.is_zero(), "violation_grace"),
        (
            l.sample_interval != Duration::from_secs(5),
            "sample_interval",
        ),
    ];
    for (set, name) in monitor {
        if set {
            warnings.push(Warning::new(
                key(name),
                "not carried: Nomad's limits are enforced by the kernel at once, without a monitor",
            ));
        }
    }
    let Some(mb) = l.max_memory_mb else {
        warnings.push(Warning::new(
            base,
            "no max_memory_mb: Nomad gives the task its default 300 MB, a reservation and a limit; set one to what it needs",
        ));
        return None;
    };
    if mb < MIN_MEMORY_MB {
        warnings.push(Warning::new(
            key("max_memory_mb"),
            format!("{mb} is below Nomad's minimum: written as {MIN_MEMORY_MB}"),
        ));
    }
    let mut block = Block::new("resources", &[]);
    block.int(
        "memory",
        i64::try_from(mb.max(MIN_MEMORY_MB)).unwrap_or(i64::MAX),
    );
    Some(block)
}

/// The descriptor and process limits in a docker task's `config`.
pub fn docker_limits(p: &ProcessConfig, config: &mut Block) {
    let l = &p.resource_limits;
    if let Some(n) = l.max_processes {
        config.int("pids_limit", i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(n) = l.max_file_descriptors {
        let mut ulimit = Block::new("ulimit", &[]);
        ulimit.str("nofile", format!("{n}:{n}"));
        config.block(ulimit);
    }
}
