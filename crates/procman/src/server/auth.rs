//! The token check: over TCP every request needs `Authorization: Bearer
//! <token>`, except `/healthz` and the gRPC health service (probes carry no
//! secret). A request without it, or with another token or scheme, gets a
//! 401 JSON body (REST) or the gRPC status UNAUTHENTICATED. Requests on
//! the Unix socket pass: its mode (0600, in a 0700 directory) is the guard.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::{is_grpc, Failure};
use super::listener::Transport;
use super::token::Token;

/// Paths any client may reach without the token.
fn is_open(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/grpc.health.v1.Health/")
}

/// The bearer token of `Authorization`, if that is what the header holds.
/// The scheme is case-insensitive (RFC 9110).
fn bearer(req: &Request) -> Option<&[u8]> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

pub async fn require_token(
    State(token): State<Option<Arc<Token>>>,
    req: Request,
    next: Next,
) -> Response {
    // Fail closed: only a request known to come over the socket skips it.
    let local = req.extensions().get::<Transport>() == Some(&Transport::Unix);
    if local || is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let given = bearer(&req);
    let ok = match (&token, given) {
        (Some(t), Some(given)) => t.matches(given),
        _ => false,
    };
    if ok {
        return next.run(req).await;
    }
    let why = match given {
        None if req.headers().contains_key(header::AUTHORIZATION) => {
            "the Authorization header must be `Bearer <token>`"
        }
        None => "this request needs `Authorization: Bearer <token>` (the token is in the state directory's api-token file unless the config sets one)",
        Some(_) => "the token is not the manager's",
    };
    if is_grpc(req.headers()) {
        return tonic::Status::unauthenticated(why).into_http();
    }
    let mut res = Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", why).into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &[u8]) -> Request {
        axum::http::Request::builder()
            .header(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).expect("header"),
            )
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn the_bearer_scheme_in_any_case_with_the_token_after_it() {
        assert_eq!(bearer(&with(b"Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with(b"bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with(b"BEARER  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with(b"Basic abc")), None);
        assert_eq!(bearer(&with(b"Bearer")), None);
        assert_eq!(bearer(&with(b"abc")), None);
        let none = axum::http::Request::builder()
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(bearer(&none), None);
    }

    #[test]
    fn only_the_health_checks_are_open() {
        assert!(is_open("/healthz"));
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(is_open("/grpc.health.v1.Health/Watch"));
        for path in [
            "/healthz/",
            "/metrics",
            "/api/v1/processes",
            "/api/v1/openapi.json",
            "/procman.v1.ProcessManager/ListProcesses",
            "/grpc.health.v1.Healthz/Check",
        ] {
            assert!(!is_open(path), "{path}");
        }
    }
}
