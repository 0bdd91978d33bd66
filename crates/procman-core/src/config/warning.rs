//! Warnings: settings that are legal but very likely not what was meant.
//! The file still loads; `procman validate` prints them and `procman run`
//! logs them at start.
//!
//! They are judged on the decoded values (defaults filled in), and point
//! back at the key that was written, or at the setting that makes the
//! default a problem.

use std::time::Duration;

use super::decode::Decoder;
use super::error::cut;
use super::node::{Item, Pos, Section};
use super::schema::{Config, ProcessConfig, ProcessKind, RestartStrategy};

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
    for (process, item) in config.processes.iter().zip(items) {
        if process.kind == ProcessKind::Unmanaged {
            // Never stopped or restarted by us.
            continue;
        }
        outlives_shutdown(d, config, top, process, item);
        crash_loop(d, process, item);
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

fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}
