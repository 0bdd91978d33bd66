//! Probes from `health_check`: the same check as a startup probe (procman
//! counts no failure before the first success, and gives up after
//! `startup_timeout`), a readiness probe (healthy or not, what a Service
//! and a waiting dependent see) and a liveness probe (failures end the
//! run), the last left out with `strategy: never` (procman then keeps the
//! process running, marked unhealthy).

use procman_core::config::{
    HealthCheck, HealthCheckKind, ProcessConfig, ProcessKind, RestartStrategy,
};

use super::yaml::{strings, Map, Node};
use super::{int32, verbatim, Notes, Process};
use crate::export::{basic_authorization, endpoint_port};

const CHECK: &str = "management.health_check";

/// `startupProbe`, `readinessProbe` and `livenessProbe`, in that order;
/// none for a process without a check or with a `process` check (the
/// container's own life is that check).
pub(super) fn probes(x: &Process<'_>, notes: &mut Notes<'_>) -> Vec<(&'static str, Node)> {
    let Some(h) = check(x) else {
        return Vec::new();
    };
    let Some((kind, action)) = action(&h, x, notes) else {
        return Vec::new();
    };
    let period = notes.seconds(&format!("{CHECK}.interval"), h.interval);
    let timeout = notes.seconds(&format!("{CHECK}.timeout"), h.timeout);
    let delay = notes.seconds(&format!("{CHECK}.initial_delay"), h.initial_delay);
    let failures = int32(u64::from(h.failure_threshold));
    if h.success_threshold != 1 {
        notes.warn(
            &format!("{CHECK}.success_threshold"),
            format!("the readiness probe needs {} successes in a row; the startup and liveness probes take 1 (Kubernetes allows no other)", h.success_threshold),
        );
    }
    // Until the first success procman checks every second and counts no
    // failure, until `startup_timeout` has passed since the start.
    let startup_window = x.p.control.startup_timeout.saturating_sub(h.initial_delay);
    let startup = probe(kind, &action)
        .with_some("initialDelaySeconds", (delay > 0).then_some(delay))
        .with("periodSeconds", 1_i64)
        .with("timeoutSeconds", timeout)
        .with(
            "failureThreshold",
            int32(crate::export::seconds(startup_window)).max(1),
        );
    let readiness = probe(kind, &action)
        .with("periodSeconds", period)
        .with("timeoutSeconds", timeout)
        .with("successThreshold", int32(u64::from(h.success_threshold)))
        .with("failureThreshold", failures);
    let mut probes = vec![
        ("startupProbe", startup.into()),
        ("readinessProbe", readiness.into()),
    ];
    if x.p.restart.strategy != RestartStrategy::Never {
        let liveness = probe(kind, &action)
            .with("periodSeconds", period)
            .with("timeoutSeconds", timeout)
            .with("failureThreshold", failures);
        probes.push(("livenessProbe", liveness.into()));
    }
    probes
}

fn probe(kind: &str, action: &Node) -> Map {
    Map::new().with(kind, action.clone())
}

/// The check procman runs: the configured one, or for an
/// `integrated_managed` process without one, gRPC health on its port.
fn check(x: &Process<'_>) -> Option<HealthCheck> {
    match (&x.p.health_check, x.p.kind) {
        (Some(h), _) => Some(HealthCheck::clone(h)),
        (None, ProcessKind::IntegratedManaged) => {
            Some(HealthCheck::with_defaults(HealthCheckKind::Grpc))
        }
        (None, _) => None,
    }
}

/// The probe's handler: `httpGet`, `grpc`, `tcpSocket` or `exec`.
fn action(h: &HealthCheck, x: &Process<'_>, notes: &mut Notes<'_>) -> Option<(&'static str, Node)> {
    match h.kind {
        HealthCheckKind::Http => http(h, notes),
        HealthCheckKind::Grpc => grpc(h, x, notes),
        HealthCheckKind::Tcp => {
            let endpoint = h.tcp_endpoint.as_deref()?;
            let (url, port) = parts(endpoint, notes, "tcp_endpoint")?;
            let tcp = Map::new()
                .with("port", port)
                .with_some("host", remote(url.host));
            Some(("tcpSocket", tcp.into()))
        }
        HealthCheckKind::Exec => {
            let command: Vec<String> = h.command.iter().map(|a| verbatim(a)).collect();
            Some(("exec", Map::new().with("command", strings(&command)).into()))
        }
        HealthCheckKind::Process => None,
    }
}

