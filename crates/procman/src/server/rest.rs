//! The REST routes under `/api/v1` and `/healthz`: thin handlers over
//! `service.rs`, each annotated for the OpenAPI document (`openapi.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use procman_api::{Accepted, ApiError, ManagerInfo, Process, ProcessDetail, SignalRequest};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::{Failure, Json, Path, Query};
use super::service::{self, Verb};
use super::Api;

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

/// Liveness of the manager (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "manager", security(()),
    responses(
        (status = 200, description = "The manager runs", body = String, content_type = "text/plain"),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn healthz(State(api): State<Api>) -> axum::response::Response {
    if *api.stopping.borrow() {
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the manager is shutting down",
        )
        .into_response();
    }
    "ok".into_response()
}

/// Every process, in config order.
#[utoipa::path(get, path = "/api/v1/processes", tag = "processes",
    responses(
        (status = 200, description = "Every process, in config order", body = [Process]),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn list_processes(State(api): State<Api>) -> axum::Json<Vec<Process>> {
    axum::Json(service::list(&api.control))
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

/// Starts a process (closing an open circuit breaker).
#[utoipa::path(post, path = "/api/v1/processes/{id}/start", tag = "processes",
    params(("id" = String, Path, description = "The process id"), WaitQuery),
    responses(
        (status = 200, description = "The process after the start", body = Process),
        (status = 400, description = "A bad query", body = ApiError),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 404, description = "No process with this id", body = ApiError),
        (status = 409, description = "The process cannot be started (it failed to spawn, or is unmanaged)", body = ApiError),
        (status = 503, description = "The manager is shutting down", body = ApiError),
    ))]
async fn start_process(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Answer<Process> {
    act(api, id, Verb::Start, q).await
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
        (status = 409, description = "The process cannot be restarted", body = ApiError),
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
        (status = 409, description = "The process is not running", body = ApiError),
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

/// Reloads the config: not supported yet.
#[utoipa::path(post, path = "/api/v1/manager/reload", tag = "manager",
    responses(
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
        (status = 501, description = "Reload is not supported yet", body = ApiError),
    ))]
async fn reload() -> Failure {
    Failure::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "reload is not supported yet: restart the manager to apply a changed config",
    )
}

/// Stops every process and ends the manager, as SIGTERM does.
#[utoipa::path(post, path = "/api/v1/manager/shutdown", tag = "manager",
    responses(
        (status = 202, description = "The shutdown has begun", body = Accepted),
        (status = 401, description = "No token or a wrong one (TCP only)", body = ApiError),
    ))]
async fn shutdown(State(api): State<Api>) -> (StatusCode, axum::Json<Accepted>) {
    api.request_shutdown("REST");
    (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            message: "shutting down: every process is stopped, then the manager exits".into(),
        }),
    )
}
