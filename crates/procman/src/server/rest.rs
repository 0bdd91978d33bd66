//! The REST routes under `/api/v1` and `/healthz`: thin handlers over
//! `service.rs`, each annotated for the OpenAPI document (`openapi.rs`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use procman_api::{
    Accepted, ApiError, Event, ManagerInfo, Process, ProcessDetail, ReloadPlan, SignalRequest,
};
use procman_core::manager::ManagerState;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::{Failure, Json, Path, Query};
use super::feeds::{self, Item};
use super::service::{self, Verb};
use super::{logs, metrics, Api, Shutdown};

/// Records or events returned when `n` is not given.
const DEFAULT_N: u32 = 50;
/// The largest `n`: the most records a tail returns.
const MAX_N: u32 = super::logs::MAX_RECORDS as u32;

/// `n` as asked, within its documented bounds.
fn count(n: Option<u32>) -> Result<usize, Failure> {
    match n.unwrap_or(DEFAULT_N) {
        n if n > MAX_N => Err(Failure::bad_request(format!(
            "n: {n} is more than {MAX_N}; use 0 for all"
        ))),
        n => Ok(n as usize),
    }
}
/// A comment line on an idle event stream, so that proxies and the idle
/// limit see it alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

type Answer<T> = Result<axum::Json<T>, Failure>;

/// Every route of this module, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(list_processes))
        .routes(routes!(get_process))
        .routes(routes!(start_process))
        .routes(routes!(stop_process))
        .routes(routes!(restart_process))
        .routes(routes!(signal_process))
        .routes(routes!(get_manager))
        .routes(routes!(reload))
        .routes(routes!(shutdown))
        .routes(routes!(process_logs))
        .routes(routes!(all_logs))
        .routes(routes!(events))
        .routes(routes!(prometheus))
}

/// `?wait=`: whether to answer once the action is done (default) or as
/// soon as it is requested.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// `true` (default): answer once the process is started, stopped or
    /// restarted (or has failed to); `false`: once the request is sent.
    wait: Option<bool>,
}

/// The query of a start: `?wait=` as for every action, and `?with_deps=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// `true` (default): answer once the process is started (or waits for
    /// its dependencies, or has failed to start); `false`: once the
    /// request is sent.
    wait: Option<bool>,
    /// `true`: start every process it depends on (directly or not) too.
    /// `false` (default): refuse (409, `dependencies_down`) when one of
    /// them is down (never started, stopped, failed, or exited without
    /// meeting its condition).
    with_deps: Option<bool>,
}

/// Liveness of the manager (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "manager", security(()),
    responses(
        (status = 200, description = "The manager runs", body = String, content_type = "text/plain"),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn healthz(State(api): State<Api>) -> axum::response::Response {
    if !matches!(
        api.control.manager_state(),
        ManagerState::Created | ManagerState::Starting | ManagerState::Running
    ) {
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the manager is shutting down",
        )
        .into_response();
    }
    "ok".into_response()
}

/// `?usage=` and `?ids=`: which rows, and whether each carries what its
/// run uses now.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `true`: read the usage (memory, CPU, processes, open files) of every
    /// run under way among the rows, as `usage` of each; `false`
    /// (default): no usage, and nothing is read.
    usage: Option<bool>,
    /// Only these processes, comma-separated (`web,worker`), in config
    /// order; an id the config does not have is left out. Absent: every
    /// process.
    ids: Option<String>,
}

/// Every process, in config order.
#[utoipa::path(get, path = "/api/v1/processes", tag = "processes",
    params(ListQuery),
    responses(
        (status = 200, description = "Every process, in config order", body = [Process]),
        (status = 400, description = "A query that is not understood", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn list_processes(
    State(api): State<Api>,
    Query(q): Query<ListQuery>,
) -> axum::Json<Vec<Process>> {
    let ids: Option<Vec<&str>> = q.ids.as_deref().map(|l| l.split(',').collect());
    let only = ids.as_deref();
    match q.usage.unwrap_or(false) {
        true => axum::Json(service::list_with_usage(&api.control, only).await),
        false => axum::Json(service::list_of(&api.control, only)),
    }
}

/// One process with its diagnostics.
#[utoipa::path(get, path = "/api/v1/processes/{id}", tag = "processes",
    params(("id" = String, Path, description = "The process id")),
    responses(
        (status = 200, description = "The process", body = ProcessDetail),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
    ))]
async fn get_process(State(api): State<Api>, Path(id): Path<String>) -> Answer<ProcessDetail> {
    Ok(axum::Json(service::detail(&api.control, &id).await?))
}

