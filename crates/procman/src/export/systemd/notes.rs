//! What systemd cannot express: health checks (written as a comment in
//! the unit, and a warning), the settings of procman's own log files, the
//! limit watcher and the manager itself (warnings).

use procman_core::config::{
    Config, HealthCheck, HealthCheckKind, LogFile, LogTarget, Logging, ManagerConfig,
    ProcessConfig, ProcessKind, ProcessLogFormat, ResourceLimits,
};

use super::quote::{shown, shown_list};
use super::span;
use crate::export::Warning;

/// The check procman runs on `p`: its own, or the gRPC health protocol on
/// the port of an `integrated_managed` process without one.
pub fn health_check(p: &ProcessConfig) -> Option<HealthCheck> {
    match (&p.health_check, p.kind) {
        (Some(h), _) => Some(HealthCheck::clone(h)),
        (None, ProcessKind::IntegratedManaged) => {
            Some(HealthCheck::with_defaults(HealthCheckKind::Grpc))
        }
        (None, _) => None,
    }
}

/// The comment lines that describe a probe systemd cannot run (`None`
/// for a `process` check, which is what systemd does anyway).
pub fn probe_comment(p: &ProcessConfig, h: &HealthCheck) -> Option<Vec<String>> {
    let kind = kind_name(h.kind)?;
    let mut lines = vec![format!(
        "# Health check, not carried over (systemd has no {kind} probe):"
    )];
    match h.kind {
        HealthCheckKind::Http => {
            let endpoint = h.http_endpoint.as_deref().unwrap_or_default();
            lines.push(format!("#   http_endpoint: {}", shown(endpoint)));
            if h.expected_status.is_empty() {
                lines.push("#   expected_status: any 2xx or 3xx".to_string());
            } else {
                let codes: Vec<String> = h.expected_status.iter().map(u16::to_string).collect();
                lines.push(format!("#   expected_status: [{}]", codes.join(", ")));
            }
        }
        HealthCheckKind::Grpc => {
            match (&h.grpc_endpoint, p.control.port) {
                (Some(e), _) => lines.push(format!("#   grpc_endpoint: {}", shown(e))),
                (None, Some(port)) => lines.push(format!("#   grpc_endpoint: the port, {port}")),
                (None, None) => {
                    lines.push("#   grpc_endpoint: the port procman gives it".to_string());
                }
            }
            let service = h.grpc_service.as_deref().unwrap_or_default();
            lines.push(format!("#   grpc_service: {}", shown(service)));
        }
        HealthCheckKind::Tcp => {
            let endpoint = h.tcp_endpoint.as_deref().unwrap_or_default();
            lines.push(format!("#   tcp_endpoint: {}", shown(endpoint)));
        }
        HealthCheckKind::Exec => {
            lines.push(format!("#   command: {}", shown_list(&h.command)));
        }
        HealthCheckKind::Process => return None,
    }
    if h.tls_skip_verify {
        lines.push("#   tls_skip_verify: true".to_string());
    }
    lines.push(format!(
        "#   interval: {}, timeout: {}, initial_delay: {}, failure_threshold: {}, \
         success_threshold: {}",
        span(h.interval),
        span(h.timeout),
        if h.initial_delay.is_zero() {
            "0s".to_string()
        } else {
            span(h.initial_delay)
        },
        h.failure_threshold,
        h.success_threshold
    ));
    lines.push(
        "# Under procman the first passing check ends the start (within startup_timeout) and"
            .to_string(),
    );
    lines.push(
        "# failure_threshold failed checks end the run; here the unit is started once its"
            .to_string(),
    );
    lines.push("# program runs, and only its exit ends the run.".to_string());
    Some(lines)
}

/// The warning for a check written as a comment in `unit`.
pub fn probe_warning(p: &ProcessConfig, path: &str, h: &HealthCheck, unit: &str) -> Warning {
    let kind = kind_name(h.kind).unwrap_or("process");
    let (key, what) = if p.health_check.is_some() {
        (format!("{path}.management.health_check"), "the check")
    } else {
        (
            format!("{path}.type"),
            "integrated_managed: procman's gRPC health check",
        )
    };
    Warning::new(
        key,
        format!(
            "systemd has no {kind} probe: {what} is written as a comment in `{unit}`; the unit \
             counts as started once its program runs, a failing check ends nothing, and `healthy` \
             dependents wait only for the start"
        ),
    )
}

fn kind_name(kind: HealthCheckKind) -> Option<&'static str> {
    match kind {
        HealthCheckKind::Http => Some("HTTP"),
        HealthCheckKind::Grpc => Some("gRPC"),
        HealthCheckKind::Tcp => Some("TCP"),
        HealthCheckKind::Exec => Some("exec"),
        HealthCheckKind::Process => None,
    }
}

