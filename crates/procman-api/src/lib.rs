//! # procman-api: the control API of hsu-procman
//!
//! What the server in the `procman` binary and its clients (the CLI, the
//! tests, a user's program) share: the JSON types of the REST API under
//! `/api/v1`, and the gRPC service `procman.v1.ProcessManager` generated
//! from `proto/procman/v1/procman.proto`. Both carry the same fields with
//! the same names; `docs/api.md` describes them.
//!
//! With the `client` feature (on by default), [`client::Client`] calls the
//! REST API on the Unix socket or over TCP.
//!
//! Timestamps are RFC 3339 strings in UTC (`2026-12-02T09:15:00.123Z`).

#[cfg(feature = "client")]
pub mod client;
pub mod types;

pub use types::*;

/// The gRPC service and its messages (generated).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("procman.v1");
}

/// The socket under the state directory: `<state_dir>/procman.sock`.
pub const SOCKET_NAME: &str = "procman.sock";
/// The generated token under the state directory (mode 0600).
pub const TOKEN_NAME: &str = "api-token";
/// The event journal under the state directory (JSON lines, rotated).
pub const JOURNAL_NAME: &str = "events.jsonl";
/// The prefix of every REST path.
pub const API_PREFIX: &str = "/api/v1";
