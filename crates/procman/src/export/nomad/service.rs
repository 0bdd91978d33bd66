//! A process's ports (its group's `network`) and its `service` with the
//! health check as a Nomad `check`.
//!
//! Nomad's own service discovery (`provider = "nomad"`) checks `http` and
//! `tcp`; `grpc` and `script` checks need Consul, so a process with such
//! a check registers its service with `provider = "consul"`.

use std::borrow::Cow;
use std::time::Duration;

use procman_core::config::{
    Config, HealthCheck, HealthCheckKind, ProcessConfig, ProcessKind, RestartStrategy,
};

use super::hcl::{self, Block, Value};
use super::Driver;
use crate::export::{
    basic_authorization, distinct_names, dns_label, duration_text, endpoint_port, process_path,
    service_port, Warning,
};

/// A port of a group's network: `static` when the config names it, else
/// dynamic (the `integrated_managed` process without `control.port`).
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub label: String,
    pub value: Option<u16>,
}

/// The ports of one process: its service's, and its check's when the
/// check probes another port.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    pub service: Option<Port>,
    pub check: Option<Port>,
}

impl Ports {
    pub fn labels(&self) -> impl Iterator<Item = &Port> {
        self.service.iter().chain(self.check.iter())
    }
}

/// The check procman runs: the configured one, or for an
/// `integrated_managed` process without one, gRPC on its port.
pub fn effective_check(p: &ProcessConfig) -> Option<Cow<'_, HealthCheck>> {
    match (&p.health_check, p.kind) {
        (Some(h), _) => Some(Cow::Borrowed(h)),
        (None, ProcessKind::IntegratedManaged) => Some(Cow::Owned(HealthCheck::with_defaults(
            HealthCheckKind::Grpc,
        ))),
        (None, _) => None,
    }
}

/// The endpoint a check probes, if it names one.
fn endpoint(h: &HealthCheck) -> Option<&str> {
    match h.kind {
        HealthCheckKind::Http => h.http_endpoint.as_deref(),
        HealthCheckKind::Grpc => h.grpc_endpoint.as_deref(),
        HealthCheckKind::Tcp => h.tcp_endpoint.as_deref(),
        HealthCheckKind::Exec | HealthCheckKind::Process => None,
    }
}

/// The key of the endpoint (`...health_check.http_endpoint`).
fn endpoint_key(h: &HealthCheck) -> &'static str {
    match h.kind {
        HealthCheckKind::Http => "http_endpoint",
        HealthCheckKind::Grpc => "grpc_endpoint",
        _ => "tcp_endpoint",
    }
}

/// The ports process `p` needs; labels are its id with `_` for `-` (so
/// that `NOMAD_PORT_<label>` is a plain variable name), made unique in
/// the group with `taken`.
pub fn ports(p: &ProcessConfig, taken: &mut Vec<String>) -> Ports {
    let mut label = |base: String| {
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        taken.push(candidate.clone());
        candidate
    };
    let base = p.id.replace('-', "_");
    let service = match (p.kind, service_port(p)) {
        (ProcessKind::IntegratedManaged, value) => Some(Port {
            label: label(base.clone()),
            value,
        }),
        (_, Some(value)) => Some(Port {
            label: label(base.clone()),
            value: Some(value),
        }),
        (_, None) => None,
    };
    let check_port = effective_check(p)
        .as_deref()
        .and_then(endpoint)
        .and_then(endpoint_port);
    let check = match (&service, check_port) {
        (Some(s), Some(c)) if s.value != Some(c) => Some(Port {
            label: label(format!("{base}_check")),
            value: Some(c),
        }),
        _ => None,
    };
    Ports { service, check }
}

/// The host of `http://host:port/x`, `host:port` or `[::1]:port`.
fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// The `user:password` of `scheme://user:password@host/...`.
fn endpoint_userinfo(endpoint: &str) -> Option<&str> {
    let (_, rest) = endpoint.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(user, _)| user)
}

/// The path and query of an http URL (`/` when it has none).
fn url_path(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('/') => rest[at..].to_string(),
        Some(at) => format!("/{}", &rest[at..]),
        None => "/".to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::")
}

