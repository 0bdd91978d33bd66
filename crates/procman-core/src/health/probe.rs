//! What one health check looks at, and what one check found.
//!
//! A [`Probe`] is built once per process run from the validated config
//! ([`Probe::from_config`]), TLS settings included; [`Probe::check`] runs
//! one check. Each check is independent: a fresh connection (and full TLS
//! handshake) or process every time, which is the most honest probe and
//! cheap at health-check rates.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::schema::{HealthCheck, HealthCheckKind};
use crate::platform::discovery::Identity;
use crate::platform::{ChildId, Credentials};

use super::certificate::HandshakeError;
use super::tls::{Alpn, Roots, Tls};
use super::{exec, grpc, http, tcp};

/// What the probe of one process run may need to know about it.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The running process (for a `process` check).
    pub process: Option<Liveness>,
    /// The port given to an `integrated_managed` process (`control.port`),
    /// where it serves gRPC health when no `grpc_endpoint` is set.
    pub port: Option<u16>,
    /// The process's working directory: an exec check runs there.
    pub cwd: PathBuf,
    /// The process's environment (on top of the manager's): an exec check
    /// gets it too.
    pub env: Vec<(String, String)>,
    /// The process's user, group and supplementary groups: an exec check
    /// runs as them. An error (the user is gone from the database) makes
    /// every exec check fail with it: a check never runs as the manager
    /// in the process's place.
    pub credentials: Result<Credentials, String>,
}

/// The process a `process` check watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// A child of ours, known to the reaper.
    Child(ChildId),
    /// A process we did not start (unmanaged), by pid and start time.
    Found(Identity),
}

impl From<ChildId> for Liveness {
    fn from(child: ChildId) -> Liveness {
        Liveness::Child(child)
    }
}

/// One configured check, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET url`; healthy on a status in `expected`, or 2xx/3xx when empty.
    /// `tls` is set for an `https://` URL.
    Http {
        url: String,
        expected: Vec<u16>,
        tls: Option<Tls>,
    },
    /// `grpc.health.v1.Health/Check` for `service` ("" = the whole server).
    /// `tls` is set for an `https://` endpoint.
    Grpc {
        endpoint: String,
        service: String,
        tls: Option<Tls>,
    },
    /// A TCP connection to `host:port`.
    Tcp { addr: String },
    /// A command in its own process group, as the process's user;
    /// healthy on exit 0.
    Exec {
        argv: Vec<String>,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        credentials: Result<Credentials, String>,
    },
    /// The run's own process is running (not reaped, not a zombie).
    Process { child: ChildId },
    /// The unmanaged process found is still running: the same pid and
    /// start time, not a zombie.
    Found { process: Identity },
    /// A check that could not be built from its config: every check fails
    /// with `reason`, so that the process is judged by `startup_timeout`
    /// and the reason shows in its diagnostics, never left unchecked.
    Invalid { reason: String },
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub healthy: bool,
    /// From the start of the check to its result.
    pub latency: Duration,
    /// What happened, for the diagnostics: `HTTP 200`, `NOT_SERVING`,
    /// `connection refused`, `timed out after 1s`, `exit code 3`, ...
    pub detail: String,
}

impl Probe {
    /// The probe for `hc` (already validated) on `target`. A `grpc` check
    /// with no `grpc_endpoint` asks `127.0.0.1:<port>`; a `process` check
    /// watches `target.pid`. An `https://` endpoint trusts the system's
    /// certificate store (read on first use, once per manager process).
    pub fn from_config(hc: &HealthCheck, target: &ProbeTarget) -> Result<Probe, String> {
        Probe::with_roots(hc, target, Roots::system)
    }

