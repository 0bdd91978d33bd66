//! What a call can fail with.

use std::io;
use std::time::Duration;

use crate::ApiError;

/// Why a call to the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No manager answers there: the socket (or its directory) does not
    /// exist, or nothing accepts connections on it (`ECONNREFUSED`, also on
    /// TCP).
    #[error("no manager answers on {endpoint}")]
    NoManager {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// The manager refused the request: its status (4xx, 5xx) and body.
    #[error("{} ({})", .error.message, .error.code)]
    Api { status: u16, error: ApiError },
    /// The connection could not be made for another reason (permission
    /// denied on the socket, a name that does not resolve, ...).
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// A deadline passed: connecting, or the whole exchange.
    #[error("{what} at {endpoint} timed out after {}", humanize(*.after))]
    Timeout {
        what: &'static str,
        endpoint: String,
        after: Duration,
    },
    /// The HTTP exchange failed (the connection closed mid-answer, ...).
    #[error("HTTP exchange with {endpoint} failed: {source}")]
    Http {
        endpoint: String,
        #[source]
        source: hyper::Error,
    },
    /// The answer is not what the API promises.
    #[error("unexpected answer from {endpoint}: {detail}")]
    Decode { endpoint: String, detail: String },
    /// In a stream: the client read too slowly and the manager skipped
    /// `missed` items (the stream goes on after them).
    #[error("this client read too slowly: {missed} items were skipped")]
    Lagged { missed: u64 },
    /// The request could not be built (a bad URL, a token that is not a
    /// valid header value).
    #[error("{0}")]
    Request(String),
}

impl ClientError {
    /// Whether no manager answers (as opposed to one that refused or
    /// failed).
    pub fn is_no_manager(&self) -> bool {
        matches!(self, ClientError::NoManager { .. })
    }

    /// The API error, when the manager refused the request.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// `2s`, `1.5s`: durations as a person writes them.
fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// An I/O error of `connect(2)` on a socket: "nobody is there" or another
/// failure.
pub(super) fn connect_error(endpoint: &str, source: io::Error) -> ClientError {
    let endpoint = endpoint.to_string();
    match source.kind() {
        // A path under a file (`ENOTDIR`) cannot hold a socket either.
        io::ErrorKind::NotFound
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::NotADirectory => ClientError::NoManager { endpoint, source },
        _ => ClientError::Connect { endpoint, source },
    }
}
