//! Bad input gets a JSON error with the right status, never a 5xx; a slow
//! or silent client is dropped while everyone else is served; a listener
//! holds at most 256 connections at once.

use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_the_right_status() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let api = Api::start(&t, &(header(&t, 0, "") + &a), 0).await;
        let json = [("content-type", "application/json")];
        let signal = "/api/v1/processes/a/signal";

        let bad_bodies: [&[u8]; 8] = [
            b"{",
            b"",
            b"[]",
            br#"{"signal": 15}"#,
            br#"{"signal": "TERM", "extra": 1}"#,
            br#"{"tree": true}"#,
            br#"{"signal": "NOPE"}"#,
            b"\xff\xfe",
        ];
        for body in bad_bodies {
            let r = request(&api.unix(), "POST", signal, &json, Some(body)).await;
            assert_eq!(
                r.status,
                400,
                "{:?}: {}",
                String::from_utf8_lossy(body),
                r.text()
            );
            assert_eq!(r.error_code(), "bad_request");
        }
        // Not JSON by its content type (axum would say 415): 400 too.
        for headers in [&[][..], &[("content-type", "text/plain")][..]] {
            let r = request(
                &api.unix(),
                "POST",
                signal,
                headers,
                Some(br#"{"signal":"HUP"}"#),
            )
            .await;
            assert_eq!(r.status, 400, "{headers:?}: {}", r.text());
            assert_eq!(r.error_code(), "bad_request");
        }
        // A bad query, a path that is not UTF-8.
        for path in [
            "/api/v1/processes/a/stop?wait=maybe",
            "/api/v1/processes/a/start?wait=",
            "/api/v1/processes/%FF",
        ] {
            let r = request(
                &api.unix(),
                if path.ends_with("FF") { "GET" } else { "POST" },
                path,
                &[],
                None,
            )
            .await;
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            assert_eq!(r.error_code(), "bad_request");
        }

        // Too big: 413, before the body is parsed.
        let big = vec![b' '; 100 * 1024];
        let r = request(&api.unix(), "POST", signal, &json, Some(&big)).await;
        assert_eq!(r.status, 413, "{}", r.text());
        assert_eq!(r.error_code(), "payload_too_large");

        // Unknown routes and wrong methods.
        for path in [
            "/",
            "/api/v2/processes",
            "/api/v1/processes/a/b/c",
            "/api/v1/nope",
        ] {
            let r = request(&api.unix(), "GET", path, &[], None).await;
            assert_eq!(r.status, 404, "{path}: {}", r.text());
            assert_eq!(r.error_code(), "not_found");
        }
        for (method, path, allowed) in [
            ("DELETE", "/api/v1/processes", "GET"),
            ("POST", "/api/v1/processes/a", "GET"),
            ("GET", "/api/v1/processes/a/stop", "POST"),
            ("PUT", "/api/v1/manager/shutdown", "POST"),
        ] {
            let r = request(&api.unix(), method, path, &[], None).await;
            assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
            assert_eq!(r.error_code(), "method_not_allowed");
            assert!(
                r.header("allow").contains(allowed),
                "{method} {path}: allow {:?}",
                r.header("allow")
            );
        }

        // Still serving, and the process untouched by all of that.
        assert_eq!(api.wait_state("a", "running").await["runs"], 1);
        api.stop().await;
    })
    .await
    .expect("watchdog");
}

/// Reads until the server closes the connection; how long it took.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(mut s: S) -> std::time::Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(LONG, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept a slow client for {LONG:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_silent_client_is_dropped_and_others_are_served() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;

        // Half a request head over TCP, nothing at all on the socket.
        let mut slow = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        slow.write_all(b"GET /api/v1/processes HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let silent = UnixStream::connect(api.socket()).await.expect("connect");
        let slow_closed = tokio::spawn(until_closed(slow));
        let silent_closed = tokio::spawn(until_closed(silent));

        // Meanwhile everyone else is answered.
        let auth = format!("Bearer {}", api.token());
        for _ in 0..5 {
            let r = request(
                &api.tcp(),
                "GET",
                "/api/v1/processes",
                &[("authorization", &auth)],
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let r = api.local("GET", "/api/v1/manager", None).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }

        // Both dropped after the head timeout (10 s), well before LONG.
        let slow = slow_closed.await.expect("join");
        let silent = silent_closed.await.expect("join");
        assert!(slow >= std::time::Duration::from_secs(5), "{slow:?}");
        assert!(silent >= std::time::Duration::from_secs(5), "{silent:?}");

        let r = api.local("GET", "/healthz", None).await;
        assert_eq!(r.status, 200);
        api.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_256_connections_a_listener_takes_the_next_only_when_one_ends() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;

        // 256 silent connections take every place on the socket.
        let mut held = Vec::new();
        for _ in 0..256 {
            held.push(UnixStream::connect(api.socket()).await.expect("connect"));
        }
        let socket = api.unix();
        let mut next =
            tokio::spawn(
                async move { try_request(&socket, "GET", "/api/v1/manager", &[], None).await },
            );
        // Only a wait can show that nothing comes: a server without the
        // limit answers within milliseconds, and the silent ones are only
        // dropped after 10 s.
        if let Ok(early) = tokio::time::timeout(Duration::from_secs(2), &mut next).await {
            let status = early.map(|r| r.map(|r| r.status));
            panic!("answered past the limit: {status:?}");
        }
        // The limit is per listener: TCP still answers.
        let auth = format!("Bearer {}", api.token());
        let r = request(
            &api.tcp(),
            "GET",
            "/api/v1/manager",
            &[("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());

        // One ends: the waiting one is taken and answered.
        held.pop();
        let r = next.await.expect("join").expect("the request waiting");
        assert_eq!(r.status, 200, "{}", r.text());
        drop(held);
        api.stop().await;
    })
    .await
    .expect("watchdog");
}
