//! `https://` HTTP checks and TLS gRPC checks against real TLS servers on
//! 127.0.0.1 with certificates made here: trusted, self-signed, for the
//! wrong name, expired; `tls_skip_verify`; and what each failure says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use super::{Alpn, Roots, Tls};
use crate::config::schema::{HealthCheck, HealthCheckKind};
use crate::health::pki::{self, Ca, HttpsServer};
use crate::health::probe::{Probe, ProbeOutcome, ProbeTarget};

/// A target with nothing to say: the network checks here need none of it.
fn no_target() -> ProbeTarget {
    ProbeTarget {
        process: None,
        port: None,
        cwd: "/".into(),
        env: Vec::new(),
        credentials: Ok(crate::platform::Credentials::default()),
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);
const SELF_SIGNED: &str =
    "certificate not trusted (self-signed; set tls_skip_verify for a local service)";

fn http_check(url: String, skip_verify: bool) -> HealthCheck {
    let mut hc = HealthCheck::with_defaults(HealthCheckKind::Http);
    hc.http_endpoint = Some(url);
    hc.tls_skip_verify = skip_verify;
    hc
}

fn grpc_check(endpoint: String, skip_verify: bool) -> HealthCheck {
    let mut hc = HealthCheck::with_defaults(HealthCheckKind::Grpc);
    hc.grpc_endpoint = Some(endpoint);
    hc.tls_skip_verify = skip_verify;
    hc
}

/// One check of `hc`, trusting `roots` (the system's when `None`).
async fn check(hc: &HealthCheck, roots: Option<&Roots>) -> ProbeOutcome {
    let target = no_target();
    let probe = match roots {
        Some(r) => Probe::with_roots(hc, &target, || r.clone()),
        None => Probe::from_config(hc, &target),
    }
    .expect("the probe is built");
    probe.check(TIMEOUT).await
}

fn https(host: &str, addr: SocketAddr) -> String {
    format!("https://{host}:{}/health", addr.port())
}

#[tokio::test]
async fn a_self_signed_server_is_refused_and_the_reason_named() {
    let server = HttpsServer::start(&pki::self_signed(&["localhost"])).await;
    let out = check(&http_check(https("localhost", server.addr), false), None).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, SELF_SIGNED);
    assert_eq!(server.served(), 0, "no request went out");
}

#[tokio::test]
async fn tls_skip_verify_accepts_a_self_signed_server() {
    let server = HttpsServer::start(&pki::self_signed(&["localhost"])).await;
    let out = check(&http_check(https("localhost", server.addr), true), None).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 200");
    assert_eq!(server.served(), 1);
}

#[tokio::test]
async fn tls_skip_verify_also_skips_the_host_name() {
    let server = HttpsServer::start(&pki::self_signed(&["other.example"])).await;
    let out = check(&http_check(https("127.0.0.1", server.addr), true), None).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 200");
}

#[tokio::test]
async fn a_certificate_from_a_trusted_ca_passes() {
    let ca = Ca::new();
    let server = HttpsServer::start(&ca.leaf(&["localhost"])).await;
    let out = check(
        &http_check(https("localhost", server.addr), false),
        Some(&ca.roots()),
    )
    .await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 200");
    assert_eq!(
        server.sni().as_deref(),
        Some("localhost"),
        "SNI from the URL"
    );
}

#[tokio::test]
async fn an_ip_address_host_is_checked_against_the_certificate_s_addresses() {
    let ca = Ca::new();
    let server = HttpsServer::start(&ca.leaf(&["127.0.0.1"])).await;
    let hc = http_check(https("127.0.0.1", server.addr), false);
    let out = check(&hc, Some(&ca.roots())).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(server.sni(), None, "no SNI for an address");

    let server = HttpsServer::start(&ca.leaf(&["localhost"])).await;
    let hc = http_check(https("127.0.0.1", server.addr), false);
    let out = check(&hc, Some(&ca.roots())).await;
    assert_eq!(out.detail, "certificate is for localhost, not 127.0.0.1");
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_naming_both() {
    let ca = Ca::new();
    let server = HttpsServer::start(&ca.leaf(&["other.example", "www.other.example"])).await;
    let out = check(
        &http_check(https("localhost", server.addr), false),
        Some(&ca.roots()),
    )
    .await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(
        out.detail,
        "certificate is for other.example, www.other.example, not localhost"
    );
    assert_eq!(server.served(), 0);
}

#[tokio::test]
async fn a_ca_the_store_does_not_hold_is_not_trusted() {
    let ca = Ca::new();
    let server = HttpsServer::start(&ca.leaf(&["localhost"])).await;
    let out = check(&http_check(https("localhost", server.addr), false), None).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(
        out.detail,
        "certificate not trusted (issued by a CA that is not in the trusted certificate store)"
    );
}

#[tokio::test]
async fn an_expired_certificate_says_when_it_expired() {
    let ca = Ca::new();
    let server = HttpsServer::start(&ca.expired_leaf(&["localhost"])).await;
    let out = check(
        &http_check(https("localhost", server.addr), false),
        Some(&ca.roots()),
    )
    .await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "certificate expired at 2020-01-02T00:00:00Z");
}