async fn act(api: Api, id: String, verb: Verb, q: WaitQuery) -> Answer<Process> {
    let wait = q.wait.unwrap_or(true);
    Ok(axum::Json(
        service::act(&api.control, &id, verb, wait).await?,
    ))
}

/// Starts a process (closing an open circuit breaker). A process whose
/// dependencies are not ready yet is `waiting` (see `waiting_reason`)
/// and starts as soon as they are.
#[utoipa::path(post, path = "/api/v1/processes/{id}/start", tag = "processes",
    params(("id" = String, Path, description = "The process id"), StartQuery),
    responses(
        (status = 200, description = "The process after the start", body = Process),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process cannot be started (it failed to spawn, or is unmanaged), or a process it depends on is down (`dependencies_down`, naming each in `dependencies`)", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn start_process(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Answer<Process> {
    let with_deps = q.with_deps.unwrap_or(false);
    let wait = WaitQuery { wait: q.wait };
    act(api, id, Verb::Start { with_deps }, wait).await
}

/// Stops a process and its whole tree.
#[utoipa::path(post, path = "/api/v1/processes/{id}/stop", tag = "processes",
    params(("id" = String, Path, description = "The process id"), WaitQuery),
    responses(
        (status = 200, description = "The process after the stop", body = Process),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process cannot be stopped (unmanaged)", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn stop_process(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Answer<Process> {
    act(api, id, Verb::Stop, q).await
}

/// Stops a process if it runs, then starts it.
#[utoipa::path(post, path = "/api/v1/processes/{id}/restart", tag = "processes",
    params(("id" = String, Path, description = "The process id"), WaitQuery),
    responses(
        (status = 200, description = "The process after the restart", body = Process),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process cannot be restarted (it failed to spawn, or is unmanaged)", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn restart_process(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Answer<Process> {
    act(api, id, Verb::Restart, q).await
}

/// Sends a signal to the main process, or to every process of its tree.
#[utoipa::path(post, path = "/api/v1/processes/{id}/signal", tag = "processes",
    params(("id" = String, Path, description = "The process id")),
    request_body = SignalRequest,
    responses(
        (status = 200, description = "The process after the signal was sent", body = Process),
        (status = 400, description = "Malformed JSON, an unknown field or not a signal", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process is not running, or is unmanaged (never signalled)", body = ApiError),
        (status = 413, description = "The body is over 64 KiB", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn signal_process(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(body): Json<SignalRequest>,
) -> Answer<Process> {
    Ok(axum::Json(service::signal(&api.control, &id, &body).await?))
}

/// The manager itself.
#[utoipa::path(get, path = "/api/v1/manager", tag = "manager",
    responses(
        (status = 200, description = "The manager", body = ManagerInfo),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn get_manager(State(api): State<Api>) -> axum::Json<ManagerInfo> {
    axum::Json(service::manager(&api.control))
}

/// `?dry_run=` of the reload route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReloadQuery {
    /// Only say what the reload would do (default false).
    dry_run: Option<bool>,
}

/// Loads the manager's config file again and applies it: added processes
/// start, removed ones stop, changed ones restart, changes in place apply
/// to the running process, unchanged ones are left alone. An invalid file
/// changes nothing; the answer lists every error with its location.
#[utoipa::path(post, path = "/api/v1/manager/reload", tag = "manager",
    params(ReloadQuery),
    responses(
        (status = 200, description = "What the reload did (or, dry run, would do)", body = ReloadPlan),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 422, description = "The config file is not valid; nothing was changed", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn reload(
    State(api): State<Api>,
    Query(query): Query<ReloadQuery>,
) -> Result<axum::Json<ReloadPlan>, Failure> {
    let plan = super::reload::reload(&api.control, query.dry_run.unwrap_or(false)).await?;
    Ok(axum::Json(plan))
}

/// `?keep_processes=` of the shutdown route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShutdownQuery {
    /// Exit without stopping any process (default false): the manager
    /// writes its state and exits; the next manager on the same state
    /// directory re-attaches to every process.
    keep_processes: Option<bool>,
}

/// Stops every process and ends the manager, as SIGTERM does; with
/// `keep_processes=true`, ends the manager and leaves every process
/// running for the next one.
#[utoipa::path(post, path = "/api/v1/manager/shutdown", tag = "manager",
    params(ShutdownQuery),
    responses(
        (status = 202, description = "The shutdown has begun", body = Accepted),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn shutdown(
    State(api): State<Api>,
    Query(query): Query<ShutdownQuery>,
) -> (StatusCode, axum::Json<Accepted>) {
    let how = if query.keep_processes.unwrap_or(false) {
        Shutdown::KeepProcesses
    } else {
        Shutdown::Stop
    };
    api.request_shutdown("REST", how);
    (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            message: how.message().into(),
        }),
    )
}

/// `?n=&follow=` of the log routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// How many of the last records (default 50; 0: all, at most 100000).
    #[param(maximum = 100_000)]
    n: Option<u32>,
    /// `true`: then every new record as it is written, as server-sent
    /// events (`text/event-stream`), until the client goes.
    follow: Option<bool>,
}

/// `?n=&process=&follow=` of the events route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many of the last events from the journal (default 50; 0: all).
    #[param(maximum = 100_000)]
    n: Option<u32>,
    /// Only this process's events.
    process: Option<String>,
    /// `true`: then every new transition as it happens, as server-sent
    /// events (`text/event-stream`), until the client goes.
    follow: Option<bool>,
}

