//! The gRPC service over HTTP/2 on the TCP port (beside REST): the same
//! operations, the token as metadata, and `grpc.health.v1` for the manager
//! itself (no token; NOT_SERVING once the shutdown begins).

use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use procman_api::proto;
use procman_api::proto::process_manager_client::ProcessManagerClient;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::*;

pub(super) type Channel = Client<HttpConnector, tonic::body::Body>;

pub(super) fn channel() -> Channel {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub(super) fn origin(port: u16) -> http::Uri {
    format!("http://127.0.0.1:{port}").parse().expect("uri")
}

/// `msg` with `authorization: Bearer <token>`.
pub(super) fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    req
}

pub(super) fn id(id: &str) -> proto::ProcessRequest {
    proto::ProcessRequest { id: id.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_service_lists_stops_and_starts_with_the_token() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (api, first) = with_one_runner(&t).await;
        let port = api.port;
        let token = api.token();
        let mut pm = ProcessManagerClient::with_origin(channel(), origin(port));

        // Without the token, or with another one: UNAUTHENTICATED.
        let e = pm
            .list_processes(proto::ListProcessesRequest {})
            .await
            .expect_err("no token");
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        let e = pm
            .list_processes(authed(proto::ListProcessesRequest {}, "wrong"))
            .await
            .expect_err("wrong token");
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

        let list = pm
            .list_processes(authed(proto::ListProcessesRequest {}, &token))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(list.processes.len(), 1);
        assert_eq!(list.processes[0].id, "a");
        assert_eq!(list.processes[0].pid, Some(first));

        let e = pm
            .get_process(authed(id("nope"), &token))
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        let e = pm
            .signal_process(authed(
                proto::SignalRequest {
                    id: "a".into(),
                    signal: "NOPE".into(),
                    tree: false,
                },
                &token,
            ))
            .await
            .expect_err("bad signal");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        let plan = pm
            .reload(authed(proto::ReloadRequest { dry_run: true }, &token))
            .await
            .expect("reload")
            .into_inner();
        assert!(plan.dry_run, "{plan:?}");
        assert_eq!(plan.unchanged, ["a"], "{plan:?}");
        assert!(
            plan.message.starts_with("would reload: 0 added"),
            "{plan:?}"
        );

        let p = pm
            .stop_process(authed(id("a"), &token))
            .await
            .expect("stop")
            .into_inner();
        assert_eq!(p.state, "stopped");
        assert!(!alive(first));
        let p = pm
            .start_process(authed(
                proto::StartRequest {
                    id: "a".into(),
                    with_deps: false,
                },
                &token,
            ))
            .await
            .expect("start")
            .into_inner();
        let second = p.pid.expect("a pid");
        assert_ne!(second, first);
        let d = pm
            .get_process(authed(id("a"), &token))
            .await
            .expect("get")
            .into_inner();
        assert_eq!(d.pids.first(), Some(&second));
        let m = pm
            .get_manager(authed(proto::GetManagerRequest {}, &token))
            .await
            .expect("manager")
            .into_inner();
        assert_eq!(m.pid, api.m.pid);

        api.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_needs_no_token_and_goes_not_serving_at_shutdown() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (mut api, pid) = with_one_runner(&t).await;
        let port = api.port;
        let mut health = HealthClient::with_origin(channel(), origin(port));
        for service in ["", "procman.v1.ProcessManager"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .expect("check")
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
        }
        let mut watch = health
            .watch(HealthCheckRequest {
                service: "procman.v1.ProcessManager".into(),
            })
            .await
            .expect("watch")
            .into_inner();
        let first = watch.message().await.expect("a status").expect("a message");
        assert_eq!(first.status(), ServingStatus::Serving);

        // Shutdown through gRPC: the watcher hears NOT_SERVING.
        let mut pm = ProcessManagerClient::with_origin(channel(), origin(port));
        pm.shutdown(authed(proto::ShutdownRequest::default(), &api.token()))
            .await
            .expect("shutdown");
        let next = watch.message().await.expect("a status").expect("a message");
        assert_eq!(next.status(), ServingStatus::NotServing);
        let end = api.m.ended(LONG).await;
        assert_eq!(
            end,
            procman_core::outcome::ProcessEnd::Exited(0),
            "{}",
            api.m.log_text()
        );
        assert!(!alive(pid));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_events_stream_over_grpc() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, a_pid) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;
        let token = api.token();
        let first = wait_pidfile(&a_pid, LONG, |_| true).await;
        let mut pm = ProcessManagerClient::with_origin(channel(), origin(port));

        // Events: the past ones, then the restart as it happens.
        let req = proto::EventsRequest {
            id: "a".into(),
            last: 100,
            follow: true,
        };
        let mut events = pm
            .events(authed(req, &token))
            .await
            .expect("events")
            .into_inner();
        let mut seen = Vec::new();
        while !seen.iter().any(|e: &proto::Event| e.to == "running") {
            seen.push(
                events
                    .message()
                    .await
                    .expect("an event")
                    .expect("not ended"),
            );
        }
        assert_eq!(seen.last().map(|e| e.pid), Some(Some(first)));
        pm.restart_process(authed(id("a"), &token))
            .await
            .expect("restart");
        let second = wait_pidfile(&a_pid, LONG, |p| p != first).await;
        loop {
            let e = events
                .message()
                .await
                .expect("an event")
                .expect("not ended");
            assert_eq!(e.process, "a");
            if e.to == "running" {
                assert_eq!(e.pid, Some(second));
                break;
            }
        }
        let e = pm
            .events(authed(
                proto::EventsRequest {
                    id: "nope".into(),
                    last: 1,
                    follow: false,
                },
                &token,
            ))
            .await
            .expect_err("unknown id");
        assert_eq!(e.code(), Code::NotFound);

        // Logs: the last records, each one JSON object.
        let ready = format!("ready pid={second}");
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let req = proto::LogsRequest {
                id: "a".into(),
                lines: 10,
                follow: false,
            };
            let mut logs = pm
                .logs(authed(req, &token))
                .await
                .expect("logs")
                .into_inner();
            let mut lines = Vec::new();
            while let Some(r) = logs.message().await.expect("a record") {
                let v: serde_json::Value = serde_json::from_str(&r.json).expect("json");
                lines.push(v["line"].as_str().unwrap_or_default().to_string());
            }
            if lines.contains(&ready) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{lines:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let e = pm
            .logs(proto::LogsRequest {
                id: "a".into(),
                lines: 1,
                follow: false,
            })
            .await
            .expect_err("no token");
        assert_eq!(e.code(), Code::Unauthenticated);

        api.stop().await;
        // The follow ended with the server.
        while let Ok(Some(_)) = events.message().await {}
    })
    .await
    .expect("watchdog");
}
