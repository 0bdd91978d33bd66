//! gRPC check: `grpc.health.v1.Health/Check` over a fresh plaintext HTTP/2
//! connection. SERVING is healthy; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN
//! (which servers such as tonic-health answer as the gRPC status
//! `NOT_FOUND`) and every transport error are not.

use std::time::Duration;

use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::probe::{describe, timed_out};

/// The URI of `host:port` or `http://host:port`. There is no TLS in this
/// build, so `https://` is refused up front rather than failing every check.
pub(super) fn uri(endpoint: &str) -> Result<Uri, String> {
    let e = endpoint.trim().trim_end_matches('/');
    let lower = e.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "grpc endpoint `{e}`: https is not supported by the health probe (plaintext only)"
        ));
    }
    let text = if lower.starts_with("http://") {
        e.to_string()
    } else {
        format!("http://{e}")
    };
    text.parse::<Uri>()
        .map_err(|err| format!("grpc endpoint `{e}`: {err}"))
}

/// One `Check` call; the caller bounds it by `timeout` as a whole, and the
/// connection and the call carry the same deadline (the call sends it to
/// the server as `grpc-timeout`).
pub(super) async fn check(endpoint: &str, service: &str, timeout: Duration) -> (bool, String) {
    let uri = match uri(endpoint) {
        Ok(uri) => uri,
        Err(e) => return (false, e),
    };
    let channel = match Endpoint::from(uri)
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
    {
        Ok(channel) => channel,
        Err(e) => return (false, explain(&e, timeout)),
    };
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => {
            let raw = response.into_inner().status;
            match ServingStatus::try_from(raw) {
                Ok(ServingStatus::Serving) => (true, "SERVING".to_string()),
                Ok(other) => (false, other.as_str_name().to_string()),
                Err(_) => (false, format!("unknown serving status {raw}")),
            }
        }
        Err(status) if status.code() == tonic::Code::NotFound => {
            (false, "SERVICE_UNKNOWN".to_string())
        }
        Err(status) => (false, describe_status(&status, timeout)),
    }
}

/// A transport error, with tonic's own deadline (which fires together with
/// the probe's) named as the probe's timeout.
fn explain(err: &(dyn std::error::Error + 'static), timeout: Duration) -> String {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<tonic::TimeoutExpired>() {
            return timed_out(timeout);
        }
        next = e.source();
    }
    describe(err)
}

/// A failed call: its gRPC code and message, or the transport error behind it.
fn describe_status(status: &tonic::Status, timeout: Duration) -> String {
    use std::error::Error as _;
    // tonic turns its client-side deadline into CANCELLED "Timeout expired".
    if status.code() == tonic::Code::Cancelled
        && status.message() == tonic::TimeoutExpired(()).to_string()
    {
        return timed_out(timeout);
    }
    match status.source() {
        Some(source) => explain(source, timeout),
        None if status.message().is_empty() => format!("gRPC status {:?}", status.code()),
        None => format!("gRPC status {:?}: {}", status.code(), status.message()),
    }
}

#[cfg(test)]
#[path = "tests/grpc.rs"]
mod tests;
