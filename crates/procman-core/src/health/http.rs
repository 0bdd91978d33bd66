//! HTTP check: `GET` over a fresh HTTP/1.1 connection, no redirects
//! followed, the status compared with the expected ones (2xx and 3xx when
//! none are given). Only the status line and headers are awaited: the body
//! is not read.
//!
//! This is a bare hyper connection rather than a full client: one request
//! per connection needs no pool and no redirect policy. For `https://` the
//! TLS handshake ([`Tls`], built once per process run) runs on the TCP
//! stream before the request, with the URL's host as the name the
//! certificate must carry.

use std::future::{poll_fn, Future as _};
use std::pin::pin;
use std::task::Poll;

use base64::Engine as _;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::probe::describe;
use super::tls::Tls;

/// Where a GET goes: the address to connect to and what to ask for.
#[derive(Debug)]
pub(super) struct Target {
    /// `host:port`, ready for a connect (brackets kept around IPv6).
    addr: String,
    /// The host alone, as the TLS server name (brackets kept around IPv6).
    pub(super) hostname: String,
    /// `https`: the request goes over TLS.
    pub(super) tls: bool,
    /// The `Host` header: the authority without user info.
    host: String,
    path: String,
    /// `user:password` from the URL, sent as Basic authentication.
    userinfo: Option<String>,
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, String> {
        let bad = |why: String| format!("http endpoint `{url}`: {why}");
        let uri: Uri = url.trim().parse().map_err(|e| bad(format!("{e}")))?;
        let tls = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("expected an http:// or https:// URL".into())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host".into()))?
            .as_str();
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host.to_string()),
            None => (None, authority.to_string()),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare_host = uri.host().ok_or_else(|| bad("no host".into()))?;
        let addr = format!("{bare_host}:{port}");
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
        Ok(Target {
            addr,
            hostname: bare_host.to_string(),
            tls,
            host,
            path: if path.is_empty() { "/".into() } else { path },
            userinfo,
        })
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>, String> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(self.path.as_str())
            .header(HOST, self.host.as_str())
            .header(USER_AGENT, HeaderValue::from_static("hsu-procman-health"))
            .header(CONNECTION, HeaderValue::from_static("close"));
        if let Some(user) = &self.userinfo {
            req = req.header(AUTHORIZATION, basic_authorization(user));
        }
        req.body(Empty::new()).map_err(|e| e.to_string())
    }
}

/// The `Authorization` header an HTTP check sends for the `user:password`
/// of its URL (`userinfo`): Basic, of the userinfo percent-decoded
/// (`p%40ss` is `p@ss`), the password empty when the URL has none
/// (`http://user@host/`), as curl sends it (RFC 7617).
pub fn basic_authorization(userinfo: &str) -> String {
    let mut pair = percent_decoded(userinfo);
    if !userinfo.contains(':') {
        pair.push(b':');
    }
    let token = base64::engine::general_purpose::STANDARD.encode(pair);
    format!("Basic {token}")
}

/// `text` with each `%XX` turned into its byte, as a URL's userinfo is
/// read (`p%40ss` is `p@ss`); a `%` not followed by two hex digits stays.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            // from_str_radix takes a sign too: `%+f` is no escape.
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// One GET, over TLS for `https://` (with `tls`, which the probe built for
/// this URL); the caller bounds it, connection included, by the timeout.
pub(super) async fn check(url: &str, expected: &[u16], tls: Option<&Tls>) -> (bool, String) {
    let target = match Target::parse(url) {
        Ok(t) => t,
        Err(e) => return (false, e),
    };
    let tls = match (target.tls, tls) {
        (false, _) => None,
        (true, Some(tls)) => Some(tls),
        (true, None) => {
            return (
                false,
                format!("https endpoint `{url}` without TLS settings"),
            )
        }
    };
    let request = match target.request() {
        Ok(r) => r,
        Err(e) => return (false, e),
    };
    let stream = match TcpStream::connect(target.addr.as_str()).await {
        Ok(s) => s,
        Err(e) => return (false, describe(&e)),
    };
    match tls {
        None => exchange(TokioIo::new(stream), request, expected).await,
        Some(tls) => match tls.connect(stream).await {
            Ok(stream) => exchange(TokioIo::new(stream), request, expected).await,
            Err(e) => (false, e.to_string()),
        },
    }
}

/// The request and its response on an open connection, plain or TLS.
async fn exchange<I>(io: I, request: Request<Empty<Bytes>>, expected: &[u16]) -> (bool, String)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return (false, describe(&e)),
    };
    // The connection is driven here, beside the request, rather than on a
    // spawned task: it lives exactly as long as this check. It may finish
    // (the server closes after answering) in the same poll that delivers
    // the response, so the response is looked at first, and once more
    // after the connection ended.
    let mut conn = pin!(conn);
    let mut send = pin!(sender.send_request(request));
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        ended = &mut conn => {
            let delivered = poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
            match (delivered, ended) {
                (Poll::Ready(response), _) => response,
                (Poll::Pending, Err(e)) => return (false, describe(&e)),
                (Poll::Pending, Ok(())) => {
                    return (false, "connection closed before a response".to_string())
                }
            }
        }
    };
    match response {
        Ok(response) => judge(response.status().as_u16(), expected),
        Err(e) => (false, describe(&e)),
    }
}

/// `HTTP 200`, or `HTTP 500 (expected 2xx/3xx)` when it does not pass.
pub(super) fn judge(status: u16, expected: &[u16]) -> (bool, String) {
    let healthy = if expected.is_empty() {
        (200..400).contains(&status)
    } else {
        expected.contains(&status)
    };
    if healthy {
        return (true, format!("HTTP {status}"));
    }
    let wanted = if expected.is_empty() {
        "2xx/3xx".to_string()
    } else {
        expected
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (false, format!("HTTP {status} (expected {wanted})"))
}

#[cfg(test)]
#[path = "tests/http.rs"]
mod tests;
