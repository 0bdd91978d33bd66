//! An async client of the REST API, shared by the CLI and the tests.
//!
//! A [`Client`] reaches one manager, on its Unix socket
//! ([`Client::unix`], no token: the socket's mode 0600 is the access
//! control) or on TCP ([`Client::tcp`], with the bearer token). Each call
//! opens a connection of its own (HTTP/1.1), sends one request and reads
//! one answer: a CLI run makes a handful of calls, so a pool would only add
//! state.
//!
//! Invariants and pitfalls:
//! - Every call has a deadline: [`Timeouts::connect`] for the connection,
//!   then [`Timeouts::request`] for the whole exchange, or
//!   [`Timeouts::action`] for a start, stop or restart that waits until
//!   done (a stop may take a process's whole grace period). A stream
//!   ([`Stream`]) has the deadline until the answer's head, then none.
//! - "Nobody is there" ([`ClientError::NoManager`]: the socket file or
//!   its directory is missing, or nothing accepts on it) is told apart from
//!   a refusal of the manager ([`ClientError::Api`], with its status and
//!   body) and from everything else (I/O, HTTP, a body that does not
//!   decode, a deadline).
//! - The token never appears in `Debug` output or in an error.
//! - Log records are passed through as the manager wrote them
//!   ([`LogRecord`] holds the raw JSON); the list answer may be a bare JSON
//!   array or `{"records": [...]}`.

mod endpoint;
mod error;
mod routes;
mod stream;
mod transport;

pub use endpoint::{Client, Timeouts};
pub use error::ClientError;
pub use routes::{Action, LogFields, LogRecord};
pub use stream::Stream;

#[cfg(test)]
mod tests;