/// Warnings for the logging settings the journal replaces.
pub fn logging(l: &Logging, path: &str, unit: &str) -> Vec<Warning> {
    let key = |k: &str| format!("{path}.management.logging.{k}");
    let journal = format!("the journal takes stdout and stderr (`journalctl -u {unit}`)");
    let mut out = Vec::new();
    if let LogFile::Path(file) = &l.file {
        out.push(Warning::new(
            key("file"),
            format!("{journal}: {} is not written", file.display()),
        ));
    }
    if l.format != ProcessLogFormat::Plain {
        out.push(Warning::new(
            key("format"),
            format!("{journal} and stamps each line itself: the format is not carried over"),
        ));
    }
    if l.rotation.is_some() {
        out.push(Warning::new(
            key("rotation"),
            format!(
                "{journal}, rotated by journald's own settings (SystemMaxUse= in \
                 journald.conf): not carried over"
            ),
        ));
    }
    if l.buffer_size != 8192 {
        out.push(Warning::new(
            key("buffer_size"),
            format!(
                "{journal}; journald splits lines at its own LineMax= (journald.conf): \
                 not carried over"
            ),
        ));
    }
    out
}

/// Warnings for the settings of procman's limit watcher: under systemd
/// the kernel enforces every limit, so nothing is left to watch.
pub fn limit_watch(r: &ResourceLimits, path: &str) -> Vec<Warning> {
    let key = |k: &str| format!("{path}.management.resource_limits.{k}");
    let why = "the kernel enforces every limit of a unit (MemoryMax= kills, CPUQuota= throttles, \
               TasksMax= refuses new tasks), so procman's watcher has no equivalent";
    let defaults = ResourceLimits::default();
    let mut out = Vec::new();
    if r.on_violation != defaults.on_violation {
        out.push(Warning::new(
            key("on_violation"),
            format!(
                "{why}: on_violation {} is not carried over",
                r.on_violation.as_str()
            ),
        ));
    }
    if r.violation_grace != defaults.violation_grace {
        out.push(Warning::new(
            key("violation_grace"),
            format!("{why}: not carried over"),
        ));
    }
    if r.sample_interval != defaults.sample_interval {
        out.push(Warning::new(
            key("sample_interval"),
            format!("{why}: not carried over"),
        ));
    }
    out
}

/// One warning for every setting of the manager itself.
pub fn manager(config: &Config, name: &str) -> Option<Warning> {
    let m = &config.manager;
    let d = default_manager();
    let set: Vec<&str> = [
        ("port", m.port != d.port),
        ("bind", m.bind != d.bind),
        ("log_level", m.log_level != d.log_level),
        ("log_format", m.log_format != d.log_format),
        (
            "force_shutdown_timeout",
            m.force_shutdown_timeout != d.force_shutdown_timeout,
        ),
        ("state_dir", m.state_dir.is_some()),
        ("log_dir", m.log_dir.is_some()),
        ("api_token", m.api_token.is_some()),
        ("api_token_file", m.api_token_file.is_some()),
    ]
    .iter()
    .filter(|(_, differs)| *differs)
    .map(|(k, _)| *k)
    .collect();
    if set.is_empty() {
        return None;
    }
    Some(Warning::new(
        "process_manager",
        format!(
            "settings of procman's own manager, not carried over: {}; systemd is the manager \
                 here (no control API, output in the journal, no state directory, and each unit's \
                 TimeoutStopSec= bounds its own stop, with no deadline for the whole \
                 {name}.target)",
            set.join(", ")
        ),
    ))
}

/// The warning for `log_collection` when it sends lines somewhere: the
/// journal collects instead.
pub fn log_collection(config: &Config, name: &str) -> Option<Warning> {
    let c = &config.log_collection;
    if !c.enabled || !c.aggregation_enabled || c.targets.is_empty() {
        return None;
    }
    let targets: Vec<String> = c
        .targets
        .iter()
        .map(|t| match t {
            LogTarget::File { path, .. } => format!("the file {}", path.display()),
            LogTarget::ManagerStdout { .. } => "the manager's stdout".to_string(),
            LogTarget::ManagerStderr { .. } => "the manager's stderr".to_string(),
        })
        .collect();
    Some(Warning::new(
        "log_collection",
        format!(
            "the journal collects the output of every unit (`journalctl -u '{name}-*'`); not \
             written: {}",
            targets.join(", ")
        ),
    ))
}

/// `process_manager:` as a config without one has it.
fn default_manager() -> ManagerConfig {
    ManagerConfig {
        port: 50055,
        bind: "127.0.0.1".to_string(),
        log_level: procman_core::config::LogLevel::Info,
        log_format: procman_core::config::LogFormat::Plain,
        force_shutdown_timeout: std::time::Duration::from_secs(30),
        state_dir: None,
        log_dir: None,
        api_token: None,
        api_token_file: None,
    }
}
