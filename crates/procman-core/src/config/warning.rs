//! Warnings: settings that are legal but very likely not what was meant.
//! The file still loads; `procman validate` prints them and `procman run`
//! logs them at start.
//!
//! They are judged on the decoded values (defaults filled in), and point
//! back at the key that was written, or at the setting that makes the
//! default a problem.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::decode::Decoder;
use super::error::cut;
use super::node::{Item, Pos, Section};
use super::schema::{Config, ProcessConfig, ProcessKind, RestartStrategy, ViolationAction};

pub(super) fn check(d: &mut Decoder<'_>, config: &Config, top: &Section<'_>, items: &[Item<'_>]) {
    if config.processes.is_empty() {
        // At `managed_processes: []` if it is written, else the whole file.
        let pos = top
            .written("managed_processes")
            .map_or(Pos::default(), |item| item.key_pos);
        d.warn(
            pos,
            "managed_processes",
            "no process is configured: the manager would have nothing to run",
        );
    }
    // Asked once, and only when a CPU limit is written.
    let cpus = config
        .processes
        .iter()
        .any(|p| p.resource_limits.max_cpu_percent.is_some())
        .then(|| std::thread::available_parallelism().ok())
        .flatten();
    // Whether each id is enabled (the first process with it, as
    // `Config::process` finds): a lookup per dependency, not a scan.
    let mut enabled: HashMap<&str, bool> = HashMap::with_capacity(config.processes.len());
    for p in &config.processes {
        enabled.entry(p.id.as_str()).or_insert(p.enabled);
    }
    for (process, item) in config.processes.iter().zip(items) {
        if process.kind == ProcessKind::Unmanaged {
            // Never started, stopped or restarted by us.
            unmanaged_limits(d, process, item);
            continue;
        }
        outlives_shutdown(d, config, top, process, item);
        crash_loop(d, process, item);
        nothing_to_watch(d, process, item);
        restart_never(d, process, item);
        cpu_beyond_host(d, process, item, cpus);
        disabled_dependency(d, &enabled, process, item);
    }
}

/// A grace period longer than the whole shutdown's deadline: at shutdown
/// the process is SIGKILLed before its own grace is over.
fn outlives_shutdown(
    d: &mut Decoder<'_>,
    config: &Config,
    top: &Section<'_>,
    process: &ProcessConfig,
    item: &Item<'_>,
) {
    let grace = process.control.shutdown_timeout;
    let deadline = config.manager.force_shutdown_timeout;
    if grace <= deadline {
        return;
    }
    let written = item.at(&["management", "control", "shutdown_timeout"]);
    let (pos, path, default) = match written {
        Some(at) => (at.pos(), at.path, ""),
        // The default grace, made too long by a short deadline: point at
        // the deadline, once for each process it cuts short.
        None => match top
            .get("process_manager")
            .and_then(|pm| pm.at(&["force_shutdown_timeout"]))
        {
            Some(at) => (at.pos(), at.path, ", the default"),
            None => return,
        },
    };
    let message = format!(
        "shutdown_timeout of `{}` ({}{default}) is longer than \
         process_manager.force_shutdown_timeout ({}): when the manager shuts \
         down, the process is killed before its grace period ends",
        cut(&process.id),
        show(grace),
        show(deadline),
    );
    d.warn(pos, &path, message);
}

/// Restarts at once and without limit: a process that fails at start is
/// restarted in a loop as fast as it can fork.
fn crash_loop(d: &mut Decoder<'_>, process: &ProcessConfig, item: &Item<'_>) {
    let policy = &process.restart;
    let unlimited = policy.max_attempts == 0;
    if policy.strategy == RestartStrategy::Never || !policy.restart_delay.is_zero() || !unlimited {
        return;
    }
    // `restart_delay` defaults to 1s, so a zero one is written.
    let Some(at) = item.at(&["management", "restart_policy", "restart_delay"]) else {
        return;
    };
    d.warn(
        at.pos(),
        &at.path,
        "restart_delay 0s with max_attempts 0 (no limit): a process that keeps \
         failing is restarted in a loop at full speed; set a delay or a limit",
    );
}

/// Limits on a process procman never starts: nothing applies them.
fn unmanaged_limits(d: &mut Decoder<'_>, process: &ProcessConfig, item: &Item<'_>) {
    let Some(at) = item.at(&["management", "resource_limits"]) else {
        return;
    };
    let message = format!(
        "resource_limits of `{}` are not enforced: procman never starts an unmanaged \
         process, so it cannot put it under limits",
        cut(&process.id)
    );
    d.warn(at.key_pos, &at.path, message);
}

/// `on_violation`, `violation_grace` or `sample_interval` without a limit
/// they apply to: they govern only what the manager watches, which
/// `max_file_descriptors` never is.
fn nothing_to_watch(d: &mut Decoder<'_>, process: &ProcessConfig, item: &Item<'_>) {
    if process
        .resource_limits
        .kernel()
        .controllers()
        .next()
        .is_some()
    {
        return;
    }
    let mut written: Vec<Item<'_>> = ["on_violation", "violation_grace", "sample_interval"]
        .iter()
        .filter_map(|key| item.at(&["management", "resource_limits", key]))
        .collect();
    written.sort_by_key(|i| (i.key_pos.line, i.key_pos.column));
    let Some(first) = written.first() else {
        return;
    };
    let keys: Vec<&str> = written
        .iter()
        .filter_map(|i| i.path.rsplit('.').next())
        .collect();
    let (verb, pronoun) = if keys.len() == 1 {
        ("has", "it governs")
    } else {
        ("have", "they govern")
    };
    let message = format!(
        "{} {verb} no effect without max_memory_mb, max_cpu_percent or max_processes: \
         {pronoun} only those limits, when the kernel cannot enforce them \
         (max_file_descriptors always is)",
        keys.join(", ")
    );
    d.warn(first.pos(), &first.path, message);
}

/// `on_violation: restart` where the restart policy never restarts: the
/// run ends, and that is all.
fn restart_never(d: &mut Decoder<'_>, process: &ProcessConfig, item: &Item<'_>) {
    let limits = &process.resource_limits;
    if limits.on_violation != ViolationAction::Restart
        || process.restart.strategy != RestartStrategy::Never
        || limits.kernel().controllers().next().is_none()
    {
        return;
    }
    let Some(at) = item.at(&["management", "resource_limits", "on_violation"]) else {
        return;
    };
    d.warn(
        at.pos(),
        &at.path,
        "on_violation restart with restart_policy.strategy never: a violation ends \
         the run, which is then not restarted (the process is left failed, as with \
         on_violation stop)",
    );
}

/// A CPU limit above what the host has: the kernel never throttles it.
/// Not an error: a container may be given more CPUs later.
fn cpu_beyond_host(
    d: &mut Decoder<'_>,
    process: &ProcessConfig,
    item: &Item<'_>,
    cpus: Option<NonZeroUsize>,
) {
    let (Some(pct), Some(cpus)) = (process.resource_limits.max_cpu_percent, cpus) else {
        return;
    };
    let all = cpus.get() as f64 * 100.0;
    if pct <= all {
        return;
    }
    let Some(at) = item.at(&["management", "resource_limits", "max_cpu_percent"]) else {
        return;
    };
    let plural = if cpus.get() == 1 { "" } else { "s" };
    let message = format!(
        "max_cpu_percent {} is more than all {cpus} CPU{plural} the manager may use \
         here ({all}%): the limit cannot be reached on this host as it is",
        cut(&pct.to_string())
    );
    d.warn(at.pos(), &at.path, message);
}

/// An enabled process that depends on one that is not: the dependency
/// never starts with the manager, so the process waits (`waiting`) until
/// someone starts the dependency.
fn disabled_dependency(
    d: &mut Decoder<'_>,
    enabled: &HashMap<&str, bool>,
    process: &ProcessConfig,
    item: &Item<'_>,
) {
    if !process.enabled {
        return;
    }
    let Some(entries) = item.at(&["depends_on"]).and_then(|i| i.elements()) else {
        return;
    };
    for dep in &process.depends_on {
        if enabled.get(dep.id.as_str()).is_none_or(|&on| on) {
            continue;
        }
        let names = |e: &Item<'_>| {
            let id = e
                .plain_text()
                .or_else(|| e.at(&["id"]).and_then(|i| i.plain_text()));
            id == Some(dep.id.as_str())
        };
        let Some(entry) = entries.iter().find(|e| names(e)) else {
            continue;
        };
        let message = format!(
            "`{}` depends on `{}`, which is not enabled: `{}` never starts with the \
             manager, so `{}` waits for it (state waiting) until it is started by hand",
            cut(&process.id),
            cut(&dep.id),
            cut(&dep.id),
            cut(&process.id),
        );
        d.warn(entry.pos(), &entry.path, message);
    }
}

fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}
