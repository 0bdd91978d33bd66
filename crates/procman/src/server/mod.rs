//! The control API inside the manager: REST under `/api/v1`, gRPC
//! (`procman.v1.ProcessManager` and `grpc.health.v1`), `/metrics` and
//! `/healthz`, on the Unix socket `<state_dir>/procman.sock` (0600, always,
//! no token) and on `bind:port` (unless `port` is 0; a bearer token on
//! every request but the health checks). Both listeners serve one router;
//! every operation is in `service.rs`, once for both transports; the log
//! records in `logs.rs`, the event journal (`<state_dir>/events.jsonl`) in
//! `journal.rs`, the Prometheus text in `metrics.rs`, resource limits and
//! usage (for the detail and the metrics) in `resources.rs`.
//!
//! [`Server::start`] binds both listeners before any process starts (a
//! port in use is a startup error); [`Server::begin_shutdown`] stops
//! accepting, ends streams and turns gRPC health to NOT_SERVING when the
//! manager's shutdown begins; [`Server::finish`] waits (bounded) for the
//! open connections and removes the socket.

mod auth;
mod errors;
mod feeds;
mod grpc;
pub mod journal;
mod listener;
pub mod logs;
pub mod metrics;
mod openapi;
pub mod reload;
mod resources;
mod rest;
pub mod service;
mod socket;
mod token;

#[cfg(test)]
#[path = "tests/support.rs"]
mod test_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::get;
use procman_api::proto::process_manager_server::ProcessManagerServer;
use procman_core::manager::Control;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use listener::{Limits, Listener};

/// The largest request body (a signal request is a few bytes).
const MAX_BODY: usize = 64 * 1024;
/// How long a request body may pause between two of its parts.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Threads the server creates at start, for `runtime::build` to count:
/// the event journal's writer. (A log follow's thread is made on request;
/// when none can be, that request is refused.)
pub const THREADS: usize = 1;

/// How long the event journal may take to write its last events.
const JOURNAL_FINISH: Duration = Duration::from_secs(2);

/// What every handler reaches: the engine, whether the server is
/// stopping, and the way to ask the manager to shut down.
#[derive(Clone)]
pub struct Api {
    control: Control,
    stopping: watch::Receiver<bool>,
    shutdown: mpsc::Sender<Shutdown>,
    /// How far the event journal is written (see `feeds::follow_events`).
    journal_written: watch::Receiver<u64>,
}

/// What a shutdown request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Stop every process, then exit (as SIGTERM does).
    Stop,
    /// Exit and leave every process running, for the next manager on the
    /// same state directory to re-attach to (an upgrade).
    KeepProcesses,
}

impl Shutdown {
    /// What the API answers.
    pub fn message(self) -> &'static str {
        match self {
            Shutdown::Stop => "every process is stopped, then the manager exits",
            Shutdown::KeepProcesses => {
                "the manager writes its state and exits; every process keeps running \
                 for the next manager on this state directory"
            }
        }
    }
}

impl Api {
    /// Asks `procman run` to shut down as on SIGTERM (or to detach); a
    /// request while one is already pending or under way changes nothing.
    fn request_shutdown(&self, via: &str, how: Shutdown) {
        if self.shutdown.try_send(how).is_ok() {
            tracing::info!(
                via,
                keep_processes = how == Shutdown::KeepProcesses,
                "shutdown requested through the API"
            );
        }
    }
}

/// The running server.
pub struct Server {
    stopping: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    health: HealthReporter,
    limits: Limits,
    /// The writer of `<state_dir>/events.jsonl`.
    journal: Option<journal::Journal>,
    _socket: socket::SocketFile,
}

/// Shutdown requests from the API, for the manager's loop.
pub type ShutdownRequests = mpsc::Receiver<Shutdown>;

