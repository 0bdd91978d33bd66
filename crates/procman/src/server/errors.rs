//! Every REST error is a JSON [`ApiError`] with a fitting status: the
//! refusals of the operations, the extractors' rejections (malformed JSON,
//! a wrong field, a bad query: 400; a body over the limit: 413), unknown
//! routes (404), wrong methods (405, with `Allow`), and, as a last resort,
//! a panic (a logged 500). A request with a gRPC content type gets a gRPC
//! status instead.

use std::any::Any;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use procman_api::{ApiError, DependencyState};
use serde::de::DeserializeOwned;

use super::service::Refusal;

/// A refused request: its status and its JSON body.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What a refused start needs that is down (`dependencies_down`).
    pub dependencies: Vec<DependencyState>,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            dependencies: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A rejection of axum's: over the body limit stays 413, everything
    /// else about the client's input (including 415 and 422) is a 400.
    fn rejection(status: StatusCode, text: String) -> Failure {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(status, "payload_too_large", text)
        } else {
            Failure::bad_request(text)
        }
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        let status = match r {
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Conflict(_) | Refusal::DependenciesDown { .. } => StatusCode::CONFLICT,
            Refusal::InvalidConfig(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut failure = Failure::new(status, r.code(), r.to_string());
        if let Refusal::DependenciesDown { down, .. } = r {
            failure.dependencies = down
                .into_iter()
                .map(|(id, state)| DependencyState { id, state })
                .collect();
        }
        failure
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_string(),
            message: self.message,
            dependencies: self.dependencies,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// `axum::Json`, with its rejections as [`Failure`]s.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Failure {
    let text = match &r {
        JsonRejection::MissingJsonContentType(_) => {
            "the body must be JSON with `Content-Type: application/json`".to_string()
        }
        _ => r.body_text(),
    };
    Failure::rejection(r.status(), text)
}

/// `axum::extract::Query`, with its rejections as 400s.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| Failure::rejection(r.status(), r.body_text()))
    }
}

/// `axum::extract::Path`, with its rejections as 400s.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| Failure::rejection(r.status(), r.body_text()))
    }
}

pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Turns an error response made outside our handlers (no route, a wrong
/// method, a body limit, a body timeout) into JSON; a gRPC request to an
/// unknown service gets UNIMPLEMENTED.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let grpc = is_grpc(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return res;
    }
    if grpc {
        if status == StatusCode::NOT_FOUND {
            return tonic::Status::unimplemented(format!("no gRPC method {path}")).into_http();
        }
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let shown = shorten(&path);
    let failure = match status {
        StatusCode::NOT_FOUND => Failure::new(
            status,
            "not_found",
            format!("no such route: {method} {shown}"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => Failure::new(
            status,
            "method_not_allowed",
            format!(
                "{method} is not allowed on {shown} (the Allow header lists the methods that are)"
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Failure::new(status, "payload_too_large", text),
        s if s.is_client_error() => {
            Failure::bad_request(if text.is_empty() { s.to_string() } else { text })
        }
        s => Failure::new(
            s,
            "internal",
            if text.is_empty() { s.to_string() } else { text },
        ),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut res = failure.into_response();
    let status = res.status();
    // Keep the headers routing set (`Allow`), with our body and type.
    std::mem::swap(res.headers_mut(), &mut parts.headers);
    *res.status_mut() = status;
    res
}

/// A path as echoed in a message: at most 200 characters.
fn shorten(path: &str) -> String {
    match path.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &path[..i]),
        None => path.to_string(),
    }
}

/// The last resort: a bug in a handler is logged and answered with a 500,
/// never a dropped connection or a dead server.
pub fn panicked(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = %what, "an API handler panicked (a bug: please report it)");
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server hit a bug handling this request; it is logged",
    )
    .into_response()
}
