//! The `management` sections that shape a process's supervision:
//! `health_check`, `restart_policy`, `logging` (`resource_limits` is in
//! `limits.rs`).

use std::time::Duration;

use super::decode::{Decoder, Field};
use super::error::{cut, Problem};
use super::node::{Item, Section};
use super::process::codes;
use super::scalar;
use super::schema::{
    HealthCheck, HealthCheckKind, LogFile, Logging, ProcessKind, ProcessLogFormat, RestartPolicy,
    RestartStrategy, Rotation,
};

const HEALTH_KEYS: &[&str] = &[
    "enabled",
    "type",
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "initial_delay",
    "http_endpoint",
    "grpc_endpoint",
    "grpc_service",
    "tcp_endpoint",
    "command",
    "expected_status",
    "tls_skip_verify",
];
const RESTART_KEYS: &[&str] = &[
    "strategy",
    "max_attempts",
    "restart_delay",
    "backoff_multiplier",
    "max_delay",
    "jitter",
    "reset_after",
    "window",
];
const LOGGING_KEYS: &[&str] = &[
    "capture_stdout",
    "capture_stderr",
    "buffer_size",
    "file",
    "format",
    "rotation",
];
const ROTATION_KEYS: &[&str] = &["max_size_mb", "max_files"];

/// The keys each kind of check reads besides the common ones.
const KIND_KEYS: &[(HealthCheckKind, &str, &[&str])] = &[
    (
        HealthCheckKind::Http,
        "http",
        &["http_endpoint", "expected_status", "tls_skip_verify"],
    ),
    (
        HealthCheckKind::Grpc,
        "grpc",
        &["grpc_endpoint", "grpc_service", "tls_skip_verify"],
    ),
    (HealthCheckKind::Tcp, "tcp", &["tcp_endpoint"]),
    (HealthCheckKind::Exec, "exec", &["command"]),
    (HealthCheckKind::Process, "process", &[]),
];

/// Largest line buffer: a flood of long lines must not grow the manager.
const MAX_BUFFER: u64 = 16 << 20;