impl Server {
    /// Binds the socket and (unless `port` is 0) the TCP port, and serves.
    pub async fn start(control: Control) -> anyhow::Result<(Server, ShutdownRequests)> {
        let config = &control.config().manager;
        let (unix, socket) = socket::bind(control.state_dir())?;
        let (tcp, token) = if config.port == 0 {
            (None, None)
        } else {
            let (token, origin) = token::load(config, control.state_dir())?;
            let tcp = bind_tcp(&config.bind, config.port).await?;
            let addr = tcp
                .local_addr()
                .map_or_else(|e| format!("unknown ({e})"), |a| a.to_string());
            tracing::info!(address = %addr, token = %origin, "API listening on TCP");
            (Some(tcp), Some(Arc::new(token)))
        };
        tracing::info!(socket = %socket.path().display(), "API listening on the Unix socket");

        // Before any process starts, so that the journal has every event.
        let journal =
            journal::Journal::start(control.state_dir(), control.events()).with_context(|| {
                format!(
                    "cannot open the event journal {}",
                    journal::path(control.state_dir()).display()
                )
            })?;
        let (stopping, stopping_rx) = watch::channel(false);
        let (shutdown, requests) = mpsc::channel(1);
        let api = Api {
            control,
            stopping: stopping_rx.clone(),
            shutdown,
            journal_written: journal.written(),
        };
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<ProcessManagerServer<grpc::Grpc>>()
            .await;
        let app = listener::LazyApp::new(move || app(api, token, health_service));
        let limits = Limits::default();
        let mut tasks = vec![tokio::spawn(listener::serve(
            Listener::Unix(unix),
            app.clone(),
            limits,
            stopping_rx.clone(),
        ))];
        if let Some(tcp) = tcp {
            tasks.push(tokio::spawn(listener::serve(
                Listener::Tcp(tcp),
                app,
                limits,
                stopping_rx,
            )));
        }
        let server = Server {
            stopping,
            tasks,
            health,
            limits,
            journal: Some(journal),
            _socket: socket,
        };
        Ok((server, requests))
    }

    /// The manager's shutdown has begun: gRPC health reports NOT_SERVING
    /// (and `/healthz` 503, from the manager's state). Everything else goes
    /// on serving while the processes stop, so that a client still sees
    /// them stop (the streams carry those last events) and is told that
    /// the manager is shutting down, not that none runs.
    pub async fn begin_shutdown(&self) {
        // Health first, so that watchers hear NOT_SERVING before their
        // connection is asked to finish.
        self.health
            .set_not_serving::<ProcessManagerServer<grpc::Grpc>>()
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }

    /// Every process has stopped: stop accepting, end the streams, ask open
    /// connections to finish; waits for the listeners to end (bounded),
    /// then removes the socket.
    pub async fn finish(mut self) {
        self.begin_shutdown().await;
        self.stopping.send_replace(true);
        let mut tasks = std::mem::take(&mut self.tasks);
        let bound = self.limits.grace + Duration::from_secs(1);
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::warn!("the API server did not end in time; dropping its connections");
            for t in &tasks {
                t.abort();
            }
        }
        // Its writer ends once every sender of the events (the manager, the
        // handlers' `Control`s, all gone by now) is dropped.
        if let Some(journal) = self.journal.take() {
            let _ = tokio::task::spawn_blocking(move || journal.finish(JOURNAL_FINISH)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The TCP listener; a port in use is an error that says what to do.
async fn bind_tcp(bind: &str, port: u16) -> anyhow::Result<TcpListener> {
    let shown = if bind.contains(':') {
        format!("[{bind}]:{port}")
    } else {
        format!("{bind}:{port}")
    };
    let listener = TcpListener::bind((bind, port)).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another program, or another manager, uses this port: set process_manager.port to a free one, or 0 for no TCP API)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen for the API on {shown}: {e}{hint}")
    })?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("the API's TCP address ({shown})"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(address = %addr,
            "the API listens beyond this machine: anyone who can reach it and has the token controls every process (the token travels in clear text without TLS)");
    }
    Ok(listener)
}

/// The one router of both listeners.
fn app<H>(api: Api, token: Option<Arc<token::Token>>, health: H) -> axum::Router
where
    H: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send + 'static,
{
    // The document is made again for each request of it (rare), not kept:
    // its JSON is some 50 KB the manager would hold for its whole life.
    let (router, _) = openapi::router().split_for_parts();
    let grpc = ProcessManagerServer::new(grpc::Grpc { api: api.clone() })
        .max_decoding_message_size(grpc::MAX_MESSAGE);
    let to_tonic = |r: http::Request<axum::body::Body>| r.map(tonic::body::Body::new);
    router
        .route(
            "/api/v1/openapi.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    openapi::to_json(&openapi::router().into_openapi()),
                )
            }),
        )
        .route_service(
            "/procman.v1.ProcessManager/{*method}",
            grpc.map_request(to_tonic),
        )
        .route_service(
            "/grpc.health.v1.Health/{*method}",
            health.map_request(to_tonic),
        )
        .with_state(api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .layer(CatchPanicLayer::custom(errors::panicked))
}
