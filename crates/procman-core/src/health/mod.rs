//! Health checks: the probes and the verdict drawn from their results.
//!
//! - [`probe`]: one [`probe::Probe`] per configured check (HTTP, gRPC
//!   health, TCP connect, exec, process liveness). [`probe::Probe::check`]
//!   runs one check, bounded by the check's `timeout`, and says what
//!   happened in a [`probe::ProbeOutcome`] whose `detail` names it for the
//!   diagnostics (`HTTP 500 (expected 2xx/3xx)`, `NOT_SERVING`,
//!   `connection refused`, `killed after timeout`, ...).
//! - [`tls`]: the rustls client config of `https://` HTTP and TLS gRPC
//!   checks (ring, the system's certificate store, `tls_skip_verify`), and
//!   `certificate`, which words a failed handshake for the diagnostics.
//! - [`verdict`]: a pure state machine over those results (no I/O, no
//!   clock): readiness on the first success, `failure_threshold`
//!   consecutive failures after it make a process unhealthy (once),
//!   `success_threshold` successes make it healthy again. Failures before
//!   the first success never count: a slow starter is judged by
//!   `startup_timeout` alone.
//!
//! The supervisor owns the timers (`initial_delay`, `interval`) and acts
//! on each [`verdict::Change`].

pub mod probe;
pub mod tls;
pub mod verdict;

mod certificate;
mod exec;
mod grpc;
mod http;
mod tcp;

pub use http::basic_authorization;

#[cfg(test)]
#[path = "tests/pki.rs"]
pub(crate) mod pki;