/// At least Nomad's minimum of 1s for a check's interval and timeout.
fn at_least_1s(d: Duration, key: String, warnings: &mut Vec<Warning>) -> String {
    if d >= Duration::from_secs(1) {
        return duration_text(d);
    }
    warnings.push(Warning::new(
        key,
        format!(
            "{} is below Nomad's minimum for a check: written as 1s",
            duration_text(d)
        ),
    ));
    "1s".to_string()
}

/// Whether process `p` registers a service: it has a port, or a check
/// Nomad can run.
fn registers(p: &ProcessConfig) -> bool {
    p.kind == ProcessKind::IntegratedManaged
        || service_port(p).is_some()
        || effective_check(p).is_some_and(|h| h.kind != HealthCheckKind::Process)
}

/// The name of each process's service, by config index (`None`: no
/// service, or unmanaged): its id as a DNS label, unique in the job
/// (two processes under one name would be one service to whoever looks
/// it up).
pub fn names(config: &Config) -> Vec<Option<String>> {
    let ids: Vec<Option<&str>> = config
        .processes
        .iter()
        .map(|p| (p.kind != ProcessKind::Unmanaged && registers(p)).then_some(p.id.as_str()))
        .collect();
    distinct_names(&ids, 63, |id| dns_label(id, 63))
}

/// The task's `service` block, named `name`, or `None` when the process
/// has neither a port nor a check Nomad can run.
pub fn service(
    i: usize,
    p: &ProcessConfig,
    ports: &Ports,
    name: &str,
    driver: Driver,
    warnings: &mut Vec<Warning>,
) -> Option<Block> {
    let check = effective_check(p).filter(|h| h.kind != HealthCheckKind::Process);
    if ports.service.is_none() && check.is_none() {
        return None;
    }
    let hc_key = format!("{}.management.health_check", process_path(i));
    if name != p.id {
        let own = dns_label(&p.id, 63);
        let taken = if own == name {
            String::new()
        } else {
            format!(" (`{own}` is another process's)")
        };
        warnings.push(Warning::new(
            format!("{}.id", process_path(i)),
            format!(
                "the service is named `{name}` (Nomad's service names are lowercase letters, digits and `-`, unique in the job){taken}"
            ),
        ));
    }
    let mut block = Block::new("service", &[]);
    block.str("name", name);
    if let Some(port) = &ports.service {
        block.str("port", port.label.as_str());
    }
    let consul = check
        .as_deref()
        .is_some_and(|h| matches!(h.kind, HealthCheckKind::Grpc | HealthCheckKind::Exec));
    block.str("provider", if consul { "consul" } else { "nomad" });
    if let Some(h) = check.as_deref() {
        let host = endpoint(h).map(endpoint_host).or(
            // An integrated_managed process without grpc_endpoint is
            // checked on 127.0.0.1.
            (h.kind == HealthCheckKind::Grpc).then_some("127.0.0.1"),
        );
        match (host, driver) {
            (Some(host), Driver::RawExec) if is_loopback(host) => {
                block.str("address", host);
            }
            (Some(host), _) if !is_loopback(host) && !is_wildcard(host) => {
                warnings.push(Warning::new(
                    format!("{hc_key}.{}", endpoint_key(h)),
                    format!("Nomad checks the address it registers for the service (the client node's), not `{host}`"),
                ));
            }
            _ => {}
        }
        if consul {
            let what = if h.kind == HealthCheckKind::Grpc {
                "a gRPC check"
            } else {
                "an exec check (a Nomad script check)"
            };
            warnings.push(Warning::new(
                hc_key.clone(),
                format!("{what} needs Consul: the service is registered with provider = \"consul\" (Nomad's own service discovery checks only http and tcp)"),
            ));
        }
        block.block(check_block(i, p, h, ports, warnings));
    }
    Some(block)
}

