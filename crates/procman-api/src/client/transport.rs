//! One request on a connection of its own: connect (with its deadline),
//! HTTP/1.1 handshake, send, and the answer's head or whole body.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};

use super::endpoint::{Client, Endpoint};
use super::error::connect_error;
use super::ClientError;
use crate::ApiError;

/// The largest answer read whole (a list of log records asked with a
/// large `n` is the biggest); a stream has no such bound.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// How much of an unexpected body an error quotes.
const QUOTE: usize = 200;

impl Client {
    /// Sends a request and decodes its JSON answer, all within `deadline`.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        deadline: Duration,
    ) -> Result<T, ClientError> {
        let bytes = self.fetch(method, path_and_query, body, deadline).await?;
        decode(&self.endpoint(), &bytes)
    }

    /// Sends a request and reads its whole answer (a 2xx) within
    /// `deadline`.
    pub(super) async fn fetch(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        deadline: Duration,
    ) -> Result<Bytes, ClientError> {
        let exchange = async {
            let response = self.send(method, path_and_query, body, "").await?;
            let status = response.status();
            let bytes = read_body(&self.endpoint(), response.into_body()).await?;
            match status.is_success() {
                true => Ok(bytes),
                false => Err(refusal(status.as_u16(), &bytes)),
            }
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .unwrap_or_else(|_| Err(self.timed_out("the request", deadline)))
    }

    /// Sends a request that asks for a stream; returns the answer's head
    /// (within the request deadline) and its body, which has none.
    pub(super) async fn open_stream(&self, path_and_query: &str) -> Result<Incoming, ClientError> {
        let deadline = self.timeouts.request;
        let opened = async {
            let response = self
                .send(Method::GET, path_and_query, None, "text/event-stream")
                .await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response.into_body());
            }
            let bytes = read_body(&self.endpoint(), response.into_body()).await?;
            Err(refusal(status.as_u16(), &bytes))
        };
        tokio::time::timeout(deadline, opened)
            .await
            .unwrap_or_else(|_| Err(self.timed_out("the request", deadline)))
    }

    /// Connects and sends; the connection is driven by a task of its own
    /// until the answer is read (or dropped).
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        accept: &str,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut sender = self.connect().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(USER_AGENT, concat!("procman/", env!("CARGO_PKG_VERSION")))
            .header(
                ACCEPT,
                if accept.is_empty() {
                    "application/json"
                } else {
                    accept
                },
            );
        request = match &self.endpoint {
            Endpoint::Unix(_) => request.header(HOST, "localhost"),
            Endpoint::Tcp { authority, token } => {
                let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.0))
                    .map_err(|_| ClientError::Request("the API token cannot be sent".into()))?;
                bearer.set_sensitive(true);
                request
                    .header(HOST, authority.as_str())
                    .header(AUTHORIZATION, bearer)
            }
        };
        let request = match body {
            Some(json) => request
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(json))),
            None => request.body(Full::new(Bytes::new())),
        }
        .map_err(|e| ClientError::Request(format!("cannot build the request: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|source| ClientError::Http {
                endpoint: self.endpoint(),
                source,
            })
    }

    /// A connection, within the connect deadline.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let deadline = self.timeouts.connect;
        let endpoint = self.endpoint();
        let connected = async {
            match &self.endpoint {
                Endpoint::Unix(path) => match UnixStream::connect(path).await {
                    Ok(s) => handshake(&endpoint, s).await,
                    Err(e) => Err(connect_error(&endpoint, e)),
                },
                Endpoint::Tcp { authority, .. } => {
                    match TcpStream::connect(authority.as_str()).await {
                        Ok(s) => {
                            // Requests are small; do not hold them back.
                            let _ = s.set_nodelay(true);
                            handshake(&endpoint, s).await
                        }
                        Err(e) => Err(connect_error(&endpoint, e)),
                    }
                }
            }
        };
        tokio::time::timeout(deadline, connected)
            .await
            .unwrap_or_else(|_| Err(self.timed_out("connecting", deadline)))
    }

    fn timed_out(&self, what: &'static str, after: Duration) -> ClientError {
        ClientError::Timeout {
            what,
            endpoint: self.endpoint(),
            after,
        }
    }
}

/// The HTTP/1.1 handshake on an open stream; the connection then runs on
/// a task of its own, which ends when the answer is read or dropped.
async fn handshake<S>(endpoint: &str, stream: S) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ClientError::Http {
            endpoint: endpoint.to_string(),
            source,
        })?;
    tokio::spawn(async move {
        // Its error, if any, reaches the caller through the request.
        let _ = conn.await;
    });
    Ok(sender)
}

/// The whole body, bounded by [`MAX_BODY`].
async fn read_body(endpoint: &str, body: Incoming) -> Result<Bytes, ClientError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(source) => Err(ClientError::Http {
                endpoint: endpoint.to_string(),
                source: *source,
            }),
            Err(other) => Err(ClientError::Decode {
                endpoint: endpoint.to_string(),
                detail: other.to_string(),
            }),
        },
    }
}

/// A JSON body as `T`.
pub(super) fn decode<T: DeserializeOwned>(endpoint: &str, bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
        endpoint: endpoint.to_string(),
        detail: format!("{e} in {}", quote(bytes)),
    })
}

/// The error of a non-2xx answer: its [`ApiError`] body, or the status and
/// the start of whatever came instead (a proxy's page).
pub(super) fn refusal(status: u16, bytes: &[u8]) -> ClientError {
    let error = serde_json::from_slice::<ApiError>(bytes).unwrap_or_else(|_| {
        let message = match bytes.is_empty() {
            true => format!("HTTP {status}"),
            false => format!("HTTP {status}: {}", quote(bytes)),
        };
        ApiError::new(format!("http_{status}"), message)
    });
    ClientError::Api { status, error }
}

/// The start of a body, for a message.
pub(super) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE)]);
    let more = if bytes.len() > QUOTE { "…" } else { "" };
    format!("`{}{more}`", text.trim_end())
}
