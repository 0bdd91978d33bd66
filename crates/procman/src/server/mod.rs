//! The control API inside the manager: REST under `/api/v1`, gRPC
//! (`procman.v1.ProcessManager` and `grpc.health.v1`), `/metrics` and
//! `/healthz`, on the Unix socket `<state_dir>/procman.sock` (0600, always)
//! and on `bind:port` (behind a bearer token). Every operation is in
//! `service.rs`, once for both transports; the log records in `logs.rs`,
//! the event journal (`<state_dir>/events.jsonl`) in `journal.rs`, the
//! Prometheus text in `metrics.rs`.

// The transports that call these arrive in the next commits.
#[allow(dead_code)]
pub mod journal;
#[allow(dead_code)]
pub mod logs;
#[allow(dead_code)]
pub mod metrics;
#[allow(dead_code)]
pub mod service;

#[cfg(test)]
#[path = "tests/support.rs"]
mod test_support;
