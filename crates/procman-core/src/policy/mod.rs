//! Pure restart decisions: whether to restart, how long to wait, and when
//! to give up. No I/O and no clock of their own: callers pass `now` and a
//! random number, so every function here is table-tested without processes.

mod backoff;
mod breaker;
mod restart;

pub use backoff::delay;
pub use breaker::{Breaker, BreakerState, RunEnd};
pub use restart::{classify, should_restart, Outcome};
