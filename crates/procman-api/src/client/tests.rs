//! The client over real sockets: nobody there, and a server that answers
//! each connection with bytes the test chose (a manager's answers come in
//! the end-to-end tests of the `procman` crate).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("procman-api-")
        .tempdir()
        .expect("tempdir")
}

/// Answers each of the next `n` connections on `path` with `answer`, after
/// reading the request head; the requests' heads come back on the handle.
fn serve(path: &Path, answers: Vec<Vec<u8>>) -> tokio::task::JoinHandle<Vec<String>> {
    let listener = UnixListener::bind(path).expect("bind");
    tokio::spawn(async move {
        let mut heads = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            heads.push(String::from_utf8_lossy(&head).into_owned());
            // Written in pieces, to cut lines and events anywhere.
            for piece in answer.chunks(7) {
                if s.write_all(piece).await.is_err() {
                    break;
                }
                let _ = s.flush().await;
            }
        }
        heads
    })
}

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_missing_socket_or_directory_means_no_manager() {
    let dir = tempdir();
    for path in [
        dir.path().join("procman.sock"),
        dir.path().join("gone/procman.sock"),
    ] {
        let e = Client::unix(&path).processes().await.expect_err("nobody");
        assert!(e.is_no_manager(), "{e:?}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}

#[tokio::test]
async fn a_socket_file_nobody_listens_on_means_no_manager() {
    let dir = tempdir();
    let path = dir.path().join("procman.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let e = Client::unix(&path).manager().await.expect_err("nobody");
    assert!(e.is_no_manager(), "{e:?}");
}

#[tokio::test]
async fn nothing_listening_on_a_tcp_port_means_no_manager() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let c = Client::tcp(&format!("http://127.0.0.1:{port}"), "t").expect("client");
    let e = c.processes().await.expect_err("nobody");
    assert!(e.is_no_manager(), "{e:?}");
}

#[tokio::test]
async fn a_refusal_carries_its_status_and_api_error() {
    let dir = tempdir();
    let path = dir.path().join("procman.sock");
    let server = serve(
        &path,
        vec![
            http(
                "404 Not Found",
                r#"{"code":"not_found","message":"no process `x`"}"#,
            ),
            http("502 Bad Gateway", "<html>oops</html>"),
        ],
    );
    let c = Client::unix(&path);
    match c.process("x").await {
        Err(ClientError::Api { status: 404, error }) => {
            assert_eq!(error.code, "not_found");
            assert_eq!(error.message, "no process `x`");
        }
        other => panic!("{other:?}"),
    }
    match c.signal("x", "TERM", true).await {
        Err(ClientError::Api { status: 502, error }) => {
            assert_eq!(error.code, "http_502");
            assert!(error.message.contains("oops"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    let heads = server.await.expect("server");
    assert!(
        heads[0].starts_with("GET /api/v1/processes/x HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with("POST /api/v1/processes/x/signal HTTP/1.1\r\n"),
        "{}",
        heads[1]
    );
    assert!(
        !heads[0].to_ascii_lowercase().contains("authorization"),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn log_records_come_bare_or_in_an_object_byte_for_byte() {
    let dir = tempdir();
    let path = dir.path().join("procman.sock");
    let a = r#"{"ts":"2026-12-02T09:15:00.000001Z","id":"w","line":"a b"}"#;
    let b = r#"{"id":"w","line":"\u00e9"}"#;
    let server = serve(
        &path,
        vec![
            http("200 OK", &format!("[{a},{b}]")),
            http("200 OK", &format!(" {{\"records\": [{a}, {b}]}}")),
        ],
    );
    let c = Client::unix(&path);
    for _ in 0..2 {
        let got = c.logs(Some("w"), 5).await.expect("records");
        let texts: Vec<&str> = got.iter().map(LogRecord::json).collect();
        assert_eq!(texts, [a, b]);
    }
    let heads = server.await.expect("server");
    assert!(
        heads[0].starts_with("GET /api/v1/processes/w/logs?n=5 "),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn a_stream_yields_each_event_until_the_server_ends_it() {
    let dir = tempdir();
    let path = dir.path().join("procman.sock");
    let event = |seq: u64| {
        format!(
            r#"{{"seq":{seq},"process":"w","from":"running","to":"stopping","cause":"stop requested","cause_kind":"stop_requested","pid":42,"run":1,"at":"2026-12-02T09:15:00.000Z"}}"#
        )
    };
    let body = format!(
        ": hello\n\ndata: {}\n\ndata: {}\r\n\r\nevent: error\ndata: {{\"code\":\"unavailable\",\"message\":\"lagged\"}}\n\n",
        event(1),
        event(2)
    );
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}"
    );
    let server = serve(&path, vec![answer.into_bytes()]);
    let c = Client::unix(&path);
    let mut stream = c.follow_events(Some("w"), 3).await.expect("stream");
    let first = stream.next().await.expect("one").expect("event");
    assert_eq!((first.seq, first.pid), (1, Some(42)));
    let second = stream.next().await.expect("two").expect("event");
    assert_eq!(second.seq, 2);
    match stream.next().await {
        Some(Err(ClientError::Api { error, .. })) => assert_eq!(error.code, "unavailable"),
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
    let heads = server.await.expect("server");
    assert!(
        heads[0].starts_with("GET /api/v1/events?n=3&process=w&follow=true "),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_at_the_request_deadline() {
    let dir = tempdir();
    let path = dir.path().join("procman.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let c = Client::unix(&path).with_timeouts(Timeouts {
        request: Duration::from_millis(300),
        ..Timeouts::default()
    });
    let e = c.manager().await.expect_err("no answer");
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("timed out after 0.3s"), "{e}");
    hold.abort();
}

#[tokio::test]
async fn the_token_goes_in_the_authorization_header_only() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let answer = http(
            "401 Unauthorized",
            r#"{"code":"unauthorized","message":"a valid bearer token is needed"}"#,
        );
        s.write_all(&answer).await.expect("write");
        String::from_utf8_lossy(&head).into_owned()
    });
    let c = Client::tcp(&format!("http://127.0.0.1:{port}"), "s3cret").expect("client");
    let e = c.processes().await.expect_err("refused");
    assert_eq!(e.api().map(|a| a.code.as_str()), Some("unauthorized"));
    assert!(!e.to_string().contains("s3cret") && !format!("{e:?}").contains("s3cret"));
    let head = server.await.expect("server");
    assert!(head.contains("authorization: Bearer s3cret\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
}