pub(super) fn health_check(
    d: &mut Decoder<'_>,
    mgmt: &Section<'_>,
    process: ProcessKind,
) -> Option<HealthCheck> {
    let s = d.child(mgmt, "health_check", HEALTH_KEYS);
    if !s.present() {
        return None;
    }
    let kinds: Vec<(&'static str, HealthCheckKind)> =
        KIND_KEYS.iter().map(|&(k, name, _)| (name, k)).collect();
    let enabled = d.field(&s, "enabled", Decoder::boolean).or(true);
    let kind = d.field(&s, "type", |d, i| d.choice(i, "health check type", &kinds));
    let interval = d.field(&s, "interval", positive_duration);
    let timeout = d.field(&s, "timeout", positive_duration);
    let threshold = |d: &mut Decoder<'_>, i: &Item<'_>| {
        d.uint(i, 1, u64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
    };
    let failure_threshold = d.field(&s, "failure_threshold", threshold).or(3);
    let success_threshold = d.field(&s, "success_threshold", threshold).or(1);
    let initial_delay = d.field(&s, "initial_delay", Decoder::duration);
    let http_endpoint = d.field(&s, "http_endpoint", |d, i| d.checked(i, scalar::http_url));
    let grpc_endpoint = d.field(&s, "grpc_endpoint", |d, i| d.checked(i, grpc_endpoint));
    let grpc_service = d.field(&s, "grpc_service", Decoder::string);
    let tcp_endpoint = d.field(&s, "tcp_endpoint", |d, i| d.checked(i, scalar::host_port));
    let command = d.field(&s, "command", command);
    let expected_status = d.field(&s, "expected_status", |d, i| codes(d, i, 100, 599));
    let tls_skip_verify = d.field(&s, "tls_skip_verify", Decoder::boolean);

    // A timeout longer than the interval would overlap probes. Without a
    // `timeout`, a short interval shortens the default timeout to match.
    let interval_value = interval.or(Duration::from_secs(10));
    let timeout_value = match (&timeout, &interval) {
        (Field::Given(t), Field::Given(_) | Field::Absent) if *t > interval_value => {
            if let Some(item) = s.get("timeout") {
                let message = format!(
                    "timeout ({}) must not exceed interval ({})",
                    humantime::format_duration(*t),
                    humantime::format_duration(interval_value)
                );
                d.invalid(&item, message);
            }
            *t
        }
        (Field::Given(t), _) => *t,
        _ => Duration::from_secs(1).min(interval_value),
    };
    if !enabled {
        return None;
    }

    let kind = match kind {
        Field::Given(kind) => kind,
        Field::Bad => return None,
        Field::Absent => infer_kind(&s, process).or_else(|| {
            let message = "cannot tell the kind of check: set `type` (http, grpc, tcp, exec \
                           or process) or one of http_endpoint, grpc_endpoint, tcp_endpoint, command";
            d.report(s.pos, &s.child("type"), Problem::Invalid(message.into()));
            None
        })?,
    };
    let (name, used) = KIND_KEYS
        .iter()
        .find(|&&(k, _, _)| k == kind)
        .map_or(("", &[][..]), |&(_, name, keys)| (name, keys));
    for key in [
        "http_endpoint",
        "expected_status",
        "grpc_endpoint",
        "grpc_service",
        "tcp_endpoint",
        "command",
        "tls_skip_verify",
    ] {
        if let (Some(item), false) = (s.get(key), used.contains(&key)) {
            d.invalid(
                &item,
                format!("`{key}` is not used by a check of type {name}"),
            );
        }
    }
    let needs = match kind {
        HealthCheckKind::Http => Some("http_endpoint"),
        HealthCheckKind::Tcp => Some("tcp_endpoint"),
        HealthCheckKind::Exec => Some("command"),
        // An integrated_managed process serves gRPC health on its own port.
        HealthCheckKind::Grpc if process != ProcessKind::IntegratedManaged => Some("grpc_endpoint"),
        HealthCheckKind::Grpc | HealthCheckKind::Process => None,
    };
    if let Some(key) = needs.filter(|&k| s.get(k).is_none()) {
        d.report(
            s.pos,
            &s.child(key),
            Problem::Invalid(format!("a check of type {name} needs `{key}`")),
        );
    }

    // Skipping verification where there is no TLS would do nothing, and
    // would read as if the endpoint were protected.
    if let (Field::Given(true), Some(item)) = (tls_skip_verify, s.get("tls_skip_verify")) {
        let plaintext = match (kind, &http_endpoint, &grpc_endpoint) {
            (HealthCheckKind::Http, Field::Given(url), _) => !is_https(url),
            (HealthCheckKind::Grpc, _, Field::Given(endpoint)) => !is_https(endpoint),
            // The port of an integrated_managed process is plaintext.
            (HealthCheckKind::Grpc, _, Field::Absent) => true,
            _ => false,
        };
        if plaintext {
            d.invalid(&item, "tls_skip_verify only applies to https:// endpoints");
        }
    }

    Some(HealthCheck {
        kind,
        interval: interval_value,
        timeout: timeout_value,
        failure_threshold,
        success_threshold,
        initial_delay: initial_delay.or(Duration::ZERO),
        http_endpoint: http_endpoint.value(),
        grpc_endpoint: grpc_endpoint.value(),
        grpc_service: grpc_service.value(),
        tcp_endpoint: tcp_endpoint.value(),
        command: command.or(Vec::new()),
        expected_status: expected_status
            .or(Vec::new())
            .into_iter()
            .filter_map(|c| u16::try_from(c).ok())
            .collect(),
        tls_skip_verify: tls_skip_verify.or(false),
    })
}

fn is_https(endpoint: &str) -> bool {
    endpoint
        .trim()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The check's kind from the endpoint it names.
fn infer_kind(s: &Section<'_>, process: ProcessKind) -> Option<HealthCheckKind> {
    let by_key = [
        ("http_endpoint", HealthCheckKind::Http),
        ("grpc_endpoint", HealthCheckKind::Grpc),
        ("tcp_endpoint", HealthCheckKind::Tcp),
        ("command", HealthCheckKind::Exec),
    ];
    by_key
        .into_iter()
        .find(|(key, _)| s.has(key))
        .map(|(_, kind)| kind)
        .or((process == ProcessKind::IntegratedManaged).then_some(HealthCheckKind::Grpc))
}

/// `host:port`, optionally written as an `http://` or `https://` URL.
fn grpc_endpoint(text: &str) -> Result<(), String> {
    let t = text.trim();
    let bare = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .unwrap_or(t);
    scalar::host_port(bare.trim_end_matches('/'))
}

/// An exec check's command: a list (run as is) or a string (run by
/// `/bin/sh -c`, so it may use pipes and quotes).
fn command(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<Vec<String>> {
    let argv = if item.node.as_scalar().is_some() {
        let line = d.nonempty(item)?;
        vec!["/bin/sh".to_string(), "-c".to_string(), line]
    } else {
        d.string_list(item)?
    };
    if argv.first().is_none_or(|program| program.trim().is_empty()) {
        d.report(item.pos(), &item.path, Problem::Empty);
        return None;
    }
    Some(argv)
}

/// A duration where zero means nothing useful (an interval, a timeout).
pub(super) fn positive_duration(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<Duration> {
    let value = d.duration(item)?;
    if value.is_zero() {
        d.invalid(item, "must be greater than 0");
        return None;
    }
    Some(value)
}

pub(super) fn restart_policy(d: &mut Decoder<'_>, mgmt: &Section<'_>) -> RestartPolicy {
    let s = d.child(mgmt, "restart_policy", RESTART_KEYS);
    let defaults = RestartPolicy::default();
    let strategies = [
        ("never", RestartStrategy::Never),
        ("on_failure", RestartStrategy::OnFailure),
        ("always", RestartStrategy::Always),
    ];
    let restart_delay = d.field(&s, "restart_delay", Decoder::duration);
    let max_delay = d.field(&s, "max_delay", Decoder::duration);
    let delay = restart_delay.or(defaults.restart_delay);
    if let (Field::Given(max), false) = (&max_delay, restart_delay.is_bad()) {
        if *max < delay {
            if let Some(item) = s.get("max_delay") {
                let message = format!(
                    "max_delay ({}) must not be shorter than restart_delay ({})",
                    humantime::format_duration(*max),
                    humantime::format_duration(delay)
                );
                d.invalid(&item, message);
            }
        }
    }
    RestartPolicy {
        strategy: d
            .field(&s, "strategy", |d, i| d.choice(i, "strategy", &strategies))
            .or(defaults.strategy),
        max_attempts: d
            .field(&s, "max_attempts", |d, i| {
                d.uint(i, 0, u64::from(u32::MAX))
                    .and_then(|n| u32::try_from(n).ok())
            })
            .or(defaults.max_attempts),
        restart_delay: delay,
        backoff_multiplier: d
            .field(&s, "backoff_multiplier", |d, i| {
                let x = d.float(i)?;
                if x < 1.0 {
                    d.invalid(
                        i,
                        format!("must be at least 1.0, found {}", cut(&x.to_string())),
                    );
                    return None;
                }
                Some(x)
            })
            .or(defaults.backoff_multiplier),
        // A long restart_delay with no max_delay raises the cap to match
        // rather than failing on a key the user never wrote.
        max_delay: max_delay.or(defaults.max_delay.max(delay)),
        jitter: d
            .field(&s, "jitter", |d, i| {
                let x = d.fraction(i)?;
                if !(0.0..=1.0).contains(&x) {
                    d.invalid(
                        i,
                        format!(
                            "must be between 0 and 1 (0% and 100%), found {}",
                            cut(&x.to_string())
                        ),
                    );
                    return None;
                }
                Some(x)
            })
            .or(defaults.jitter),
        // Zero would forgive every failure at once: no backoff growth and a
        // breaker that never opens, a safety limit silently off.
        reset_after: d
            .field(&s, "reset_after", positive_duration)
            .or(defaults.reset_after),
        window: d.field(&s, "window", positive_duration).or(defaults.window),
    }
}

pub(super) fn logging(d: &mut Decoder<'_>, mgmt: &Section<'_>) -> Logging {
    let s = d.child(mgmt, "logging", LOGGING_KEYS);
    let formats = [
        ("plain", ProcessLogFormat::Plain),
        ("raw", ProcessLogFormat::Raw),
        ("json", ProcessLogFormat::Json),
    ];
    Logging {
        capture_stdout: d.field(&s, "capture_stdout", Decoder::boolean).or(true),
        capture_stderr: d.field(&s, "capture_stderr", Decoder::boolean).or(true),
        buffer_size: d
            .field(&s, "buffer_size", |d, i| {
                d.uint(i, 64, MAX_BUFFER)
                    .and_then(|n| usize::try_from(n).ok())
            })
            .or(8192),
        file: d.field(&s, "file", log_file).or(LogFile::Default),
        format: d
            .field(&s, "format", |d, i| d.choice(i, "log format", &formats))
            .or(ProcessLogFormat::Plain),
        rotation: rotation(d, &s),
    }
}

/// `file: false` turns the file off, `file: true` keeps the default, and
/// anything else (a quoted "false" included) is a path.
fn log_file(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<LogFile> {
    match item.plain_text() {
        Some("false" | "False" | "FALSE") => Some(LogFile::Off),
        Some("true" | "True" | "TRUE") => Some(LogFile::Default),
        _ => d.path(item).map(LogFile::Path),
    }
}

/// `rotation: {max_size_mb, max_files}` under `parent`; the defaults are
/// 100 MiB and 5 files.
pub(super) fn rotation(d: &mut Decoder<'_>, parent: &Section<'_>) -> Option<Rotation> {
    let s = d.child(parent, "rotation", ROTATION_KEYS);
    if !s.present() {
        return None;
    }
    Some(Rotation {
        max_size_mb: d
            .field(&s, "max_size_mb", |d, i| d.uint(i, 1, u64::MAX))
            .or(100),
        max_files: d
            .field(&s, "max_files", |d, i| {
                d.uint(i, 1, 1000).and_then(|n| u32::try_from(n).ok())
            })
            .or(5),
    })
}