    /// [`Probe::from_config`] trusting the CAs `roots` gives, asked only
    /// when the endpoint is `https://`.
    pub(crate) fn with_roots(
        hc: &HealthCheck,
        target: &ProbeTarget,
        roots: impl FnOnce() -> Roots,
    ) -> Result<Probe, String> {
        match hc.kind {
            HealthCheckKind::Http => {
                let url = hc
                    .http_endpoint
                    .as_deref()
                    .map(str::trim)
                    .ok_or("an http check needs `http_endpoint`")?;
                let parsed = http::Target::parse(url)?;
                let tls = match parsed.tls {
                    false => None,
                    true => Some(
                        Tls::new(&parsed.hostname, hc.tls_skip_verify, Alpn::Http1, &roots())
                            .map_err(|e| format!("http endpoint `{url}`: {e}"))?,
                    ),
                };
                Ok(Probe::Http {
                    url: url.to_string(),
                    expected: hc.expected_status.clone(),
                    tls,
                })
            }
            HealthCheckKind::Grpc => {
                let endpoint = match (&hc.grpc_endpoint, target.port) {
                    (Some(e), _) => e.trim().to_string(),
                    (None, Some(port)) => format!("127.0.0.1:{port}"),
                    (None, None) => {
                        return Err("a grpc check needs `grpc_endpoint` or the process's \
                                    `control.port`"
                            .to_string())
                    }
                };
                let address = grpc::address(&endpoint)?;
                let tls = match &address.tls_host {
                    None => None,
                    Some(host) => Some(
                        Tls::new(host, hc.tls_skip_verify, Alpn::H2, &roots())
                            .map_err(|e| format!("grpc endpoint `{endpoint}`: {e}"))?,
                    ),
                };
                Ok(Probe::Grpc {
                    endpoint,
                    service: hc.grpc_service.clone().unwrap_or_default(),
                    tls,
                })
            }
            HealthCheckKind::Tcp => {
                let addr = hc
                    .tcp_endpoint
                    .as_deref()
                    .map(str::trim)
                    .ok_or("a tcp check needs `tcp_endpoint`")?;
                Ok(Probe::Tcp {
                    addr: addr.to_string(),
                })
            }
            HealthCheckKind::Exec => {
                if hc.command.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err("an exec check needs a `command`".to_string());
                }
                Ok(Probe::Exec {
                    argv: hc.command.clone(),
                    cwd: target.cwd.clone(),
                    env: target.env.clone(),
                    credentials: target.credentials.clone(),
                })
            }
            HealthCheckKind::Process => match target.process.clone() {
                Some(Liveness::Child(child)) => Ok(Probe::Process { child }),
                Some(Liveness::Found(process)) => Ok(Probe::Found { process }),
                None => Err("a process check needs the process's pid".to_string()),
            },
        }
    }

    /// Runs one check, never longer than `timeout` (plus, for an exec
    /// check that overran, the time to kill and reap it).
    pub async fn check(&self, timeout: Duration) -> ProbeOutcome {
        let start = Instant::now();
        let (healthy, detail) = match self {
            Probe::Http { url, expected, tls } => {
                bounded(timeout, http::check(url, expected, tls.as_ref())).await
            }
            Probe::Grpc {
                endpoint,
                service,
                tls,
            } => {
                bounded(
                    timeout,
                    grpc::check(endpoint, service, timeout, tls.as_ref()),
                )
                .await
            }
            Probe::Tcp { addr } => bounded(timeout, tcp::check(addr)).await,
            Probe::Exec {
                credentials: Err(why),
                ..
            } => (false, format!("cannot run the check: {why}")),
            Probe::Exec {
                argv,
                cwd,
                env,
                credentials: Ok(run_as),
            } => exec::check(argv, cwd, env, run_as, timeout).await,
            Probe::Process { child } => process_check(child.pid(), child.is_running()),
            Probe::Found { process } => process_check(process.pid, process.is_running()),
            Probe::Invalid { reason } => (false, reason.clone()),
        };
        ProbeOutcome {
            healthy,
            latency: start.elapsed(),
            detail,
        }
    }
}

/// `check` cut off at `timeout`.
async fn bounded<F>(timeout: Duration, check: F) -> (bool, String)
where
    F: std::future::Future<Output = (bool, String)>,
{
    match tokio::time::timeout(timeout, check).await {
        Ok(result) => result,
        Err(_) => (false, timed_out(timeout)),
    }
}

/// `timed out after 1s`.
pub(super) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// An error and its causes, `outer: inner: root`, with the repeats that
/// layered errors tend to have left out; a refused connection and a failed
/// TLS handshake are named plainly whatever wraps them.
pub(super) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<HandshakeError>() {
            return tls.to_string();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection refused".to_string();
            }
        }
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Liveness of the run's own process, by its identity (`running`): once
/// it has ended its pid may name a stranger, which must never pass for it.
fn process_check(pid: u32, running: bool) -> (bool, String) {
    if running {
        (true, format!("process {pid} is running"))
    } else {
        (false, format!("process {pid} has ended"))
    }
}

#[cfg(test)]
#[path = "tests/probe.rs"]
mod tests;
