//! Where a client sends its requests, and how long it waits.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Uri;

use super::ClientError;

/// How long a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// For a whole exchange (and, for a stream, until the answer's head).
    pub request: Duration,
    /// For a start, stop or restart that waits until done: a stop may take
    /// a process's whole grace period, a start its startup timeout.
    pub action: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(60),
            action: Duration::from_secs(300),
        }
    }
}

/// A bearer token: kept out of `Debug` and of every error.
#[derive(Clone)]
pub(super) struct Token(pub(super) String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A transport to one manager.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    /// `<state_dir>/procman.sock`.
    Unix(PathBuf),
    /// `host:port`, with the token every request carries.
    Tcp { authority: String, token: Token },
}

impl Endpoint {
    /// What errors call it: the socket path, or `http://host:port`.
    pub(super) fn describe(&self) -> String {
        match self {
            Endpoint::Unix(path) => path.display().to_string(),
            Endpoint::Tcp { authority, .. } => format!("http://{authority}"),
        }
    }
}

/// A client of one manager's REST API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    pub(super) endpoint: Endpoint,
    pub(super) timeouts: Timeouts,
}

impl Client {
    /// A client of the manager listening on the Unix socket `socket`
    /// (`<state_dir>/procman.sock`).
    pub fn unix(socket: impl Into<PathBuf>) -> Client {
        Client {
            endpoint: Endpoint::Unix(socket.into()),
            timeouts: Timeouts::default(),
        }
    }

    /// A client of the manager at `base_url` (`http://host:port`, nothing
    /// after the port but an optional `/`), sending `token` with every
    /// request. Only plain HTTP: put TLS in front with a proxy.
    pub fn tcp(base_url: &str, token: impl Into<String>) -> Result<Client, ClientError> {
        let bad = |why: &str| ClientError::Request(format!("bad manager URL `{base_url}`: {why}"));
        let uri: Uri = base_url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(bad(&format!("the scheme must be http, not {other}"))),
            None => return Err(bad("write it as http://host:port")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("nothing may follow host:port"));
        }
        if authority.as_str().contains('@') {
            return Err(bad("a user name is not supported; pass a token"));
        }
        let authority = match authority.port_u16() {
            Some(_) => authority.as_str().to_string(),
            None => format!("{}:80", authority.as_str()),
        };
        let token = token.into();
        if token.is_empty() || hyper::header::HeaderValue::from_str(&token).is_err() {
            // Say nothing about the token itself: it may be a secret
            // pasted in the wrong place.
            return Err(ClientError::Request(
                "the API token is empty or holds characters a header cannot carry".into(),
            ));
        }
        Ok(Client {
            endpoint: Endpoint::Tcp {
                authority,
                token: Token(token),
            },
            timeouts: Timeouts::default(),
        })
    }

    /// The same client with other deadlines.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Client {
        self.timeouts = timeouts;
        self
    }

    /// The deadlines in use.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The socket path, for a client of a Unix socket.
    pub fn socket(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// Where the requests go: the socket path or `http://host:port`.
    pub fn endpoint(&self) -> String {
        self.endpoint.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_not_in_debug_output_nor_in_errors() {
        let c = Client::tcp("http://127.0.0.1:9", "s3cret-token").expect("client");
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
        let e = Client::tcp("http://127.0.0.1:9", "bad\ntoken s3cret").expect_err("refused");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }

    #[test]
    fn a_base_url_is_http_host_and_port_only() {
        let c = Client::tcp("http://localhost:8080/", "t").expect("client");
        assert_eq!(c.endpoint(), "http://localhost:8080");
        assert_eq!(
            Client::tcp("http://example.test", "t")
                .expect("client")
                .endpoint(),
            "http://example.test:80"
        );
        for bad in [
            "https://h:1",
            "h:1",
            "http://h:1/api",
            "http://u:p@h:1",
            "http://h:1/?x=1",
        ] {
            assert!(Client::tcp(bad, "t").is_err(), "{bad} accepted");
        }
    }
}