/// An event stream of `rx` that ends when the server stops.
fn event_stream<T: Send + 'static>(
    api: &Api,
    rx: tokio::sync::mpsc::Receiver<T>,
    to: fn(T) -> Sse,
) -> Response {
    let stream =
        feeds::until_stopped(rx, api.stopping.clone()).map(move |v| Ok::<_, Infallible>(to(v)));
    axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn log_event(record: logs::Record) -> Sse {
    Sse::default().event("log").data(record.as_str())
}

async fn logs(api: Api, id: Option<String>, q: LogsQuery) -> Result<Response, Failure> {
    let n = count(q.n)?;
    let follow = q.follow.unwrap_or(false);
    let rx = feeds::logs(&api.control, id.as_deref(), n, follow).await?;
    if follow {
        return Ok(event_stream(&api, rx, log_event));
    }
    // The records are written as they come: a JSON array of the texts
    // the reader made, never a copy of them all.
    let mut first = true;
    let records =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let items = records.map(move |r| {
        let comma = if std::mem::take(&mut first) { "" } else { "," };
        Ok::<_, Infallible>(format!("{comma}{}", r.as_str()))
    });
    let body = futures_util::stream::once(async { Ok("[".to_string()) })
        .chain(items)
        .chain(futures_util::stream::once(async { Ok("]".to_string()) }));
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// The last records of a process's log, as `procman logs ID -o json`.
#[utoipa::path(get, path = "/api/v1/processes/{id}/logs", tag = "logs",
    params(("id" = String, Path, description = "The process id"), LogsQuery),
    responses(
        (status = 200, description = "The records, oldest first (each as `procman logs -o json` prints it); with `follow=true`, a stream of `log` events whose data is one record", content(
            ([Object] = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process has no log file", body = ApiError),
        (status = 503, description = "The logs cannot be read now", body = ApiError),
    ))]
async fn process_logs(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, Failure> {
    logs(api, Some(id), q).await
}

/// The last records of every process's log, merged by time.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    params(LogsQuery),
    responses(
        (status = 200, description = "The records, oldest first; with `follow=true`, a stream of `log` events", content(
            ([Object] = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 503, description = "The logs cannot be read now", body = ApiError),
    ))]
async fn all_logs(State(api): State<Api>, Query(q): Query<LogsQuery>) -> Result<Response, Failure> {
    logs(api, None, q).await
}

fn transition_event(item: Item) -> Sse {
    match item {
        Item::Event(e) => Sse::default()
            .event("event")
            .id(e.seq.to_string())
            .data(serde_json::to_string(&e).unwrap_or_default()),
        Item::Lagged(missed) => Sse::default()
            .event("lagged")
            .data(format!("{{\"missed\":{missed}}}")),
    }
}

/// Past transitions from the journal, and with `follow=true` new ones.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "The events, oldest first; with `follow=true`, a stream of `event` events whose data is one `Event` (and `lagged` events, `{\"missed\": N}`, when the client read too slowly)", content(
            ([Event] = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 503, description = "The journal cannot be read now", body = ApiError),
    ))]
async fn events(State(api): State<Api>, Query(q): Query<EventsQuery>) -> Result<Response, Failure> {
    let n = count(q.n)?;
    let process = q.process.as_deref();
    if q.follow.unwrap_or(false) {
        let rx = feeds::follow_events(&api.control, &api.journal_written, Some(n), process).await?;
        return Ok(event_stream(&api, rx, transition_event));
    }
    let past = feeds::past_events(&api.control, &api.journal_written, n, process).await?;
    Ok(axum::Json(past).into_response())
}

/// The manager and its processes in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "manager",
    responses(
        (status = 200, description = "The metrics (see docs/api.md)", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn prometheus(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&api.control).await,
    )
        .into_response()
}
