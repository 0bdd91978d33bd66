//! gRPC check: `grpc.health.v1.Health/Check` over a fresh HTTP/2
//! connection, plaintext for `host:port` and `http://`, TLS for
//! `https://`. SERVING is healthy; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN
//! (which servers such as tonic-health answer as the gRPC status
//! `NOT_FOUND`) and every transport error are not.
//!
//! TLS is done by our own connector with the probe's [`Tls`] (the same
//! rustls setup as the HTTP check, offering ALPN `h2`), not by tonic's TLS
//! features, which cannot skip verification and would bring a second copy
//! of the roots.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::probe::{describe, timed_out};
use super::tls::Tls;

/// Where a gRPC check goes.
#[derive(Debug)]
pub(super) struct Address {
    /// `http://host:port/`: what the connection is made to.
    pub(super) uri: Uri,
    /// For an `https://` endpoint, the host the certificate must name.
    pub(super) tls_host: Option<String>,
}

/// The address of `host:port`, `http://host:port` or `https://host:port`.
pub(super) fn address(endpoint: &str) -> Result<Address, String> {
    let e = endpoint.trim().trim_end_matches('/');
    let lower = e.to_ascii_lowercase();
    let (rest, tls) = if lower.starts_with("https://") {
        (&e[8..], true)
    } else if lower.starts_with("http://") {
        (&e[7..], false)
    } else {
        (e, false)
    };
    let uri = format!("http://{rest}")
        .parse::<Uri>()
        .map_err(|err| format!("grpc endpoint `{e}`: {err}"))?;
    let tls_host = match (tls, uri.host()) {
        (false, _) => None,
        (true, Some(host)) => Some(host.to_string()),
        (true, None) => return Err(format!("grpc endpoint `{e}`: no host")),
    };
    Ok(Address { uri, tls_host })
}

/// One `Check` call; the caller bounds it by `timeout` as a whole, and the
/// connection and the call carry the same deadline (the call sends it to
/// the server as `grpc-timeout`).
pub(super) async fn check(
    endpoint: &str,
    service: &str,
    timeout: Duration,
    tls: Option<&Tls>,
) -> (bool, String) {
    let address = match address(endpoint) {
        Ok(a) => a,
        Err(e) => return (false, e),
    };
    let endpoint_cfg = Endpoint::from(address.uri.clone())
        .connect_timeout(timeout)
        .timeout(timeout);
    let connected = match (&address.tls_host, tls) {
        (None, _) => endpoint_cfg.connect().await,
        (Some(_), Some(tls)) => {
            // tonic connects to `http://host:port` through our connector
            // and writes `https` into its requests as their origin: given
            // an https:// address, a tonic built with its own TLS features
            // (by any crate of the build) would refuse a custom connector.
            let authority = address.uri.authority().map_or("", |a| a.as_str());
            let origin = match format!("https://{authority}").parse::<Uri>() {
                Ok(o) => o,
                Err(e) => return (false, format!("grpc endpoint `{endpoint}`: {e}")),
            };
            endpoint_cfg
                .origin(origin)
                .connect_with_connector(TlsConnect(tls.clone()))
                .await
        }
        (Some(_), None) => {
            return (
                false,
                format!("https endpoint `{endpoint}` without TLS settings"),
            )
        }
    };
    let channel = match connected {
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TlsIo = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// The connector of a TLS check: TCP to the URI's host and port, then the
/// handshake of its [`Tls`].
struct TlsConnect(Tls);

impl tower::Service<Uri> for TlsConnect {
    type Response = TlsIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let tcp = TcpStream::connect((host, uri.port_u16().unwrap_or(443))).await?;
            let stream = tls.connect(tcp).await?;
            Ok(TokioIo::new(stream))
        })
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