fn http(h: &HealthCheck, notes: &mut Notes<'_>) -> Option<(&'static str, Node)> {
    let endpoint = h.http_endpoint.as_deref()?;
    let (url, port) = parts(endpoint, notes, "http_endpoint")?;
    let https = url.scheme.eq_ignore_ascii_case("https");
    if https && !h.tls_skip_verify {
        notes.warn(
            &format!("{CHECK}.http_endpoint"),
            "the kubelet never verifies an HTTPS probe's certificate (procman does unless `tls_skip_verify`): any certificate passes",
        );
    }
    if !h.expected_status.is_empty() {
        notes.warn(
            &format!("{CHECK}.expected_status"),
            "the kubelet counts every status from 200 to 399 as healthy: the list is not carried over",
        );
    }
    // procman sends the URL's user and password as Basic authentication.
    let headers = url.userinfo.map(|userinfo| {
        Node::Seq(vec![Map::new()
            .with("name", "Authorization")
            .with("value", basic_authorization(userinfo))
            .into()])
    });
    let path = if url.path.is_empty() { "/" } else { url.path };
    let get = Map::new()
        .with("path", path)
        .with("port", port)
        .with_some("host", remote(url.host))
        .with_some("scheme", https.then_some("HTTPS"))
        .with_some("httpHeaders", headers);
    Some(("httpGet", get.into()))
}

fn grpc(h: &HealthCheck, x: &Process<'_>, notes: &mut Notes<'_>) -> Option<(&'static str, Node)> {
    let key = format!("{CHECK}.grpc_endpoint");
    let (port, tls) = match h.grpc_endpoint.as_deref() {
        Some(endpoint) => {
            let (url, port) = parts(endpoint, notes, "grpc_endpoint")?;
            if remote(url.host).is_some() {
                notes.warn(
                    &key,
                    format!("a gRPC probe always asks the pod itself: `{}` is not asked, port {port} of the pod is", url.host),
                );
            }
            (port, url.scheme.eq_ignore_ascii_case("https"))
        }
        None => (x.port?, false),
    };
    if tls {
        notes.warn(
            &key,
            "the kubelet's gRPC probe has no TLS: the probe only connects to the port (tcpSocket); for the health protocol over TLS use an exec probe (such as grpc_health_probe -tls)",
        );
        return Some(("tcpSocket", Map::new().with("port", port).into()));
    }
    let service = h.grpc_service.as_deref().filter(|s| !s.is_empty());
    let grpc = Map::new().with("port", port).with_some("service", service);
    Some(("grpc", grpc.into()))
}

/// An endpoint's parts and port; a warning when it has no port.
fn parts<'e>(endpoint: &'e str, notes: &mut Notes<'_>, key: &str) -> Option<(Url<'e>, u16)> {
    let url = Url::parse(endpoint);
    match endpoint_port(endpoint) {
        Some(port) => Some((url, port)),
        None => {
            notes.warn(
                &format!("{CHECK}.{key}"),
                format!("`{endpoint}` names no port a probe can use: the check is not exported"),
            );
            None
        }
    }
}

/// Whether `p`'s check asks another machine than its own (so the port
/// it names is not the process's).
pub(super) fn asks_elsewhere(p: &ProcessConfig) -> bool {
    let Some(h) = p.health_check.as_deref() else {
        return false;
    };
    let endpoint = match h.kind {
        HealthCheckKind::Http => h.http_endpoint.as_deref(),
        HealthCheckKind::Grpc => h.grpc_endpoint.as_deref(),
        HealthCheckKind::Tcp => h.tcp_endpoint.as_deref(),
        HealthCheckKind::Exec | HealthCheckKind::Process => None,
    };
    endpoint.is_some_and(|e| remote(Url::parse(e).host).is_some())
}

/// `host` when a probe must name it: not for the process's own machine
/// (`localhost`, `127.0.0.1`, `::1`, `0.0.0.0`), which in a pod is the
/// pod itself, where a probe goes when it names no host.
fn remote(host: &str) -> Option<&str> {
    let local = host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host.starts_with("127.")
        || matches!(host, "::1" | "0.0.0.0" | "::");
    (!local).then_some(host)
}

/// The parts of `scheme://user@host:port/path?query` (each optional) that
/// a probe needs.
#[derive(Debug, PartialEq)]
pub(super) struct Url<'a> {
    pub scheme: &'a str,
    pub userinfo: Option<&'a str>,
    /// Without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The path and query, `""` when there is none.
    pub path: &'a str,
}

impl<'a> Url<'a> {
    pub(super) fn parse(endpoint: &'a str) -> Url<'a> {
        let text = endpoint.trim();
        let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let path = tail.split('#').next().unwrap_or("");
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let host = if let Some(bracketed) = host_port.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or(bracketed)
        } else {
            match host_port.split_once(':') {
                Some((host, port)) if !port.contains(':') => host,
                _ => host_port,
            }
        };
        Url {
            scheme,
            userinfo,
            host,
            path,
        }
    }
}
