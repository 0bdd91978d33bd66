//! `procman validate -c FILE`: every error at once, or a one-line summary
//! after the warnings (if any), which go to stderr like the errors; then,
//! when processes have resource limits, what would enforce each of them on
//! this host (cgroup v2, cgroup v1, rlimit, or the manager's monitor and
//! why). A limit the host cannot enforce is not an error: the manager
//! watches it instead, and says so at start too.

use procman_core::config::{Config, ProcessConfig, ProcessKind, ResourceLimits};
use procman_core::platform::{Controller, Controllers, Enforcer, Host};

use super::output::Out;
use super::ConfigArg;
use crate::console;
use crate::exit::Failure;

/// What [`Controllers::probe`] says of each controller.
pub(super) type Probe = [(Controller, Result<Enforcer, String>)];

pub fn validate(args: ConfigArg) -> Result<(), Failure> {
    let config = super::load(&args.config)?;
    for line in procman_core::config::warning_lines(&config.warnings, &args.config) {
        console::write(format!("{line}\n").as_bytes());
    }
    let total = config.processes.len();
    let enabled = config.processes.iter().filter(|p| p.enabled).count();
    let warnings = match config.warnings.len() {
        0 => "no warnings".to_string(),
        1 => "1 warning".to_string(),
        n => format!("{n} warnings"),
    };
    let mut out = Out::new();
    out.line(&format!(
        "{}: valid ({total} process{}, {enabled} enabled, {warnings})",
        args.config.display(),
        if total == 1 { "" } else { "es" }
    ))?;
    // The host is read only when there is something to say about it.
    if config.processes.iter().any(|p| has_limits(p)) {
        let probe = Controllers::probe(&Host::current());
        for line in limits_report(&config, &probe) {
            out.line(&line)?;
        }
    }
    out.flush()
}

fn has_limits(p: &ProcessConfig) -> bool {
    let l = &p.resource_limits;
    l.max_file_descriptors.is_some() || l.kernel().controllers().next().is_some()
}

/// The lines after the summary: a heading, one line per process with
/// limits (`web: max_memory_mb 512 (cgroup v1), ...`), then why each limit
/// the kernel cannot enforce is watched by the manager. Empty when no
/// process has a limit.
pub(super) fn limits_report(config: &Config, probe: &Probe) -> Vec<String> {
    let mut lines = Vec::new();
    let mut watched: Vec<Controller> = Vec::new();
    for p in config.processes.iter().filter(|p| has_limits(p)) {
        let l = &p.resource_limits;
        if p.kind == ProcessKind::Unmanaged {
            let shown: Vec<String> = values(l)
                .into_iter()
                .map(|(key, value, _)| format!("{key} {value}"))
                .collect();
            lines.push(format!(
                "  {} (unmanaged, never started: not enforced): {}",
                p.id,
                shown.join(", ")
            ));
            continue;
        }
        let mut parts = Vec::new();
        for (key, value, ctrl) in values(l) {
            let by = match ctrl {
                None => Enforcer::Rlimit.as_str().to_string(),
                Some(c) => match verdict(probe, c) {
                    Ok(e) if e != Enforcer::Monitor => e.as_str().to_string(),
                    _ => {
                        if !watched.contains(&c) {
                            watched.push(c);
                        }
                        format!(
                            "{}, on_violation: {} after {}",
                            Enforcer::Monitor.as_str(),
                            l.on_violation.as_str(),
                            humantime::format_duration(l.violation_grace)
                        )
                    }
                },
            };
            parts.push(format!("{key} {value} ({by})"));
        }
        lines.push(format!("  {}: {}", p.id, parts.join(", ")));
    }
    if lines.is_empty() {
        return lines;
    }
    lines.insert(
        0,
        "resource limits, as this host would enforce them:".to_string(),
    );
    watched.sort_by_key(|c| Controller::ALL.iter().position(|a| a == c));
    for c in watched {
        let why = match verdict(probe, c) {
            Err(why) => why,
            Ok(_) => "the kernel cannot enforce it".to_string(),
        };
        lines.push(format!(
            "  {} is watched by the manager (every sample_interval): {why}",
            c.key()
        ));
    }
    lines
}

fn verdict(probe: &Probe, c: Controller) -> Result<Enforcer, String> {
    probe.iter().find(|(p, _)| *p == c).map_or_else(
        || Err("the host was not probed".to_string()),
        |(_, v)| v.clone(),
    )
}

/// Each limit that is set, in the config's order: its key, its value as
/// written, and the controller that enforces it (`None`: an rlimit).
fn values(l: &ResourceLimits) -> Vec<(&'static str, String, Option<Controller>)> {
    let text = |n: Option<u64>| n.map(|n| n.to_string());
    [
        (Some(Controller::Memory), text(l.max_memory_mb)),
        (
            Some(Controller::Cpu),
            l.max_cpu_percent.map(|p| p.to_string()),
        ),
        (None, text(l.max_file_descriptors)),
        (Some(Controller::Pids), text(l.max_processes)),
    ]
    .into_iter()
    .filter_map(|(ctrl, value)| {
        let key = ctrl.map_or("max_file_descriptors", Controller::key);
        Some((key, value?, ctrl))
    })
    .collect()
}

#[cfg(test)]
#[path = "tests/validate.rs"]
mod tests;
