//! TCP connect checks against a real listener on 127.0.0.1.

use std::time::Duration;

use tokio::net::TcpListener;

use crate::health::probe::Probe;

const TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_listening_port_is_healthy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let out = Probe::Tcp {
        addr: addr.to_string(),
    }
    .check(TIMEOUT)
    .await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("connected to {addr}"));
    assert!(out.latency < TIMEOUT);
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let out = Probe::Tcp {
        addr: addr.to_string(),
    }
    .check(TIMEOUT)
    .await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "connection refused");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_unhealthy() {
    let out = Probe::Tcp {
        addr: "no-such-host.invalid:80".into(),
    }
    .check(Duration::from_secs(2))
    .await;
    assert!(!out.healthy, "{out:?}");
    assert!(!out.detail.is_empty());
}