#[tokio::test]
async fn a_plain_http_server_behind_https_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let reply =
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    let out = check(&http_check(https("127.0.0.1", addr), true), None).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(
        out.detail,
        "TLS handshake failed: the server did not answer in TLS (is it plain http?)"
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_during_the_handshake_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    let out = check(&http_check(https("127.0.0.1", addr), true), None).await;
    assert!(!out.healthy, "{out:?}");
    assert!(
        [
            "TLS handshake failed: the server closed the connection",
            "TLS handshake failed: the server reset the connection",
        ]
        .contains(&out.detail.as_str()),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn a_handshake_that_never_ends_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let timeout = Duration::from_millis(400);
    let probe = Probe::from_config(&http_check(https("127.0.0.1", addr), true), &no_target())
        .expect("probe");
    let start = Instant::now();
    let out = probe.check(timeout).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "timed out after 400ms");
    assert!(start.elapsed() < timeout + Duration::from_secs(2));
}

#[tokio::test]
async fn grpc_answers_serving_over_tls() {
    let ca = Ca::new();
    let (addr, reporter) = pki::grpc_tls_server(&ca.leaf(&["localhost"])).await;
    let endpoint = format!("https://localhost:{}", addr.port());
    let out = check(&grpc_check(endpoint.clone(), false), Some(&ca.roots())).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "SERVING");

    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let out = check(&grpc_check(endpoint, false), Some(&ca.roots())).await;
    assert_eq!((out.healthy, out.detail.as_str()), (false, "NOT_SERVING"));
}

#[tokio::test]
async fn grpc_refuses_a_self_signed_server_unless_told_to_skip() {
    let (addr, _reporter) = pki::grpc_tls_server(&pki::self_signed(&["localhost"])).await;
    let endpoint = format!("https://localhost:{}", addr.port());
    let out = check(&grpc_check(endpoint.clone(), false), None).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, SELF_SIGNED);

    let out = check(&grpc_check(endpoint, true), None).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "SERVING");
}

#[tokio::test]
async fn grpc_names_a_certificate_for_another_host() {
    let ca = Ca::new();
    let (addr, _reporter) = pki::grpc_tls_server(&ca.leaf(&["other.example"])).await;
    let endpoint = format!("https://127.0.0.1:{}", addr.port());
    let out = check(&grpc_check(endpoint, false), Some(&ca.roots())).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(
        out.detail,
        "certificate is for other.example, not 127.0.0.1"
    );
}

#[tokio::test]
async fn a_plaintext_grpc_client_gets_nothing_from_a_tls_server() {
    // The same server with a plaintext endpoint: the check fails rather
    // than passing by accident.
    let (addr, _reporter) = pki::grpc_tls_server(&pki::self_signed(&["localhost"])).await;
    let out = check(&grpc_check(addr.to_string(), false), None).await;
    assert!(!out.healthy, "{out:?}");
}

#[test]
fn without_any_trusted_ca_the_probe_says_so_when_it_is_built() {
    let hc = http_check("https://localhost:1/".into(), false);
    let err = Probe::with_roots(&hc, &no_target(), Roots::empty)
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with("http endpoint `https://localhost:1/`: no trusted CA certificates"),
        "{err}"
    );
    // Skipping verification needs no roots.
    let hc = http_check("https://localhost:1/".into(), true);
    assert!(Probe::with_roots(&hc, &no_target(), Roots::empty).is_ok());
}

#[test]
fn the_system_store_is_read_once() {
    let (a, b) = (Roots::system(), Roots::system());
    assert!(Arc::ptr_eq(&a.0, &b.0));
}

#[test]
fn the_roots_are_only_asked_for_an_https_endpoint() {
    let hc = http_check("http://localhost:1/".into(), false);
    let probe = Probe::with_roots(&hc, &no_target(), || {
        panic!("roots asked for a plaintext endpoint")
    });
    assert!(probe.is_ok());
}

#[test]
fn settings_compare_by_name_mode_and_roots() {
    let roots = Roots::system();
    let make = |host: &str, skip: bool| Tls::new(host, skip, Alpn::Http1, &roots).expect("tls");
    assert_eq!(make("localhost", false), make("localhost", false));
    assert_ne!(make("localhost", false), make("localhost", true));
    assert_ne!(make("localhost", false), make("127.0.0.1", false));
    assert!(Tls::new("[::1]", false, Alpn::H2, &roots).is_ok());
    let err = Tls::new("bad host!", false, Alpn::Http1, &roots)
        .err()
        .unwrap_or_default();
    assert!(err.contains("not a host name or address"), "{err}");
}
