//! HTTP checks against a tiny fixed-response server on 127.0.0.1 (a tokio
//! listener that writes raw HTTP/1.1), so the client is judged by an
//! implementation that shares no code with it.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{judge, Target};
use crate::health::probe::Probe;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A server answering every request with the status it currently holds.
struct Server {
    url: String,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    last_head: Arc<Mutex<String>>,
}

impl Server {
    async fn start(status: u16) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server {
            url: format!("http://{addr}/healthz?full=1"),
            status: Arc::new(AtomicU16::new(status)),
            requests: Arc::new(AtomicUsize::new(0)),
            last_head: Arc::new(Mutex::new(String::new())),
        };
        let (status, requests, last_head) = (
            server.status.clone(),
            server.requests.clone(),
            server.last_head.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (status, requests, last_head) =
                    (status.clone(), requests.clone(), last_head.clone());
                tokio::spawn(async move {
                    let head = read_head(&mut sock).await;
                    requests.fetch_add(1, Ordering::SeqCst);
                    *last_head.lock().expect("lock") = head;
                    let code = status.load(Ordering::SeqCst);
                    let response = format!(
                        "HTTP/1.1 {code} Whatever\r\nLocation: /elsewhere\r\n\
                         Content-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        server
    }

    fn probe(&self, expected: &[u16]) -> Probe {
        Probe::Http {
            url: self.url.clone(),
            expected: expected.to_vec(),
            tls: None,
        }
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// Reads up to the blank line that ends a request head.
async fn read_head(sock: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn status_200_then_500() {
    let server = Server::start(200).await;
    let out = server.probe(&[]).check(TIMEOUT).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 200");

    server.set(500);
    let out = server.probe(&[]).check(TIMEOUT).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 500 (expected 2xx/3xx)");

    let head = server.last_head.lock().expect("lock").clone();
    assert!(
        head.starts_with("GET /healthz?full=1 HTTP/1.1\r\n"),
        "{head}"
    );
    let host = server.url.trim_start_matches("http://");
    let host = &host[..host.find('/').unwrap_or(host.len())];
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {host}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn a_redirect_is_healthy_and_not_followed() {
    let server = Server::start(301).await;
    let out = server.probe(&[]).check(TIMEOUT).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 301");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn expected_status_replaces_the_default() {
    let server = Server::start(200).await;
    let out = server.probe(&[204]).check(TIMEOUT).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 200 (expected 204)");

    server.set(204);
    let out = server.probe(&[204]).check(TIMEOUT).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, "HTTP 204");

    server.set(503);
    let out = server.probe(&[200, 503]).check(TIMEOUT).await;
    assert!(out.healthy, "a 503 can be declared healthy: {out:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            keep.lock().expect("lock").push(sock);
        }
    });
    let timeout = Duration::from_millis(400);
    let start = Instant::now();
    let out = Probe::Http {
        url: format!("http://{addr}/"),
        expected: Vec::new(),
        tls: None,
    }
    .check(timeout)
    .await;
    let took = start.elapsed();
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "timed out after 400ms");
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert_eq!(held.lock().expect("lock").len(), 1, "it did connect");
}

#[tokio::test]
async fn a_server_that_hangs_up_is_unhealthy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = read_head(&mut sock).await;
            drop(sock);
        }
    });
    let out = Probe::Http {
        url: format!("http://{addr}/"),
        expected: Vec::new(),
        tls: None,
    }
    .check(TIMEOUT)
    .await;
    assert!(!out.healthy, "{out:?}");
    assert!(out.latency < TIMEOUT, "{out:?}");
    assert!(!out.detail.is_empty());
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let out = Probe::Http {
        url: format!("http://{addr}/"),
        expected: Vec::new(),
        tls: None,
    }
    .check(TIMEOUT)
    .await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, "connection refused");
}

#[test]
fn urls_become_an_address_a_host_and_a_path() {
    let t = Target::parse("http://127.0.0.1:8080").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.host.as_str(), t.path.as_str()),
        ("127.0.0.1:8080", "127.0.0.1:8080", "/")
    );
    assert_eq!(t.userinfo, None);

    let t = Target::parse("http://localhost/status?x=1").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.host.as_str(), t.path.as_str()),
        ("localhost:80", "localhost", "/status?x=1")
    );

    let t = Target::parse("http://[::1]:9090/h").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.host.as_str()),
        ("[::1]:9090", "[::1]:9090")
    );
    assert!(t.addr.parse::<std::net::SocketAddr>().is_ok());

    let t = Target::parse("http://admin:s3cret@127.0.0.1:81/h").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.host.as_str()),
        ("127.0.0.1:81", "127.0.0.1:81")
    );
    assert_eq!(t.userinfo.as_deref(), Some("admin:s3cret"));
    // Sent as curl sends it: the userinfo percent-decoded, then base64;
    // a user without a password sends an empty one.
    let sent = |url: &str| {
        use base64::Engine as _;
        let req = Target::parse(url)
            .expect("parse")
            .request()
            .expect("request");
        let auth = req.headers()[hyper::header::AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .to_string();
        base64::engine::general_purpose::STANDARD
            .decode(auth.trim_start_matches("Basic "))
            .expect("base64")
    };
    assert_eq!(
        sent("http://us%3Aer:p%40ss%zz%2b%+f@127.0.0.1:81/h"),
        b"us:er:p@ss%zz+%+f"
    );
    assert_eq!(sent("http://admin@127.0.0.1:81/h"), b"admin:");

    let t = Target::parse("https://localhost/ready").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.hostname.as_str(), t.tls),
        ("localhost:443", "localhost", true)
    );
    let t = Target::parse("HTTPS://[::1]:8443/").expect("parse");
    assert_eq!(
        (t.addr.as_str(), t.hostname.as_str(), t.tls),
        ("[::1]:8443", "[::1]", true)
    );
    assert!(!Target::parse("http://localhost/").expect("parse").tls);

    for bad in ["ftp://127.0.0.1/", "127.0.0.1:80/health"] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn statuses_are_judged() {
    let cases: &[(u16, &[u16], bool, &str)] = &[
        (200, &[], true, "HTTP 200"),
        (204, &[], true, "HTTP 204"),
        (302, &[], true, "HTTP 302"),
        (399, &[], true, "HTTP 399"),
        (199, &[], false, "HTTP 199 (expected 2xx/3xx)"),
        (404, &[], false, "HTTP 404 (expected 2xx/3xx)"),
        (500, &[], false, "HTTP 500 (expected 2xx/3xx)"),
        (200, &[204], false, "HTTP 200 (expected 204)"),
        (500, &[200, 204], false, "HTTP 500 (expected 200, 204)"),
        (418, &[418], true, "HTTP 418"),
    ];
    for &(status, expected, healthy, detail) in cases {
        assert_eq!(
            judge(status, expected),
            (healthy, detail.to_string()),
            "{status} {expected:?}"
        );
    }
}
