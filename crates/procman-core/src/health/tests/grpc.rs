//! gRPC health checks against a real `tonic-health` server on 127.0.0.1,
//! switched between SERVING and NOT_SERVING.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::health::probe::Probe;

const TIMEOUT: Duration = Duration::from_secs(2);
const SERVICE: &str = "demo.v1.Echo";

async fn health_server() -> (SocketAddr, HealthReporter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, reporter)
}

async fn check(endpoint: &str, service: &str) -> (bool, String) {
    let out = Probe::Grpc {
        endpoint: endpoint.to_string(),
        service: service.to_string(),
        tls: None,
    }
    .check(TIMEOUT)
    .await;
    (out.healthy, out.detail)
}

fn serving() -> (bool, String) {
    (true, "SERVING".to_string())
}

fn not_serving() -> (bool, String) {
    (false, "NOT_SERVING".to_string())
}

#[tokio::test]
async fn the_whole_server_switches_between_serving_and_not() {
    let (addr, reporter) = health_server().await;
    let endpoint = addr.to_string();
    assert_eq!(check(&endpoint, "").await, serving());

    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    assert_eq!(check(&endpoint, "").await, not_serving());

    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    assert_eq!(check(&endpoint, "").await, serving());
}

#[tokio::test]
async fn a_named_service_switches_between_serving_and_not() {
    let (addr, reporter) = health_server().await;
    let endpoint = format!("http://{addr}");
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    assert_eq!(check(&endpoint, SERVICE).await, serving());

    reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    assert_eq!(check(&endpoint, SERVICE).await, not_serving());
    assert_eq!(
        check(&endpoint, "").await,
        serving(),
        "the server as a whole still serves"
    );

    reporter
        .set_service_status(SERVICE, ServingStatus::Unknown)
        .await;
    assert_eq!(
        check(&endpoint, SERVICE).await,
        (false, "UNKNOWN".to_string())
    );

    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    assert_eq!(check(&endpoint, SERVICE).await, serving());
}

#[tokio::test]
async fn an_unknown_service_is_service_unknown() {
    let (addr, _reporter) = health_server().await;
    let (healthy, detail) = check(&addr.to_string(), "no.such.Service").await;
    assert!(!healthy);
    assert_eq!(detail, "SERVICE_UNKNOWN");
}

#[tokio::test]
async fn nothing_listening_is_a_transport_error() {
    // A loopback address no other test binds: the port freed below is not
    // taken again by a test running beside this one.
    let listener = TcpListener::bind("127.0.0.77:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let (healthy, detail) = check(&addr.to_string(), "").await;
    assert!(!healthy);
    assert_eq!(detail, "connection refused");
}

#[tokio::test]
async fn a_peer_that_never_speaks_http2_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let timeout = Duration::from_millis(400);
    let start = Instant::now();
    let out = Probe::Grpc {
        endpoint: addr.to_string(),
        service: String::new(),
        tls: None,
    }
    .check(timeout)
    .await;
    let took = start.elapsed();
    assert!(!out.healthy, "{out:?}");
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert_eq!(out.detail, "timed out after 400ms");
}

#[test]
fn endpoints_with_and_without_a_scheme() {
    for (text, uri) in [
        ("127.0.0.1:50051", "http://127.0.0.1:50051/"),
        ("http://127.0.0.1:50051", "http://127.0.0.1:50051/"),
        ("HTTP://localhost:7/", "http://localhost:7/"),
        ("[::1]:50051", "http://[::1]:50051/"),
    ] {
        let parsed = super::address(text).map(|a| (a.uri.to_string(), a.tls_host));
        assert_eq!(parsed, Ok((uri.to_string(), None)), "{text}");
    }
    for (text, uri, host) in [
        ("https://127.0.0.1:1", "http://127.0.0.1:1/", "127.0.0.1"),
        (
            "HTTPS://svc.internal:443/",
            "http://svc.internal:443/",
            "svc.internal",
        ),
        ("https://[::1]:50051", "http://[::1]:50051/", "[::1]"),
    ] {
        let parsed = super::address(text).map(|a| (a.uri.to_string(), a.tls_host));
        assert_eq!(
            parsed,
            Ok((uri.to_string(), Some(host.to_string()))),
            "{text}"
        );
    }
}
