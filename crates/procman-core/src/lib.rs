//! # procman-core: the hsu-procman engine
//!
//! Theory of operation, in brief (see `docs/architecture.md` for the long form):
//!
//! - [`config`] turns a YAML file into a validated [`config::Config`], or into
//!   the full list of what is wrong with it.
//! - [`platform`] is the one seam to the operating system: spawn a child in a
//!   new session, signal its group, become a child subreaper, find and kill
//!   descendants. Callers never write `cfg`.
//! - [`policy`] holds the pure decisions: restart or not, how long to wait,
//!   whether the circuit breaker opens. No I/O, no clock of its own.
//! - [`supervisor`] runs one tokio task per process. The task owns its child,
//!   its timers and its state, and is reached through a cloneable
//!   [`supervisor::Handle`]; its state is published on a `watch` channel.
//! - [`manager`] owns the registry of supervisors, starts them together,
//!   stops them in parallel within the shutdown deadline, and holds the lock
//!   on the state directory.

pub mod config;
pub mod health;
pub mod logs;
pub mod manager;
pub mod outcome;
pub mod platform;
pub mod policy;
pub mod state;
pub mod supervisor;

#[cfg(test)]
mod testing;