fn check_block(
    i: usize,
    p: &ProcessConfig,
    h: &HealthCheck,
    ports: &Ports,
    warnings: &mut Vec<Warning>,
) -> Block {
    let key = |k: &str| format!("{}.management.health_check.{k}", process_path(i));
    let mut check = Block::new("check", &[]);
    let kind = match h.kind {
        HealthCheckKind::Http => "http",
        HealthCheckKind::Grpc => "grpc",
        HealthCheckKind::Tcp => "tcp",
        HealthCheckKind::Exec | HealthCheckKind::Process => "script",
    };
    check.str("type", kind);
    if let Some(port) = &ports.check {
        check.str("port", port.label.as_str());
    }
    let https = endpoint(h).is_some_and(|e| e.starts_with("https://"));
    match h.kind {
        HealthCheckKind::Http => {
            let endpoint = h.http_endpoint.as_deref().unwrap_or("/");
            check.str("path", url_path(endpoint));
            if https {
                check.str("protocol", "https");
            }
            // procman sends the URL's user and password as Basic
            // authentication.
            if let Some(userinfo) = endpoint_userinfo(endpoint) {
                let mut header = Block::new("header", &[]);
                header.attr(
                    "Authorization",
                    Value::strings(&[basic_authorization(userinfo)]),
                );
                check.block(header);
            }
            if !h.expected_status.is_empty() {
                let codes: Vec<String> = h.expected_status.iter().map(u16::to_string).collect();
                warnings.push(Warning::new(
                    key("expected_status"),
                    format!(
                        "[{}] is not carried: Nomad's http check passes on any status below 400",
                        codes.join(", ")
                    ),
                ));
            }
        }
        HealthCheckKind::Grpc => {
            if let Some(service) = h.grpc_service.as_deref().filter(|s| !s.is_empty()) {
                check.str("grpc_service", service);
            }
            if https {
                check.bool("grpc_use_tls", true);
            }
        }
        HealthCheckKind::Exec => {
            if let Some((command, args)) = h.command.split_first() {
                check.str("command", command.as_str());
                if !args.is_empty() {
                    check.attr("args", Value::strings(args));
                }
                if h.command.iter().any(|a| hcl::runtime_interpolated(a)) {
                    warnings.push(Warning::new(key("command"), super::INTERPOLATED));
                }
            }
        }
        HealthCheckKind::Tcp | HealthCheckKind::Process => {}
    }
    if h.tls_skip_verify {
        check.bool("tls_skip_verify", true);
    }
    check.str(
        "interval",
        at_least_1s(h.interval, key("interval"), warnings),
    );
    check.str("timeout", at_least_1s(h.timeout, key("timeout"), warnings));
    if h.success_threshold > 1 {
        if h.kind == HealthCheckKind::Grpc {
            check.int("success_before_passing", h.success_threshold);
        } else {
            warnings.push(Warning::new(
                key("success_threshold"),
                format!(
                    "{} is not carried: a Nomad check passes at its first success",
                    h.success_threshold
                ),
            ));
        }
    }
    let startup = format!("{}.management.control.startup_timeout", process_path(i));
    if p.restart.strategy == RestartStrategy::Never {
        if h.failure_threshold != 3 {
            warnings.push(Warning::new(
                key("failure_threshold"),
                "with strategy never there is no check_restart: Nomad marks the check failing at its first failure",
            ));
        }
        warnings.push(Warning::new(
            startup,
            "with strategy never there is no check_restart: Nomad never stops a task whose check does not pass in time",
        ));
    } else {
        let grace = p.control.startup_timeout.max(h.initial_delay);
        let mut restart = Block::new("check_restart", &[]);
        restart.int("limit", h.failure_threshold);
        restart.str("grace", duration_text(grace));
        check.block(restart);
        warnings.push(Warning::new(
            startup,
            format!(
                "becomes check_restart.grace = {}: Nomad ignores failed checks for that long after each start, then restarts the task after {} in a row (procman ends a run with no passed check by then, and counts failures from the first pass)",
                duration_text(grace),
                h.failure_threshold
            ),
        ));
    }
    check
}

#[cfg(test)]
pub(super) fn split_endpoint(endpoint: &str) -> (String, String) {
    (endpoint_host(endpoint).to_string(), url_path(endpoint))
}
